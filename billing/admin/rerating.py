"""Re-rating and price corrections in the admin: the diff first, applied only on
confirmation (billing.corrections, billing.rating.rerating).

- **Correct a price from…** (a rate card's page): the price's rates as they are now, the
  instant it is corrected from, a reason; *Preview* shows the diff per customer and period
  (for a closed period, what the next closing credits or bills, and where), *Apply the
  correction* makes it, recorded with the user and the reason (and in the card's history).
  Apply is only taken for exactly what was previewed: changed fields are previewed again.
- **Re-rate a period…** (a customer's page) and **Re-rate every customer of this card…**
  (a rate card's page): the period holding an instant, re-rated with today's prices and
  terms, then applied (the user and what was queued go in the customer's or card's
  history).

Permissions: correcting a price takes "contracts | price correction | Can add"; seeing a
re-rating diff takes "billing | usage rollup | Can view", applying it "billing | usage
rollup | Can change" (the admin never edits a rollup by hand: re-rating is the one way
rated usage changes).

UsageRollupAdmin carries these pages (`RerateAdmin`), as its own URLs.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from contracts.admin.price_builder.forms import (
    AmountField,
    InstantField,
    model_errors_add,
    rates_in_order,
    rates_text,
)
from contracts.models import RATE_UNITS, Customer, Price, RateCard
from pricing.cycles import span_text
from pricing.money import exact_text, money_label

from ..corrections import (
    ClosedPeriodOutcome,
    PriceCorrectionResult,
    period_preview,
    price_correction_apply,
    price_correction_preview,
    rate_card_rerate,
)
from ..invoicing.lines import period_face
from ..periods import period_rollups
from ..rating.rerating import RerateDiff, period_rerate

CORRECT_PERMISSION = "contracts.add_pricecorrection"
RERATE_VIEW_PERMISSION = "billing.view_usagerollup"
RERATE_PERMISSION = "billing.change_usagerollup"
RATE_LABELS = {
    "rate_in": "Input price",
    "rate_out": "Output price",
    "rate_cached": "Cached input price",
    "rate_cache_write": "Cache write price",
}
TEMPLATES = "admin/billing/rerate"


# --- forms ------------------------------------------------------------------------------


def _a_week_ago() -> datetime:
    return (timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)


def _this_minute() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


class CorrectionForm(forms.Form):
    """A correction of one price: from when, its rates (as they are now, to change), an
    optional formula, and why. Only the rates changed from what they are now are sent, so a
    rate a later version changed is left as each version has it."""

    effective_from = InstantField(
        initial=_a_week_ago,
        label="Correct from (UTC)",
        help_text="From this instant on, usage already rated included.",
    )
    reason = forms.CharField(
        max_length=2_000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: kept with the correction, with your user name.",
    )
    formula = forms.CharField(
        required=False,
        max_length=2_000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"}),
        help_text="Empty: the price keeps its formula.",
    )

    def __init__(self, *args, price: Price, **kwargs):
        super().__init__(*args, **kwargs)
        self.price = price
        self.rate_names = []
        for name, rate in rates_in_order(price.rates, price.formula):
            unit = RATE_UNITS.get(rate["per"], f"per {rate['per']}")
            self.fields[name] = AmountField(
                label=RATE_LABELS.get(name, name),
                required=True,
                initial=rate["amount"],
                help_text=f"{name}, {unit}; now {rate['amount']}.",
            )
            self.rate_names.append(name)

    def rate_fields(self):
        return [self[name] for name in self.rate_names]

    def clean(self):
        cleaned = super().clean()
        readable = all(name in cleaned for name in self.rate_names)
        if readable and not self.rates_changed() and not cleaned.get("formula"):
            raise ValidationError(
                "Nothing to correct: change a rate (or the formula) from what it is now."
            )
        return cleaned

    def rates_changed(self) -> dict[str, str]:
        return {
            name: f"{self.cleaned_data[name]:f}"
            for name in self.rate_names
            if self.cleaned_data[name] != Decimal(self.price.rates[name]["amount"])
        }

    def correction(self, rate_card: RateCard, created_by: str) -> dict:
        """What the services take."""
        data = self.cleaned_data
        return {
            "rate_card": rate_card,
            "price": self.price.name,
            "effective_from": data["effective_from"],
            "rates": self.rates_changed(),
            "formula": data["formula"],
            "reason": data["reason"],
            "created_by": created_by,
        }

    def fingerprint(self) -> str:
        """What was previewed, so *Apply* takes exactly that."""
        data = self.cleaned_data
        seen = [
            self.price.name,
            data["effective_from"].isoformat(),
            self.rates_changed(),
            data["formula"],
            data["reason"],
        ]
        return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:32]


class RerateForm(forms.Form):
    at = InstantField(
        initial=_this_minute,
        label="An instant in the period (UTC)",
        help_text="The billing period holding it is re-rated with today's prices and terms.",
    )


# --- what the pages show ----------------------------------------------------------------


@dataclass
class LineShown:
    label: str
    changed: bool
    old_events: int
    new_events: int
    old: str
    new: str
    old_quantity: str
    new_quantity: str
    old_source: str
    new_source: str


@dataclass
class PeriodShown:
    span: str
    events: int
    lines: list[LineShown]
    old_total: str
    new_total: str
    changed: bool
    tiered: bool
    invoice: str = ""
    outcome: str = ""
    outcome_kind: str = ""
    billed: list[tuple[str, str, str]] = field(default_factory=list)


def period_shown(diff: RerateDiff, customer: Customer, closed: ClosedPeriodOutcome | None = None):
    """The diff in billed money only, as the invoice would write it: each line rounded
    to the minor unit, and the period's total as the sum of its invoice's rounded lines
    before and after (docs/development/money.md, "Money on screen")."""
    currency = customer.currency
    start, end, now = diff.period_start, diff.period_end, timezone.now()
    old_face, new_face = (
        period_face(customer=customer, start=start, end=end, rollups=rollups, at=now)
        for rollups in (period_rollups(customer_id=customer.pk, start=start), diff.new_rollups)
    )
    lines = [
        LineShown(
            line.label,
            line.changed,
            line.old_events,
            line.new_events,
            money_label(line.old_amount, currency),
            money_label(line.new_amount, currency),
            exact_text(line.old_quantity),
            exact_text(line.new_quantity),
            line.old_source,
            line.new_source,
        )
        for line in diff.lines
    ]
    shown = PeriodShown(
        span=span_text(diff.period_start, diff.period_end),
        events=diff.events,
        lines=lines,
        old_total=money_label(old_face.total, currency),
        new_total=money_label(new_face.total, currency),
        changed=bool(diff.changed) or old_face.total != new_face.total,
        tiered=any(line.old_quantity or line.new_quantity for line in diff.lines),
    )
    if closed is not None:
        shown.invoice = closed.invoice.number or ""
        shown.outcome = closed.sentence
        if closed.unchanged:
            shown.outcome_kind = "unchanged"
        elif closed.credit_note:
            shown.outcome_kind = "credit"
        else:
            shown.outcome_kind = "bill" if closed.lines else "credits"
        shown.billed = [
            ("Charges", money_label(closed.billed_total, currency),
             money_label(closed.total_after, currency)),
            ("Prepaid credits", money_label(closed.billed_credits, currency),
             money_label(closed.credits_after, currency)),
        ]  # fmt: skip
    return shown


def correction_shown(result: PriceCorrectionResult) -> dict:
    customers = []
    every: list[PeriodShown] = []
    for customer in result.customers:
        periods = [period_shown(p.diff, customer.customer, p.closed) for p in customer.periods]
        customers.append({"customer": customer.customer, "periods": periods})
        every.extend(periods)
    return {
        "customers": customers,
        "periods": len(every),
        "closed": sum(1 for period in every if period.invoice),
        "events": sum(period.events for period in every),
        "versions": result.versions,
    }


# --- the pages --------------------------------------------------------------------------


def _price_now(card: RateCard, name: str) -> Price | None:
    """The price named `name` as it charges now (in the version in force), whose rates the
    correction's form offers to change; else as its latest version has it."""
    prices = Price.objects.filter(version__rate_card=card, name=name).order_by("-version__number")
    return prices.filter(version__effective_from__lte=timezone.now()).first() or prices.first()


class RerateAdmin(admin.ModelAdmin):
    """UsageRollupAdmin's pages for re-rating and correcting prices."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "correct/<int:rate_card_id>/",
                wrap(self.correct_view),
                name="billing_usagerollup_correct",
            ),
            path(
                "rerate/customer/<int:customer_id>/",
                wrap(self.rerate_customer_view),
                name="billing_usagerollup_rerate_customer",
            ),
            path(
                "rerate/rate-card/<int:rate_card_id>/",
                wrap(self.rerate_card_view),
                name="billing_usagerollup_rerate_card",
            ),
            *super().get_urls(),
        ]

    # -- correcting a price --------------------------------------------------------------
    def correct_view(self, request, rate_card_id: int):
        if not request.user.has_perm(CORRECT_PERMISSION):
            raise PermissionDenied
        card = get_object_or_404(RateCard, pk=rate_card_id)
        latest = card.versions.order_by("-number").first()
        choices = list(latest.prices.all()) if latest else []
        name = request.POST.get("price") or request.GET.get("price")
        if not name and len(choices) == 1:
            name = choices[0].name
        price = _price_now(card, name) if name else None
        context = {"rate_card": card, "card_opts": RateCard._meta}
        if price is None:
            return self._page(
                request,
                "correct.html",
                f"Correct a price of “{card.name}”",
                choices=[(c, rates_text(c.rates, c.formula)) for c in choices],
                unknown=name,
                **context,
            )
        posted = request.method == "POST"
        form = CorrectionForm(request.POST if posted else None, price=price)
        shown, confirm = None, None
        if posted and form.is_valid():
            fields = form.correction(card, created_by=request.user.get_username())
            fingerprint = form.fingerprint()
            try:
                if "apply" in request.POST:
                    if request.POST.get("previewed") == fingerprint:
                        return self._corrected(request, card, price_correction_apply(**fields))
                    messages.warning(
                        request,
                        "The correction changed since its diff was shown: read the diff "
                        "below, then apply it.",
                    )
                shown = correction_shown(price_correction_preview(**fields))
            except ValidationError as error:
                model_errors_add(form, error, {})
            else:
                names = ["price", *form.fields]
                confirm = {
                    "fields": [(n, request.POST.get(n, "")) for n in names],
                    "fingerprint": fingerprint,
                }
        return self._page(
            request,
            "correct.html",
            f"Correct the price “{price.name}” of “{card.name}”",
            form=form,
            price=price,
            price_rates=rates_text(price.rates, price.formula),
            shown=shown,
            confirm=confirm,
            **context,
        )

    def _corrected(self, request, card: RateCard, result: PriceCorrectionResult):
        correction = result.correction
        assert correction is not None
        numbers = ", ".join(f"v{version.number}" for version in result.versions)
        when = f"{result.effective_from:%Y-%m-%d %H:%M} UTC"
        self.log_change(
            request,
            card,
            f"Corrected {result.price} from {when} (correction {correction.pk}, {numbers}): "
            f"{result.reason}",
        )
        closed = sum(1 for period in result.queued if period.invoice)
        periods = len(result.queued)
        messages.success(
            request,
            f"Correction applied: {result.price} from {when} ({numbers}). "
            f"{result.events_queued:,} event{pluralize(result.events_queued)} of {periods} "
            f"period{pluralize(periods)} are being re-rated; {closed} invoiced "
            f"period{pluralize(closed)} will be corrected at the next closing.",
        )
        return redirect(reverse("admin:contracts_ratecard_change", args=[card.pk]))

    # -- re-rating -------------------------------------------------------------------------
    def rerate_customer_view(self, request, customer_id: int):
        self._check_rerate(request)
        customer = get_object_or_404(Customer, pk=customer_id)
        form, at = self._instant(request)
        if at is not None and request.method == "POST":
            diff = period_rerate(customer=customer, at=at, apply=True)
            span = span_text(diff.period_start, diff.period_end)
            self.log_change(
                request, customer, f"Re-rated the period {span} ({diff.events:,} events)."
            )
            messages.success(
                request, f"{customer.external_id}'s period {span}: {diff.events:,} events re-rated."
            )
            return redirect(reverse("admin:contracts_customer_change", args=[customer.pk]))
        shown = period_preview(customer=customer, at=at) if at is not None else None
        return self._page(
            request,
            "rerate_customer.html",
            f"Re-rate a period of {customer.external_id}",
            customer=customer,
            customer_opts=Customer._meta,
            form=form,
            at=at,
            period=period_shown(shown.diff, customer, shown.closed) if shown else None,
            may_apply=request.user.has_perm(RERATE_PERMISSION),
        )

    def rerate_card_view(self, request, rate_card_id: int):
        self._check_rerate(request)
        card = get_object_or_404(RateCard, pk=rate_card_id)
        form, at = self._instant(request)
        if at is not None and request.method == "POST":
            diffs = rate_card_rerate(rate_card=card, at=at, apply=True)
            events = sum(preview.diff.events for _, preview in diffs)
            who = ", ".join(customer.external_id for customer, _ in diffs) or "no customer"
            when = f"{at:%Y-%m-%d %H:%M} UTC"
            self.log_change(
                request, card, f"Re-rated the periods holding {when} of {who} ({events:,} events)."
            )
            messages.success(
                request,
                f"The periods holding {when} of {len(diffs)} customer(s) are being re-rated "
                f"({events:,} events).",
            )
            return redirect(reverse("admin:contracts_ratecard_change", args=[card.pk]))
        diffs = rate_card_rerate(rate_card=card, at=at) if at is not None else []
        return self._page(
            request,
            "rerate_card.html",
            f"Re-rate every customer of “{card.name}”",
            rate_card=card,
            card_opts=RateCard._meta,
            form=form,
            at=at,
            customers=[
                {
                    "customer": customer,
                    "period": period_shown(preview.diff, customer, preview.closed),
                }
                for customer, preview in diffs
            ],
            may_apply=request.user.has_perm(RERATE_PERMISSION),
        )

    def _check_rerate(self, request) -> None:
        if not request.user.has_perm(RERATE_VIEW_PERMISSION):
            raise PermissionDenied
        if request.method == "POST" and not request.user.has_perm(RERATE_PERMISSION):
            raise PermissionDenied

    def _instant(self, request) -> tuple[RerateForm, datetime | None]:
        """The instant asked for (GET to see the diff, POST to apply); none asked: now."""
        data = request.POST if request.method == "POST" else request.GET
        if "at" not in data:
            return RerateForm(), _this_minute()
        form = RerateForm(data)
        return form, form.cleaned_data["at"] if form.is_valid() else None

    def _page(self, request, template: str, title: str, **context):
        return TemplateResponse(
            request,
            f"{TEMPLATES}/{template}",
            {**self.admin_site.each_context(request), "opts": self.opts, "title": title,
             **context},
        )  # fmt: skip
