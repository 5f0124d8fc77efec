"""Contracts and their amendments in the admin; every write goes through contracts.services.

A contract is shown with the full history of its terms, oldest first, and is never edited
or deleted here: it is created (with its first terms) on the add page, amended from an
instant on the Amend page, and ended (or its end moved) on the End page. Each page calls
one service; a refusal becomes form errors and stores nothing.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminSplitDateTime, AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dates import MONTHS
from django.utils.html import format_html

from common.admin import (
    ReadOnlyInline,
    customer_display,
    form_errors_add,
    instant_display,
    money_display,
    next_url,
)
from contracts.models import (
    TERMS_FIELDS,
    Contract,
    ContractTerms,
    Customer,
    RateCard,
)
from contracts.selectors import contract_terms_current
from contracts.services import (
    contract_amend,
    contract_create,
    contract_end,
    contract_payment_terms_set,
)
from pricing.money import minor_places, money_label, plain

from .quick_dates import QuickDateTimeWidget, at_choice

INSTANT_HELP = "UTC. Usage at or after this instant is billed under these terms."
PAYMENT_TERMS_HELP = (
    "Days from an invoice's issue to its due date, 0 to 365 (0: due on receipt). Empty: "
    "the default, TOKENTILL_PAYMENT_TERMS_DAYS."
)
#: The add form's fields that say which period holds an instant (its quick choice reads them).
PERIOD_FIELDS = "billing_cycle anchor_day anchor_month"


# --- forms --------------------------------------------------------------------------------


def _overrides_text(overrides) -> str:
    """Overrides as JSON with sorted keys: PostgreSQL's jsonb does not keep the order they
    were written in, and the page should read the same on either database."""
    return json.dumps(overrides, sort_keys=True, ensure_ascii=False)


class OverridesField(forms.JSONField):
    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return _overrides_text(value)


class TermsForm(forms.Form):
    """The terms a contract starts with, or an amendment sets (prefilled from the latest)."""

    rate_card = forms.ModelChoiceField(queryset=RateCard.objects.order_by("name"))
    fixed_fee = forms.DecimalField(
        max_digits=15, decimal_places=4, initial=0, help_text="Per full billing period."
    )
    included_allowance = forms.DecimalField(
        max_digits=15,
        decimal_places=4,
        initial=0,
        help_text="Usage money included each period.",
    )
    overage_policy = forms.ChoiceField(
        choices=ContractTerms.Overage.choices, initial=ContractTerms.Overage.ARREARS
    )
    credits_cover_arrears = forms.BooleanField(
        required=False,
        initial=True,
        help_text=ContractTerms._meta.get_field("credits_cover_arrears").help_text,
    )
    minimum_commitment = forms.DecimalField(
        max_digits=15,
        decimal_places=4,
        initial=0,
        help_text="Usage money billed at least each period (0: none).",
    )
    discount_percent = forms.DecimalField(
        label="Discount (%)",
        max_digits=7,
        decimal_places=4,
        initial=0,
        help_text="Taken off usage, e.g. 10 for 10 %.",
    )
    price_overrides = OverridesField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Rates replaced for this customer, by price name: "
        '{"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}}. Amounts in quotes.',
    )
    note = forms.CharField(max_length=200, required=False)

    TERMS_FIELDSET = (
        "Terms",
        {
            "fields": (
                "rate_card",
                ("fixed_fee", "included_allowance"),
                ("overage_policy", "credits_cover_arrears"),
                "minimum_commitment",
                "discount_percent",
                "price_overrides",
                "note",
            )
        },
    )

    def terms(self) -> dict:
        values = {name: self.cleaned_data[name] for name in TERMS_FIELDS}
        if values["price_overrides"] in (None, ""):
            values["price_overrides"] = {}
        return {**values, "note": self.cleaned_data["note"]}


class ContractAddForm(TermsForm):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.order_by("external_id"),
        widget=AutocompleteSelect(Contract._meta.get_field("customer"), admin.site),
    )
    starts_at = forms.SplitDateTimeField(
        label="Starts at",
        widget=QuickDateTimeWidget(
            quick=[("start of this period", {"data-period": PERIOD_FIELDS})]
        ),
        help_text="UTC. “Start of this period” picks the start of the period holding today, "
        "as the billing cycle and anchor below count periods.",
    )
    ends_at = forms.SplitDateTimeField(
        label="Ends at",
        widget=AdminSplitDateTime,
        required=False,
        help_text="UTC, exclusive. Empty: open-ended.",
    )
    billing_cycle = forms.ChoiceField(
        choices=Contract.Cycle.choices, initial=Contract.Cycle.MONTHLY
    )
    anchor_day = forms.IntegerField(
        required=False,
        help_text="Day of the month periods start on, 1-31 (31: the month's last day). "
        "Empty: the start's day.",
    )
    anchor_month = forms.TypedChoiceField(
        choices=[("", "— the start's month —"), *MONTHS.items()],
        coerce=int,
        empty_value=None,
        required=False,
        help_text="Quarterly and yearly periods count their months from this one.",
    )

    payment_terms_days = forms.IntegerField(
        label="Payment terms (days)",
        required=False,
        help_text=PAYMENT_TERMS_HELP,
    )

    FIELDSETS = (
        (
            None,
            {
                "fields": ("customer", "starts_at", "ends_at", "payment_terms_days"),
            },
        ),
        (
            "Billing cycle",
            {
                "fields": ("billing_cycle", ("anchor_day", "anchor_month")),
                "description": "Fixed for the contract's life: to bill on another cycle, end "
                "the contract (at a period's end) and add a new one from that instant.",
            },
        ),
        TermsForm.TERMS_FIELDSET,
    )

    def contract(self) -> dict:
        names = (
            "customer",
            "starts_at",
            "ends_at",
            "billing_cycle",
            "anchor_day",
            "anchor_month",
            "payment_terms_days",
        )
        return {name: self.cleaned_data[name] for name in names}


class AmendmentForm(TermsForm):
    effective_from = forms.SplitDateTimeField(
        label="Effective from", widget=QuickDateTimeWidget, help_text=INSTANT_HELP
    )

    FIELDSETS = (
        (None, {"fields": ("effective_from",)}),
        TermsForm.TERMS_FIELDSET,
    )


class ContractEndForm(forms.Form):
    ends_at = forms.SplitDateTimeField(
        label="Ends at",
        widget=QuickDateTimeWidget,
        required=False,
        help_text="UTC, exclusive: usage from this instant on is no longer under this "
        "contract. Empty: open-ended (re-opens an ended contract).",
    )

    FIELDSETS = ((None, {"fields": ("ends_at",)}),)


class PaymentTermsForm(forms.Form):
    payment_terms_days = forms.IntegerField(
        label="Payment terms (days)", required=False, help_text=PAYMENT_TERMS_HELP
    )

    FIELDSETS = ((None, {"fields": ("payment_terms_days",)}),)


def _terms_initial(terms: ContractTerms, currency: str) -> dict:
    """The latest terms to prefill an amendment, each figure as a person writes it: 500.00
    and 5, not 500.0000 and 5.0000."""
    initial = {name: getattr(terms, name) for name in TERMS_FIELDS}
    for name in ("fixed_fee", "included_allowance", "minimum_commitment"):
        initial[name] = plain(initial[name], minor_places(currency))
    initial["discount_percent"] = plain(initial["discount_percent"])
    return initial


def _posted(request):
    """The POSTed data (even empty, so a bare POST shows what is missing), or None."""
    return request.POST if request.method == "POST" else None


def _terms_history(contract: Contract) -> list[dict]:
    """The contract's terms, oldest first, as the page's table shows them: money in the
    customer's currency, the overrides as JSON text."""
    currency = contract.customer.currency
    return [
        {
            "number": terms.number,
            "effective_from": terms.effective_from,
            "rate_card": terms.rate_card.name,
            "fixed_fee": money_label(terms.fixed_fee, currency),
            "allowance": money_label(terms.included_allowance, currency),
            "minimum": money_label(terms.minimum_commitment, currency),
            "discount": f"{plain(terms.discount_percent)} %",
            "overage": overage_text(terms),
            "overrides": _overrides_text(terms.price_overrides) if terms.price_overrides else "",
            "note": terms.note,
        }
        for terms in contract.terms.select_related("rate_card").order_by("number")
    ]


# --- the history inline and the contract admin --------------------------------------------


def overage_text(terms: ContractTerms) -> str:
    """The overage policy, short: in arrears (and whether later credits pay it) or block."""
    if terms.overage_policy == ContractTerms.Overage.BLOCK:
        return "block"
    return "arrears; later credits pay it" if terms.credits_cover_arrears else "arrears"


def overrides_names(terms: ContractTerms) -> str:
    """The prices whose rates the terms replace, by name; the rates are on the amend page."""
    return ", ".join(sorted(terms.price_overrides)) if terms.price_overrides else "—"


class ContractTermsInline(ReadOnlyInline):
    """Every set of terms, oldest first: shown, never edited or deleted. Money in the
    customer's currency with its minor places; who made each set is in the history."""

    model = ContractTerms
    verbose_name = "terms"
    verbose_name_plural = "Terms history (number 1 is the contract, each amendment the next)"
    fields = ("terms_number", "effective_shown", "card", "fee_shown", "allowance_shown",
              "minimum_shown", "discount", "overage", "overrides", "note")  # fmt: skip
    readonly_fields = fields
    ordering = ("number",)
    effective_shown = instant_display("effective_from", description="from (UTC)")
    fee_shown = money_display("fixed_fee", "contract.customer.currency", description="fixed fee")
    allowance_shown = money_display(
        "included_allowance", "contract.customer.currency", description="allowance"
    )
    minimum_shown = money_display(
        "minimum_commitment", "contract.customer.currency", description="minimum"
    )

    def has_delete_permission(self, request, obj=None):
        # ReadOnlyInline only hides the delete box; terms are not deleted, whoever asks.
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rate_card", "contract__customer")

    @admin.display(description="#")
    def terms_number(self, terms: ContractTerms) -> int:
        return terms.number

    @admin.display(description="rate card")
    def card(self, terms: ContractTerms) -> str:
        url = reverse("admin:contracts_ratecard_change", args=[terms.rate_card_id])
        return format_html('<a href="{}">{}</a>', url, terms.rate_card.name)

    @admin.display(description="discount")
    def discount(self, terms: ContractTerms) -> str:
        return f"{plain(terms.discount_percent)} %"

    @admin.display(description="overage")
    def overage(self, terms: ContractTerms) -> str:
        return overage_text(terms)

    @admin.display(description="overrides")
    def overrides(self, terms: ContractTerms) -> str:
        return overrides_names(terms)


class CustomerFilter(admin.SimpleListFilter):
    """One customer's contracts (the list's "all contracts" links): shown while in use."""

    title = "customer"
    parameter_name = "customer"

    def lookups(self, request, model_admin):
        # Django applies only filters that show choices: an unknown value gets one too.
        value = self.value()
        if value is None:
            return []
        customer = self._customer()
        return [(value, str(customer) if customer else f"no customer {value!r}")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        customer = self._customer()
        return queryset.filter(customer=customer) if customer else queryset.none()

    def _customer(self) -> Customer | None:
        value = self.value()
        if not value or not value.isdigit():
            return None
        return Customer.objects.filter(pk=int(value)).first()


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = (
        "customer_shown",
        "cycle",
        "starts_shown",
        "ends_shown",
        "current_rate_card",
        "customer_contracts",
    )
    list_filter = (CustomerFilter, "billing_cycle")
    search_fields = ("customer__external_id", "customer__name")
    search_help_text = "Search by the customer's external id or name."
    list_select_related = ("customer",)
    ordering = ("customer__external_id", "starts_at")
    fields = (
        "customer_link",
        ("starts_shown", "ends_shown"),
        ("billing_cycle", "anchor_day", "anchor_month"),
        "payment_terms",
        "current_period",
        "created_shown",
    )
    readonly_fields = (
        "customer_link",
        "starts_shown",
        "ends_shown",
        "billing_cycle",
        "anchor_day",
        "anchor_month",
        "payment_terms",
        "current_period",
        "created_shown",
    )
    inlines = [ContractTermsInline]
    customer_shown = customer_display()
    starts_shown = instant_display("starts_at", description="starts (UTC)")
    ends_shown = instant_display("ends_at", description="ends (UTC)")
    created_shown = instant_display("created_at", description="created (UTC)")

    # Contracts change only through the Amend and End pages; nothing is deleted.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_amend_permission(self, request) -> bool:
        return request.user.has_perm("contracts.change_contract")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                models.Prefetch("terms", queryset=ContractTerms.objects.select_related("rate_card"))
            )
        )

    # --- columns and read-only fields ---

    @admin.display(description="contracts")
    def customer_contracts(self, obj: Contract) -> str:
        url = reverse("admin:contracts_contract_changelist")
        return format_html(
            '<a href="{}?customer={}">all of {}</a>', url, obj.customer_id, obj.customer.external_id
        )

    @admin.display(description="cycle", ordering="billing_cycle")
    def cycle(self, obj: Contract) -> str:
        return obj.get_billing_cycle_display()

    @admin.display(description="customer")
    def customer_link(self, obj: Contract) -> str:
        customer_url = reverse("admin:contracts_customer_change", args=[obj.customer_id])
        contracts_url = reverse("admin:contracts_contract_changelist")
        return format_html(
            '<a href="{}">{}</a> · <a href="{}?customer={}">all contracts</a>',
            customer_url,
            obj.customer,
            contracts_url,
            obj.customer_id,
        )

    @admin.display(description="rate card now")
    def current_rate_card(self, obj: Contract) -> str:
        terms = contract_terms_current(contract=obj)
        return terms.rate_card.name if terms else "—"

    @admin.display(description="payment terms")
    def payment_terms(self, obj: Contract) -> str:
        if obj.payment_terms_days is None:
            return f"the default ({settings.TOKENTILL_PAYMENT_TERMS_DAYS} days)"
        if obj.payment_terms_days == 0:
            return "due on receipt"
        return f"{obj.payment_terms_days} days"

    @admin.display(description="current period (UTC)")
    def current_period(self, obj: Contract) -> str:
        start, end = obj.period_bounds(timezone.now())
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (periods are [start, end))"

    # --- pages ---

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/amend/",
                self.admin_site.admin_view(self.amend_view),
                name="{}_{}_amend".format(*info),
            ),
            path(
                "<path:object_id>/payment-terms/",
                self.admin_site.admin_view(self.payment_terms_view),
                name="{}_{}_payment_terms".format(*info),
            ),
            path(
                "<path:object_id>/end/",
                self.admin_site.admin_view(self.end_view),
                name="{}_{}_end".format(*info),
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_amend_permission": self.has_amend_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        """A contract with its first terms, through contract_create."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ContractAddForm(_posted(request), initial={"customer": request.GET.get("customer")})
        if request.method == "POST" and form.is_valid():
            try:
                contract = contract_create(
                    **form.contract(), **form.terms(), created_by=request.user.get_username()
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                self.log_addition(request, contract, [{"added": {}}])
                self.message_user(request, f"Contract {contract} added.", messages.SUCCESS)
                self._warn_unpriced_start(request, contract)
                return self._back_to(request, contract)
        return self._form_page(
            request,
            form=form,
            fieldsets=ContractAddForm.FIELDSETS,
            title="Add contract",
            submit="Add contract",
        )

    def amend_view(self, request, object_id):
        """New terms from an instant, prefilled with the latest terms (contract_amend)."""
        contract = self._to_amend(request, object_id)
        latest = contract.terms.select_related("rate_card").order_by("-number").first()
        initial = _terms_initial(latest, contract.customer.currency)
        form = AmendmentForm(_posted(request), initial=initial)
        start, _ = contract.period_bounds(timezone.now())
        form.fields["effective_from"].widget.quick = [
            at_choice(f"start of this period ({start:%Y-%m-%d})", start)
        ]
        if request.method == "POST" and form.is_valid():
            try:
                terms = contract_amend(
                    contract=contract,
                    effective_from=form.cleaned_data["effective_from"],
                    created_by=request.user.get_username(),
                    **form.terms(),
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                message = (
                    f"Amended: terms {terms.number} from {terms.effective_from:%Y-%m-%d %H:%M} UTC."
                )
                return self._changed(request, contract, message)
        return self._form_page(
            request,
            form=form,
            fieldsets=AmendmentForm.FIELDSETS,
            title=f"Amend {contract}",
            submit="Amend",
            contract=contract,
            intro=(
                f"The form holds the latest terms (number {latest.number}, from "
                f"{latest.effective_from:%Y-%m-%d %H:%M} UTC). Change what the amendment "
                "changes and choose when it takes effect; it may be mid-period (fees and "
                "allowances are prorated) and must come after the latest terms start."
            ),
        )

    def end_view(self, request, object_id):
        """End the contract, move its end, or re-open it (contract_end)."""
        contract = self._to_amend(request, object_id)
        form = ContractEndForm(_posted(request), initial={"ends_at": contract.ends_at})
        _, end = contract.period_bounds(timezone.now())
        form.fields["ends_at"].widget.quick = [
            at_choice(f"end of this period ({end:%Y-%m-%d} 00:00)", end)
        ]
        if request.method == "POST" and form.is_valid():
            before = contract.ends_at
            try:
                contract = contract_end(contract=contract, ends_at=form.cleaned_data["ends_at"])
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                if contract.ends_at == before:
                    self.message_user(request, "Nothing changed.", messages.INFO)
                    return self._back_to(request, contract)
                message = (
                    f"Ends at {contract.ends_at:%Y-%m-%d %H:%M} UTC."
                    if contract.ends_at
                    else "Open-ended."
                )
                return self._changed(request, contract, message)
        return self._form_page(
            request,
            form=form,
            fieldsets=ContractEndForm.FIELDSETS,
            title=f"End {contract}",
            submit="Save the end",
            contract=contract,
            intro=(
                "The end must come after the latest terms start and may not reach into "
                "the customer's next contract. To change the billing cycle or anchor, end "
                "this contract at a period's end and add a new one from that instant."
            ),
        )

    def payment_terms_view(self, request, object_id):
        """When the contract's invoices fall due (contract_payment_terms_set)."""
        contract = self._to_amend(request, object_id)
        form = PaymentTermsForm(
            _posted(request), initial={"payment_terms_days": contract.payment_terms_days}
        )
        if request.method == "POST" and form.is_valid():
            days = form.cleaned_data["payment_terms_days"]
            try:
                contract = contract_payment_terms_set(contract=contract, payment_terms_days=days)
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                shown = self.payment_terms(contract)
                return self._changed(request, contract, f"Payment terms: {shown}.")
        return self._form_page(
            request,
            form=form,
            fieldsets=PaymentTermsForm.FIELDSETS,
            title=f"Payment terms of {contract}",
            submit="Save the payment terms",
            contract=contract,
            intro=(
                "Invoices issued from now on fall due this many days after their issue; "
                "those already issued keep their due date."
            ),
        )

    def _to_amend(self, request, object_id) -> Contract:
        """The contract the Amend or End page changes: both need the amend permission."""
        if not self.has_amend_permission(request):
            raise PermissionDenied
        return get_object_or_404(Contract.objects.select_related("customer"), pk=object_id)

    def _changed(self, request, contract: Contract, message: str) -> HttpResponseRedirect:
        """A change stored: the same words go to the contract's history and to the user."""
        self.log_change(request, contract, message)
        self.message_user(request, message, messages.SUCCESS)
        return self._back_to(request, contract)

    def _warn_unpriced_start(self, request, contract: Contract) -> None:
        """A contract may start before its rate card has prices: say what that leaves."""
        terms = contract.terms.select_related("rate_card").get()
        first = terms.rate_card.versions.order_by("effective_from").first()
        if first is not None and contract.starts_at < first.effective_from:
            self.message_user(
                request,
                f"{terms.rate_card.name} has prices from {first.effective_from:%Y-%m-%d %H:%M} "
                "UTC: usage before then stays unpriced until the card has prices from the "
                "contract's start.",
                messages.WARNING,
            )

    def _back_to(self, request, contract: Contract) -> HttpResponseRedirect:
        """The page the form was opened from (`next`: the customer page), else the contract's."""
        default = reverse("admin:contracts_contract_change", args=[contract.pk])
        return HttpResponseRedirect(next_url(request, default))

    def _form_page(self, request, *, form, fieldsets, title, submit, contract=None, intro=""):
        adminform = helpers.AdminForm(form, list(fieldsets), {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "original": contract,
            "adminform": adminform,
            "errors": helpers.AdminErrorList(form, []),
            "media": self.media + adminform.media,
            "submit_label": submit,
            "intro": intro,
            "next": next_url(request, ""),
            "terms_history": _terms_history(contract) if contract else [],
        }
        return TemplateResponse(request, "admin/contracts/contract/contract_form.html", context)
