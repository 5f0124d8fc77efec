"""Contracts and their amendments in the admin; every write goes through contracts.services.

A contract is shown with the full history of its terms, oldest first, and is never edited
or deleted here: it is created (with its first terms) on the add page, amended from an
instant on the Amend page, and ended (or its end moved) on the End page. Each page calls
one service; a refusal becomes form errors and stores nothing.
"""

import json
from datetime import datetime

from django import forms
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

from common.admin import ReadOnlyInline, form_errors_add, next_url
from contracts.models import (
    TERMS_FIELDS,
    TERMS_HISTORY_FIELDS,
    Contract,
    ContractTerms,
    Customer,
    RateCard,
)
from contracts.selectors import contract_terms_current
from contracts.services import contract_amend, contract_create, contract_end
from pricing.cycles import calendar_month, period_holding

INSTANT_HELP = "UTC. Usage at or after this instant is billed under these terms."


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
        label="Starts at", widget=AdminSplitDateTime, help_text="UTC."
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

    FIELDSETS = (
        (
            None,
            {
                "fields": ("customer", "starts_at", "ends_at"),
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

    class Media:
        js = ["contracts/contract_form.js"]

    def __init__(self, *args, period_start: datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if period_start is not None:
            # The admin shows help text as HTML; the button fills the two inputs
            # (contracts/contract_form.js).
            self.fields["starts_at"].help_text = format_html(
                'UTC. <button type="button" class="button tt-fill" data-fill="id_starts_at" '
                'data-date="{}" data-time="{}">Start of this period ({})</button>',
                f"{period_start:%Y-%m-%d}",
                f"{period_start:%H:%M:%S}",
                f"{period_start:%Y-%m-%d %H:%M} UTC",
            )

    def contract(self) -> dict:
        names = ("customer", "starts_at", "ends_at", "billing_cycle", "anchor_day", "anchor_month")
        return {name: self.cleaned_data[name] for name in names}


def period_start_for(customer_id: object, at: datetime) -> datetime:
    """The start of the billing period holding `at` for this customer (the calendar month
    when there is none, or no customer yet): what "Start of this period" fills in."""
    customer_id = str(customer_id or "")
    if not customer_id.isdigit():
        return calendar_month(at)[0]
    return period_holding(Contract.objects.filter(customer_id=int(customer_id)), at)[0]


class AmendmentForm(TermsForm):
    effective_from = forms.SplitDateTimeField(
        label="Effective from", widget=AdminSplitDateTime, help_text=INSTANT_HELP
    )

    FIELDSETS = (
        (None, {"fields": ("effective_from",)}),
        TermsForm.TERMS_FIELDSET,
    )


class ContractEndForm(forms.Form):
    ends_at = forms.SplitDateTimeField(
        label="Ends at",
        widget=AdminSplitDateTime,
        required=False,
        help_text="UTC, exclusive: usage from this instant on is no longer under this "
        "contract. Empty: open-ended (re-opens an ended contract).",
    )

    FIELDSETS = ((None, {"fields": ("ends_at",)}),)


def _posted(request):
    """The POSTed data (even empty, so a bare POST shows what is missing), or None."""
    return request.POST if request.method == "POST" else None


def _terms_history(contract: Contract) -> list[ContractTerms]:
    """The contract's terms, oldest first, each with its overrides as JSON text to show."""
    history = list(contract.terms.select_related("rate_card").order_by("number"))
    for terms in history:
        # A display attribute for the page's table, not a field of the model.
        terms.overrides_json = (  # type: ignore[attr-defined]
            _overrides_text(terms.price_overrides) if terms.price_overrides else ""
        )
    return history


# --- the history inline and the contract admin --------------------------------------------

TERMS_COLUMNS = TERMS_HISTORY_FIELDS


class ContractTermsInline(ReadOnlyInline):
    """Every set of terms, oldest first: shown, never edited or deleted."""

    model = ContractTerms
    verbose_name = "terms"
    verbose_name_plural = "Terms history (number 1 is the contract, each amendment the next)"
    fields = TERMS_COLUMNS
    readonly_fields = TERMS_COLUMNS
    ordering = ("number",)

    def has_delete_permission(self, request, obj=None):
        # ReadOnlyInline only hides the delete box; terms are not deleted, whoever asks.
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rate_card")


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
        "customer",
        "billing_cycle",
        "starts_at",
        "ends_at",
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
        "starts_at",
        "ends_at",
        "billing_cycle",
        "anchor_day",
        "anchor_month",
        "current_period",
        "created_at",
    )
    readonly_fields = fields
    inlines = [ContractTermsInline]

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

    @admin.display(description="customer's contracts")
    def customer_contracts(self, obj: Contract) -> str:
        url = reverse("admin:contracts_contract_changelist")
        return format_html(
            '<a href="{}?customer={}">all of {}</a>', url, obj.customer_id, obj.customer.external_id
        )

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

    @admin.display(description="current rate card")
    def current_rate_card(self, obj: Contract) -> str:
        terms = contract_terms_current(contract=obj)
        return terms.rate_card.name if terms else "—"

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
        customer_id = request.POST.get("customer") or request.GET.get("customer")
        form = ContractAddForm(
            _posted(request),
            initial={"customer": request.GET.get("customer")},
            period_start=period_start_for(customer_id, timezone.now()),
        )
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
        initial = {name: getattr(latest, name) for name in TERMS_FIELDS}
        form = AmendmentForm(_posted(request), initial=initial)
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
