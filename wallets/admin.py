"""Wallets in the admin: each wallet with its grants and ledger, and pages to grant credits
and to adjust with a reason; alert settings, the alerts fired and their deliveries, and
top-up requests. Every write goes through wallets' services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import ngettext

from common.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    adopt,
    customer_display,
    form_errors_add,
    instant_display,
    money_display,
    next_url,
)
from contracts.admin.quick_dates import QuickDateTimeWidget
from contracts.models import Customer
from pricing.money import RATED_PLACES, money_label

from . import customer_page  # noqa: F401  (the customer page's wallet and alerts sections)
from .alerts import ALERT_SETTINGS_FIELDS, alert_delivery_retry, alert_settings_update
from .models import (
    Alert,
    AlertDelivery,
    AlertSettings,
    CreditGrant,
    Hold,
    LedgerEntry,
    TopUpRequest,
    Wallet,
)
from .services import InsufficientCredits, credit_grant, wallet_adjust
from .topups import topup_cancel, topup_mark_paid


class GrantInline(ReadOnlyInline):
    model = CreditGrant
    fields = ("source", "amount_shown", "remaining_shown", "priority", "effective_shown",
              "expires_shown", "reason", "created_by")  # fmt: skip
    readonly_fields = fields
    amount_shown = money_display("amount", "wallet.currency", description="amount")
    remaining_shown = money_display("remaining", "wallet.currency", description="remaining")
    effective_shown = instant_display("effective_at", description="effective (UTC)")
    expires_shown = instant_display("expires_at", description="expires (UTC)")


class HoldInline(ReadOnlyInline):
    """The holds of authorized calls still reserving credits."""

    model = Hold
    verbose_name_plural = "active holds"
    fields = ("amount_shown", "estimate_shown", "reference", "created_shown", "expires_shown",
              "id")  # fmt: skip
    readonly_fields = fields
    amount_shown = money_display("amount", "wallet.currency", description="held")
    estimate_shown = money_display("estimate", "wallet.currency", description="estimate")
    created_shown = instant_display("created_at", description="created (UTC)")
    expires_shown = instant_display("expires_at", description="expires (UTC)")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=Hold.Status.ACTIVE)


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("created_shown", "kind", "amount_shown", "moves", "reference", "reason",
              "created_by")  # fmt: skip
    readonly_fields = fields
    amount_shown = money_display("amount", "wallet.currency", description="amount")
    created_shown = instant_display("created_at", description="at (UTC)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("wallet", "grant__wallet")

    @admin.display(description="grant or hold")
    def moves(self, entry: LedgerEntry) -> str:
        """Each entry moves one grant (its money) or one hold (what is held)."""
        return grant_text(entry.grant) or f"hold {str(entry.hold_id)[:8]}…"


def grant_text(grant: CreditGrant | None) -> str | None:
    """A grant as the admin names it: its source and amount, 100.00 USD."""
    if grant is None:
        return None
    return f"{grant.get_source_display()} {money_label(grant.amount, grant.wallet.currency)}"


def grant_display():
    """A read-only field naming the row's grant (`grant_text`)."""

    @admin.display(description="grant")
    def show(model_admin, obj) -> str:
        return grant_text(obj.grant) or model_admin.get_empty_value_display()

    return show


class GrantForm(forms.Form):
    customer = forms.ModelChoiceField(Customer.objects.order_by("external_id"))
    amount = forms.DecimalField(min_value=0, max_digits=20, decimal_places=RATED_PLACES)
    source = forms.ChoiceField(choices=CreditGrant.Source.choices)
    priority = forms.IntegerField(initial=0, help_text="Higher is drawn first.")
    effective_at = forms.SplitDateTimeField(
        label="Effective at",
        required=False,
        widget=QuickDateTimeWidget(
            quick=[(f"in {days} days", {"data-days": str(days)}) for days in (7, 14)]
        ),
        help_text="UTC. Empty: usable at once; a later instant keeps the credits out of the "
        "wallet until then.",
    )
    expires_at = forms.SplitDateTimeField(
        label="Expires at",
        required=False,
        widget=QuickDateTimeWidget(
            quick=[(f"in {days} days", {"data-days": str(days)}) for days in (30, 90, 365)]
        ),
        help_text="UTC. Empty: never expires.",
    )
    reason = forms.CharField(max_length=300, required=False)


class AdjustForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=20,
        decimal_places=RATED_PLACES,
        help_text="Positive adds credits; negative removes.",
    )
    reason = forms.CharField(max_length=300)


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("customer", "balance_shown", "held_shown", "available_shown",
                    "created_shown")  # fmt: skip
    list_select_related = ("customer",)
    search_fields = ("customer__external_id", "customer__name")
    fields = ("customer", ("balance_shown", "held_shown", "available_shown"), "created_shown")
    readonly_fields = ("customer", "balance_shown", "held_shown", "available_shown",
                       "created_shown")  # fmt: skip
    inlines = [GrantInline, HoldInline, LedgerInline]
    change_form_template = "admin/wallets/wallet/change_form.html"
    change_list_template = "admin/wallets/wallet/change_list.html"
    balance_shown = money_display("balance", "currency", description="balance")
    held_shown = money_display("held", "currency", description="held")
    available_shown = money_display(
        "available", "currency", description="available", sortable=False
    )
    created_shown = instant_display("created_at", description="created (UTC)")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_grant_permission(self, request) -> bool:
        return request.user.has_perm("wallets.add_creditgrant")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_grant": self.has_grant_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_grant": self.has_grant_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("grant/", self.admin_site.admin_view(self.grant_view), name="wallets_grant"),
            path(
                "<int:wallet_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="wallets_adjust",
            ),
            *super().get_urls(),
        ]

    def grant_view(self, request):
        """Credits for a customer (their wallet is created on the first grant)."""
        if not self.has_grant_permission(request):
            raise PermissionDenied
        form = GrantForm(request.POST or None, initial={"customer": request.GET.get("customer")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                grant = credit_grant(
                    customer=data["customer"],
                    amount=data["amount"],
                    source=data["source"],
                    priority=data["priority"],
                    effective_at=data["effective_at"],
                    expires_at=data["expires_at"],
                    reason=data["reason"],
                    created_by=request.user.get_username(),
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                granted = money_label(grant.amount, grant.wallet.currency)
                messages.success(request, f"Granted {granted} to {data['customer']}.")
                wallet_url = reverse("admin:wallets_wallet_change", args=[grant.wallet_id])
                return redirect(next_url(request, wallet_url))
        return self._page(request, form, "Grant credits")

    def adjust_view(self, request, wallet_id: int):
        """A manual adjustment, with the reason and who made it on the ledger."""
        if not self.has_grant_permission(request):
            raise PermissionDenied
        wallet = get_object_or_404(Wallet.objects.select_related("customer"), pk=wallet_id)
        form = AdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                wallet_adjust(
                    wallet=wallet,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    created_by=request.user.get_username(),
                )
            except InsufficientCredits as error:
                form.add_error("amount", str(error))
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                by = money_label(form.cleaned_data["amount"], wallet.currency)
                messages.success(request, f"Adjusted {wallet} by {by}.")
                wallet_url = reverse("admin:wallets_wallet_change", args=[wallet.pk])
                return redirect(next_url(request, wallet_url))
        return self._page(request, form, f"Adjust {wallet}", original=wallet)

    def _page(self, request, form, title, **context):
        return TemplateResponse(
            request,
            "admin/wallets/wallet/form.html",
            {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
             "title": title, **context},
        )  # fmt: skip


# --- Alerts and top-ups ---------------------------------------------------------------------


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    """A customer's thresholds and where alerts go; saved through alert_settings_update.
    The webhook secret is shown here for the customer's receiver to check signatures."""

    list_display = ("customer", "budget_shown", "balance_below_shown", "topup_below_shown",
                    "topup_amount_shown", "webhook_url")  # fmt: skip
    list_select_related = ("customer",)
    budget_shown = money_display("budget", "customer.currency", description="budget")
    balance_below_shown = money_display(
        "balance_below", "customer.currency", description="balance below"
    )
    topup_below_shown = money_display(
        "topup_below", "customer.currency", description="top up below"
    )
    topup_amount_shown = money_display(
        "topup_amount", "customer.currency", description="top-up amount"
    )
    search_fields = ("customer__external_id", "customer__name")
    autocomplete_fields = ("customer",)
    fields = ("customer", *ALERT_SETTINGS_FIELDS, "webhook_secret", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request, obj=None):
        fixed = ("webhook_secret", "updated_at")
        return fixed if obj is None else ("customer", *fixed)

    def has_delete_permission(self, request, obj=None):
        return False  # empty the fields instead: pending webhooks still need the secret

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ALERT_SETTINGS_FIELDS}
        adopt(obj, alert_settings_update(customer=obj.customer, **fields))


class DeliveryInline(ReadOnlyInline):
    model = AlertDelivery
    fields = ("channel", "target", "status", "attempts", "response_status", "last_error",
              "next_attempt_at", "delivered_at")  # fmt: skip
    readonly_fields = fields


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("fired_shown", "customer", "kind", "message", "cleared_shown")
    list_filter = ("kind", "fired_at")
    list_select_related = ("customer",)
    search_fields = ("customer__external_id", "customer__name", "key")
    fields = ("customer", "kind", "message", ("threshold_shown", "amount_shown", "share"),
              "key", "period_start", "wallet", "grant_shown",
              ("fired_shown", "cleared_shown"))  # fmt: skip
    readonly_fields = ("customer", "kind", "message", "threshold_shown", "amount_shown", "share",
                       "key", "period_start", "wallet", "grant_shown", "fired_shown",
                       "cleared_shown")  # fmt: skip
    inlines = [DeliveryInline]
    threshold_shown = money_display("threshold", "currency", description="threshold")
    amount_shown = money_display("amount", "currency", description="amount")
    fired_shown = instant_display("fired_at", description="fired (UTC)")
    cleared_shown = instant_display("cleared_at", description="cleared (UTC)")

    grant_shown = grant_display()


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    """Every delivery with its attempts; failed ones can be tried again, now."""

    list_display = ("created_shown", "customer_shown", "kind_shown", "channel", "status",
                    "next_attempt_shown")  # fmt: skip
    list_filter = ("status", "channel", "alert__kind")
    list_select_related = ("alert__customer",)
    search_fields = ("alert__customer__external_id", "target")
    fields = ("alert", "channel", "target", "status", "attempts", "response_status",
              "last_error", "next_attempt_at", "delivered_at", "created_at", "payload",
              "history")  # fmt: skip
    readonly_fields = fields
    actions = ("retry_selected",)
    created_shown = instant_display("created_at", description="created (UTC)")
    next_attempt_shown = instant_display("next_attempt_at", description="next attempt (UTC)")
    customer_shown = customer_display("alert.customer")

    @admin.display(description="alert", ordering="alert__kind")
    def kind_shown(self, delivery: AlertDelivery) -> str:
        return delivery.alert.get_kind_display()

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("wallets.change_alertdelivery")

    @admin.action(description="Retry the selected failed deliveries now", permissions=["retry"])
    def retry_selected(self, request, queryset):
        retried = sum(alert_delivery_retry(delivery=delivery) for delivery in queryset)
        self.message_user(
            request,
            ngettext("Retrying %d delivery.", "Retrying %d deliveries.", retried) % retried
            + ("" if retried == len(queryset) else " Only failed deliveries are retried."),
            messages.SUCCESS if retried else messages.WARNING,
        )


@admin.register(TopUpRequest)
class TopUpRequestAdmin(ReadOnlyAdmin):
    """Top-ups asked for when a balance fell under its threshold. "Mark paid" grants the
    credits once (as billing's Stripe payments will); "Cancel" closes one unpaid."""

    list_display = ("requested_shown", "customer_shown", "amount_shown", "balance_shown",
                    "status", "paid_shown")  # fmt: skip
    list_filter = ("status",)
    list_select_related = ("wallet__customer",)
    search_fields = ("wallet__customer__external_id", "wallet__customer__name", "reference")
    fields = ("wallet", "amount_shown", "balance_shown", "status", "requested_shown",
              "paid_shown", "closed_by", "reference", "grant_shown")  # fmt: skip
    readonly_fields = fields
    amount_shown = money_display("amount", "wallet.currency", description="amount")
    balance_shown = money_display("balance", "wallet.currency", description="balance then")
    requested_shown = instant_display("requested_at", description="requested (UTC)")
    paid_shown = instant_display("paid_at", description="paid (UTC)")
    customer_shown = customer_display("wallet.customer")
    grant_shown = grant_display()
    actions = ("mark_paid_selected", "cancel_selected")

    def has_pay_permission(self, request) -> bool:
        return request.user.has_perm("wallets.add_creditgrant")

    @admin.action(description="Mark the selected top-ups paid (grants the credits)",
                  permissions=["pay"])  # fmt: skip
    def mark_paid_selected(self, request, queryset):
        paid = 0
        for topup in queryset.select_related("wallet"):
            if topup.status == TopUpRequest.Status.PAID:
                self.message_user(request, f"{topup}: paid already.", messages.WARNING)
                continue
            try:
                topup_mark_paid(request=topup, created_by=request.user.get_username())
            except ValidationError as error:
                self.message_user(request, f"{topup}: {error.messages[0]}", messages.ERROR)
            else:
                paid += 1
        if paid:
            self.message_user(
                request,
                ngettext("%d top-up paid.", "%d top-ups paid.", paid) % paid,
                messages.SUCCESS,
            )

    @admin.action(description="Cancel the selected top-ups", permissions=["pay"])
    def cancel_selected(self, request, queryset):
        by = request.user.get_username()
        cancelled = sum(topup_cancel(request=topup, created_by=by) for topup in queryset)
        self.message_user(
            request,
            ngettext("%d top-up cancelled.", "%d top-ups cancelled.", cancelled) % cancelled,
            messages.SUCCESS if cancelled else messages.WARNING,
        )
