"""Customers and operator API keys in the admin; every write goes through contracts.services.

A customer's page holds the whole customer: besides their fields, one section per subject
(their contracts here; the current period, usage, invoices, wallet, alerts and portal
users from the apps that own them). contracts may not import those apps, so each one
registers its sections here with `customer_page_section` when the admin loads it
(billing/admin/customer_page.py, wallets/customer_page.py, portal/customer_page.py); the
page draws every section its user may see, in order. Each action a section offers opens
with `next` set to the customer's page, so the admin comes back here once it is done.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from common.admin import adopt
from contracts.models import ApiKey, Contract, Customer
from contracts.selectors import contract_list, contract_terms_current
from contracts.services import api_key_create, api_key_revoke, customer_create, customer_update
from pricing.cycles import span_text
from pricing.money import minor_places, plain

CUSTOMER_CHANGEABLE_FIELDS = ("name", "email", "legal_name", "billing_address", "tax_id", "status")
BILL_TO_FIELDSET: Any = (
    "Bill to",
    {
        "fields": ("email", "legal_name", "billing_address", "tax_id"),
        "description": "What invoices print under Bill to; they are emailed to the billing "
        "email when Stripe is off.",
    },
)

# --- the customer page's sections --------------------------------------------------------

#: What a section shows a user: its template's context, or None to leave it out (the
#: user may not see what it is about).
SectionContext = Callable[[HttpRequest, Customer], dict[str, Any] | None]


@dataclass(frozen=True)
class CustomerSection:
    key: str  # the section's anchor on the page: #tt-<key>
    order: int
    title: str
    template: str
    context: SectionContext


CUSTOMER_SECTIONS: list[CustomerSection] = []


def customer_page_section(
    *, key: str, order: int, title: str, template: str
) -> Callable[[SectionContext], SectionContext]:
    """Register the decorated function as the context of a section of the customer page
    (a key registered again replaces its section, so a reloaded module adds none twice)."""

    def register(context: SectionContext) -> SectionContext:
        section = CustomerSection(key, order, title, template, context)
        kept = [each for each in CUSTOMER_SECTIONS if each.key != key]
        CUSTOMER_SECTIONS[:] = sorted([*kept, section], key=lambda each: each.order)
        return context

    return register


def customer_page_url(customer: Customer) -> str:
    return reverse("admin:contracts_customer_change", args=[customer.pk])


def with_next(url: str, customer: Customer, /, **params: object) -> str:
    """`url` opened from the customer page: the action returns there once done."""
    query = {name: value for name, value in params.items() if value is not None}
    return f"{url}?{urlencode({**query, 'next': customer_page_url(customer)})}"


def terms_money(value: Decimal, currency: str) -> str:
    """A contract's money (kept to 4 places) with the currency's minor places and every
    digit it has beyond them, so nothing agreed is rounded away: 500.00 USD, 0.125 USD."""
    return f"{plain(value, minor_places(currency))} {currency}"


@customer_page_section(
    key="contracts",
    order=10,
    title="Contract and terms",
    template="admin/contracts/customer/section_contracts.html",
)
def contracts_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    user = request.user
    if not user.has_perm("contracts.view_contract"):
        return None
    now = timezone.now()
    may_amend = user.has_perm("contracts.change_contract")
    contracts = []
    for contract in contract_list(customer=customer).order_by("-starts_at"):
        state = _contract_state(contract, now)
        # The terms marked "now": those in force, only while the contract is.
        current = contract_terms_current(contract=contract, at=now) if state == "in force" else None
        amend = reverse("admin:contracts_contract_amend", args=[contract.pk])
        end = reverse("admin:contracts_contract_end", args=[contract.pk])
        contracts.append(
            {
                "contract": contract,
                "url": reverse("admin:contracts_contract_change", args=[contract.pk]),
                "state": state,
                "cycle": contract.get_billing_cycle_display(),
                "period": span_text(*contract.period_bounds(now)),
                "amend_url": may_amend and with_next(amend, customer),
                "end_url": may_amend and with_next(end, customer),
                "terms": [
                    {
                        "terms": terms,
                        "current": current is not None and terms.pk == current.pk,
                        "fixed_fee": terms_money(terms.fixed_fee, customer.currency),
                        "allowance": terms_money(terms.included_allowance, customer.currency),
                        "minimum": terms_money(terms.minimum_commitment, customer.currency),
                        "discount": f"{plain(terms.discount_percent)} %",
                        "rate_card_url": reverse(
                            "admin:contracts_ratecard_change", args=[terms.rate_card_id]
                        ),
                    }
                    for terms in contract.terms.all()
                ],
            }
        )
    add_url = user.has_perm("contracts.add_contract") and with_next(
        reverse("admin:contracts_contract_add"), customer, customer=customer.pk
    )
    return {"contracts": contracts, "add_url": add_url}


def _contract_state(contract: Contract, now) -> str:
    if now < contract.starts_at:
        return "starts later"
    if contract.ends_at is not None and now >= contract.ends_at:
        return "ended"
    return "in force"


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "currency", "status", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("external_id", "name", "email")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("external_id", "currency"),
                    "name",
                    "status",
                    ("created_at", "updated_at"),
                )
            },
        ),
        BILL_TO_FIELDSET,
    )
    # A new customer starts active; its status is changed afterwards.
    add_fieldsets = ((None, {"fields": ("external_id", "name", "currency")}), BILL_TO_FIELDSET)
    add_fields = (
        "external_id",
        "name",
        "currency",
        "email",
        "legal_name",
        "billing_address",
        "tax_id",
    )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Events and money refer to these two: they are fixed once the customer exists.
        return ("external_id", "currency", "created_at", "updated_at")

    def has_delete_permission(self, request, obj=None):
        # Usage, invoices and ledger entries point at customers: close one instead.
        return False

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "billing_address":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 4, "cols": 40})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The customer's fields, then every section of the page its user may see."""
        customer = self.get_object(request, object_id)
        sections = []
        if customer is not None:
            for section in CUSTOMER_SECTIONS:
                context = section.context(request, customer)
                if context is not None:
                    sections.append({"section": section, "context": context})
        extra_context = {**(extra_context or {}), "customer_sections": sections}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            changed = {
                name: form.cleaned_data[name]
                for name in CUSTOMER_CHANGEABLE_FIELDS
                if name in form.changed_data
            }
            if changed:
                customer_update(customer=obj, **changed)
            return
        customer = customer_create(**{name: form.cleaned_data[name] for name in self.add_fields})
        adopt(obj, customer)


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "active")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Operator keys are created here (shown once); every key, customers' read-only keys
    too, is looked at and revoked here; never edited or deleted."""

    list_display = ("name", "masked_key", "customer", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("customer",)
    list_filter = (ApiKeyStateFilter,)
    search_fields = ("name", "prefix")
    actions = ("revoke_selected",)
    readonly_fields = (
        "name",
        "masked_key",
        "customer",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )

    @admin.display(description="key")
    def masked_key(self, obj: ApiKey) -> str:
        return f"tt_{obj.prefix}_…"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name",)
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        # A key's name and secret are fixed: the change view is read-only.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting would lose who used the API and when: revoke instead.
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("contracts.change_apikey")

    def save_model(self, request, obj, form, change):
        api_key, plain_key = api_key_create(name=form.cleaned_data["name"])
        adopt(obj, api_key)
        messages.success(
            request,
            f"The new API key for “{api_key.name}” is {plain_key} — copy it now, "
            "it will not be shown again.",
        )

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        active = [api_key for api_key in queryset if api_key.is_active]
        for api_key in active:
            api_key_revoke(api_key=api_key)
        self.message_user(
            request,
            ngettext("Revoked %d key.", "Revoked %d keys.", len(active)) % len(active),
            messages.SUCCESS,
        )
