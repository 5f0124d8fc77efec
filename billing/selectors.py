"""Reads of rated usage: a customer's period, in money, from rollups only.

`usage_for_period` never reads events: the rollups of a period are a few rows per
price, model and feature, whatever the number of events, so it answers in
milliseconds for a customer with millions of calls.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from contracts.models import Contract, ContractTerms, Customer, Price
from metering.models import UnratedEvent
from pricing.rating import (
    RATED_PLACES,
    PeriodCharges,
    Segment,
    period_charges,
    rated,
    tiered_charges,
)

from .models import TOKEN_COLUMNS, CreditNote, Invoice, InvoiceLine, RatedEvent, UsageRollup
from .terms import period_holding, price_terms

_ZERO = Decimal(0)
TIERED = ("graduated", "volume", "package")


@dataclass
class UsageGroup:
    """Usage of one model, feature or price in the period."""

    name: str
    events: int = 0
    amount: Decimal = _ZERO
    quantity: Decimal = _ZERO
    tokens: dict = field(default_factory=lambda: dict.fromkeys(TOKEN_COLUMNS, 0))
    details: dict = field(default_factory=dict)


@dataclass
class PeriodUsage:
    """What a customer's period costs so far, figure by figure (12 decimal places)."""

    customer: Customer
    period_start: datetime
    period_end: datetime
    segments: list[tuple[Segment, ContractTerms | None]]
    charges: PeriodCharges
    by_price: list[UsageGroup]
    by_model: list[UsageGroup]
    by_feature: list[UsageGroup]
    unpriced: list[UsageGroup]
    failed: list[UsageGroup]
    pending_events: int

    @property
    def usage(self) -> Decimal:
        """Rated usage before discount."""
        return sum((group.amount for group in self.by_price), _ZERO)


def period_of(*, customer: Customer, at: datetime) -> tuple[datetime, datetime]:
    """The billing period holding `at`: a contract's, or outside them the calendar month
    (billing.terms.period_holding, the rule rating uses)."""
    return period_holding(Contract.objects.filter(customer=customer), at)


def period_rollups(*, customer_id: int, start: datetime) -> list[UsageRollup]:
    """The period's rollups that hold events, with what `period_money` reads of them."""
    return list(
        UsageRollup.objects.filter(
            customer_id=customer_id, period_start=start, event_count__gt=0
        ).select_related("price__version__rate_card", "terms", "customer")
    )


def usage_for_period(*, customer: Customer, at: datetime | None = None) -> PeriodUsage:
    """The usage and charges of the period holding `at` (now), as rated so far."""
    start, end = period_of(customer=customer, at=at or timezone.now())
    rollups = period_rollups(customer_id=customer.pk, start=start)
    spans, amounts, charges = period_money(customer=customer, start=start, end=end, rollups=rollups)
    groups = {name: {} for name in ("price", "model", "feature", "unpriced", "failed")}
    for rollup in rollups:
        amount = amounts.get(rollup.key, _ZERO)
        if rollup.status == UsageRollup.Status.RATED:
            version = rollup.price.version
            _add(groups["price"], (rollup.price_id, rollup.terms_id), rollup.line, rollup, amount)
            groups["price"][(rollup.price_id, rollup.terms_id)].details = {
                "rate_card": version.rate_card.name,
                "version": version.number,
                "kind": rollup.price.kind,
                "terms": rollup.terms.number,
            }
        else:
            reason_group = groups[rollup.status]
            key = (rollup.model, rollup.feature, rollup.reason)
            _add(reason_group, key, rollup.model, rollup, amount)
            reason_group[key].details = {"feature": rollup.feature, "reason": rollup.reason}
        _add(groups["model"], rollup.model, rollup.model, rollup, amount)
        _add(groups["feature"], rollup.feature, rollup.feature, rollup, amount)
    return PeriodUsage(
        customer=customer,
        period_start=start,
        period_end=end,
        segments=spans,
        charges=charges,
        # In time order (segment, then price name and version); the others by name.
        by_price=[
            groups["price"][key]
            for key in sorted(
                groups["price"],
                key=lambda key: (
                    [terms.pk if terms else None for _, terms in spans].index(key[1]),
                    groups["price"][key].name,
                    groups["price"][key].details["version"],
                    key[0],
                ),
            )
        ],
        by_model=sorted(groups["model"].values(), key=lambda group: group.name),
        by_feature=sorted(groups["feature"].values(), key=lambda group: group.name),
        unpriced=[groups["unpriced"][key] for key in sorted(groups["unpriced"])],
        failed=[groups["failed"][key] for key in sorted(groups["failed"])],
        pending_events=UnratedEvent.objects.filter(customer_id=customer.pk).count(),
    )


def period_money(*, customer: Customer, start: datetime, end: datetime, rollups):
    """The period's terms segments, each rated rollup's money by key (tiered lines
    allocated) and the period's charges, for these rollups (stored or hypothetical)."""
    spans = _segments(customer, start, end)
    index_of_terms = {terms.pk: index for index, (_, terms) in enumerate(spans) if terms}
    amounts = _amounts(rollups, index_of_terms)
    usage_by_segment = [_ZERO] * len(spans)
    for rollup in rollups:
        if rollup.status == UsageRollup.Status.RATED:
            usage_by_segment[index_of_terms[rollup.terms_id]] += amounts[rollup.key]
    charges = period_charges(
        period_start=start,
        period_end=end,
        segments=[segment for segment, _ in spans],
        usage_by_segment=usage_by_segment,
    )
    return spans, amounts, charges


def _add(groups: dict, key, name: str, rollup: UsageRollup, amount: Decimal) -> None:
    group = groups.setdefault(key, UsageGroup(name=name))
    group.events += rollup.event_count
    group.amount += amount
    group.quantity += rollup.quantity
    for column in TOKEN_COLUMNS:
        group.tokens[column] += getattr(rollup, column)


def _segments(customer: Customer, start: datetime, end: datetime):
    """The period cut where terms change, each piece with its terms (None: no contract)."""
    terms_rows = list(
        ContractTerms.objects.filter(contract__customer=customer, effective_from__lt=end)
        .select_related("contract")
        .order_by("effective_from")
    )
    spans, cursor = [], start
    for number, terms in enumerate(terms_rows):
        following = terms_rows[number + 1].effective_from if number + 1 < len(terms_rows) else end
        stops = [following, end] + ([terms.contract.ends_at] if terms.contract.ends_at else [])
        piece_start, piece_end = max(terms.effective_from, start), min(stops)
        if piece_start >= piece_end:
            continue
        if piece_start > cursor:
            spans.append((Segment(start=cursor, end=piece_start), None))
        segment = Segment(
            start=piece_start,
            end=piece_end,
            fixed_fee=terms.fixed_fee,
            included_allowance=terms.included_allowance,
            discount=terms.discount,
            minimum_commitment=terms.minimum_commitment,
        )
        spans.append((segment, terms))
        cursor = piece_end
    if cursor < end:
        spans.append((Segment(start=cursor, end=end), None))
    return spans


def _amounts(rollups: list[UsageRollup], index_of_terms: dict[int, int]) -> dict[int, Decimal]:
    """Each rated rollup's money, by key: its own amount for per-event prices; for tiered prices,
    its share of its line's charge in its segment, by quantity (the last share takes the
    remainder, so shares sum to the charge exactly)."""
    amounts, lines = {}, defaultdict(lambda: defaultdict(list))
    for rollup in rollups:
        if rollup.status != UsageRollup.Status.RATED:
            continue
        if rollup.price.kind in TIERED:
            place = (index_of_terms[rollup.terms_id], rollup.price.version.number, rollup.price_id)
            lines[rollup.line][place].append(rollup)
        else:
            amounts[rollup.key] = rollup.amount
    for places in lines.values():
        ordered = sorted(places)
        pieces = []
        for place in ordered:
            first = places[place][0]
            quantity = sum((rollup.quantity for rollup in places[place]), _ZERO)
            pieces.append((quantity, price_terms(first.price, first.terms.price_overrides)))
        for place, charge in zip(ordered, tiered_charges(pieces), strict=True):
            _share(places[place], charge, amounts)
    return amounts


def _share(rollups: list[UsageRollup], charge: Decimal, amounts: dict) -> None:
    total = sum((rollup.quantity for rollup in rollups), _ZERO)
    given = _ZERO
    for rollup in rollups[:-1]:
        part = rated(charge * rollup.quantity / total) if total else _ZERO
        amounts[rollup.key] = part
        given += part
    amounts[rollups[-1].key] = charge - given


__all__ = [
    "RATED_PLACES",
    "PeriodUsage",
    "UsageGroup",
    "period_money",
    "period_of",
    "usage_for_period",
]


def invoice_list(*, customer: Customer):
    """The customer's numbered invoices, newest period first, with their credit notes."""
    return (
        Invoice.objects.filter(customer=customer, number__isnull=False)
        .select_related("customer")
        .prefetch_related(Prefetch("credit_notes", queryset=CreditNote.objects.order_by("number")))
        .order_by("-period_start", "-id")
    )


def invoice_get(*, customer: Customer, number: str) -> Invoice | None:
    """The customer's invoice numbered `number` (None for another customer's), with its
    lines (their prices, rate card versions and terms) and credit notes."""
    lines = InvoiceLine.objects.select_related("price__version__rate_card", "terms")
    return (
        invoice_list(customer=customer)
        .filter(number=number)
        .prefetch_related(Prefetch("lines", queryset=lines))
        .first()
    )


@dataclass
class InvoicePreview:
    """The invoice the current period would produce now, unsaved: `invoice` has no number
    and `lines` carry their prices and terms as stored lines do."""

    invoice: Invoice
    lines: list[InvoiceLine]


def invoice_preview(*, customer: Customer, at: datetime) -> InvoicePreview:
    """The draft of the period holding `at`, from its rollups, as closing would produce it
    (billing.invoicing.invoice_draft): a few rows whatever the number of events."""
    from .invoicing import invoice_draft  # the closing's own lines

    start, end = period_of(customer=customer, at=at)
    draft = invoice_draft(customer=customer, start=start, end=end, at=at)
    prices = Price.objects.select_related("version__rate_card").in_bulk(
        {line.price_id for line in draft.lines if line.price_id}
    )
    terms = ContractTerms.objects.in_bulk({line.terms_id for line in draft.lines if line.terms_id})
    invoice = Invoice(
        customer=customer,
        currency=customer.currency,
        period_start=start,
        period_end=end,
        total=draft.total,
        created_at=at,
    )
    lines = []
    for position, line in enumerate(draft.lines, start=1):
        # A draft line's fields are a stored line's, with the amount rounded as closing does.
        shown = InvoiceLine(
            invoice=invoice, position=position, amount=line.amount(invoice.currency), **vars(line)
        )
        shown.price, shown.terms = prices.get(line.price_id), terms.get(line.terms_id)
        lines.append(shown)
    return InvoicePreview(invoice=invoice, lines=lines)


#: The invoice lines that cover events (`line_events`): usage, and late usage of a period
#: closed before.
LINES_WITH_EVENTS = (InvoiceLine.Kind.USAGE, InvoiceLine.Kind.LATE_USAGE)


def line_events(*, line):
    """The rated events an invoice line covers: those of its period (and, for usage lines,
    its price and terms) rated in its window, oldest first."""
    events = RatedEvent.objects.filter(
        rollup__customer_id=line.invoice.customer_id,
        rollup__period_start=line.period_start,
        rollup__status=UsageRollup.Status.RATED,
    )
    if line.price_id:
        events = events.filter(rollup__price_id=line.price_id, rollup__terms_id=line.terms_id)
    if line.rated_after:
        events = events.filter(rated_at__gt=line.rated_after)
    if line.rated_until:
        events = events.filter(rated_at__lte=line.rated_until)
    return events.select_related("event").order_by("event__timestamp", "event_id")
