"""Wallets in the admin: each wallet with its grants and ledger, and pages to grant credits
and to adjust with a reason. Every write goes through wallets.services; nothing is edited."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from contracts.models import Customer

from .models import CreditGrant, Hold, LedgerEntry, Wallet
from .services import InsufficientCredits, credit_grant, wallet_adjust


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
    amount = forms.DecimalField(min_value=0, max_digits=20, decimal_places=12)
    source = forms.ChoiceField(choices=CreditGrant.Source.choices)
    priority = forms.IntegerField(initial=0, help_text="Higher is drawn first.")
    expires_at = forms.DateTimeField(
        required=False, help_text="UTC, e.g. 2026-12-31 23:59. Empty: never expires."
    )
    reason = forms.CharField(max_length=300, required=False)


class AdjustForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=20, decimal_places=12, help_text="Positive adds credits; negative removes."
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
                _form_errors(form, error)
            else:
                messages.success(request, f"Granted {data['amount']} to {data['customer']}.")
                return redirect(reverse("admin:wallets_wallet_change", args=[grant.wallet_id]))
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
                _form_errors(form, error)
            else:
                messages.success(request, f"Adjusted {wallet} by {form.cleaned_data['amount']}.")
                return redirect(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
        return self._page(request, form, f"Adjust {wallet}", original=wallet)

    def _page(self, request, form, title, **context):
        return TemplateResponse(
            request,
            "admin/wallets/wallet/form.html",
            {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
             "title": title, **context},
        )  # fmt: skip


def _form_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)
