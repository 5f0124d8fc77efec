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

from common.admin import ReadOnlyAdmin, ReadOnlyInline, adopt, form_errors_add, next_url
from contracts.models import Customer
from pricing.money import RATED_PLACES

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
    fields = (
        "source", "amount", "remaining", "priority", "effective_at", "expires_at", "reason",
        "created_by",
    )  # fmt: skip
    readonly_fields = fields


class HoldInline(ReadOnlyInline):
    """The holds of authorized calls still reserving credits."""

    model = Hold
    verbose_name_plural = "active holds"
    fields = ("id", "amount", "estimate", "reference", "created_at", "expires_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=Hold.Status.ACTIVE)


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = (
        "created_at", "kind", "amount", "grant", "hold", "reference", "reason", "created_by",
    )  # fmt: skip
    readonly_fields = fields


class GrantForm(forms.Form):
    customer = forms.ModelChoiceField(Customer.objects.order_by("external_id"))
    amount = forms.DecimalField(min_value=0, max_digits=20, decimal_places=RATED_PLACES)
    source = forms.ChoiceField(choices=CreditGrant.Source.choices)
    priority = forms.IntegerField(initial=0, help_text="Higher is drawn first.")
    expires_at = forms.DateTimeField(
        required=False, help_text="UTC, e.g. 2026-12-31 23:59. Empty: never expires."
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
    list_display = ("customer", "currency", "balance", "held", "created_at")
    list_select_related = ("customer",)
    search_fields = ("customer__external_id", "customer__name")
    fields = ("customer", "currency", "balance", "held", "available", "created_at")
    readonly_fields = fields
    inlines = [GrantInline, HoldInline, LedgerInline]
    change_form_template = "admin/wallets/wallet/change_form.html"
    change_list_template = "admin/wallets/wallet/change_list.html"

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
                    expires_at=data["expires_at"],
                    reason=data["reason"],
                    created_by=request.user.get_username(),
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                messages.success(request, f"Granted {data['amount']} to {data['customer']}.")
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
                messages.success(request, f"Adjusted {wallet} by {form.cleaned_data['amount']}.")
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

    list_display = ("customer", "budget", "balance_below", "topup_below", "topup_amount",
                    "webhook_url")  # fmt: skip
    list_select_related = ("customer",)
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
    list_display = ("fired_at", "customer", "kind", "message", "cleared_at")
    list_filter = ("kind", "fired_at")
    list_select_related = ("customer",)
    search_fields = ("customer__external_id", "customer__name", "key")
    fields = ("customer", "kind", "message", "key", "share", "threshold", "amount", "currency",
              "period_start", "wallet", "grant", "fired_at", "cleared_at")  # fmt: skip
    readonly_fields = fields
    inlines = [DeliveryInline]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    """Every delivery with its attempts; failed ones can be tried again, now."""

    list_display = ("created_at", "alert", "channel", "target", "status", "attempts",
                    "response_status", "next_attempt_at", "delivered_at")  # fmt: skip
    list_filter = ("status", "channel", "alert__kind")
    list_select_related = ("alert",)
    search_fields = ("alert__customer__external_id", "target")
    fields = ("alert", "channel", "target", "status", "attempts", "response_status",
              "last_error", "next_attempt_at", "delivered_at", "created_at", "payload",
              "history")  # fmt: skip
    readonly_fields = fields
    actions = ("retry_selected",)

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

    list_display = ("requested_at", "wallet", "amount", "balance", "status", "paid_at",
                    "closed_by", "reference")  # fmt: skip
    list_filter = ("status",)
    list_select_related = ("wallet__customer",)
    search_fields = ("wallet__customer__external_id", "wallet__customer__name", "reference")
    fields = ("wallet", "amount", "balance", "status", "requested_at", "paid_at", "closed_by",
              "reference", "grant")  # fmt: skip
    readonly_fields = fields
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
