"""Reads for the API, the admin and the portal: a period's usage, invoices, a line's events.

`usage_for_period` reads the period's rollups, a few rows per price, model and feature
whatever the number of events, so it answers in milliseconds for a customer with millions
of calls; of the events, only the ratings of those waiting to be rated again, which it
counts as pending and not in the figures (`periods.period_rollups`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from contracts.models import Customer
from pricing.invoice import amount_due
from pricing.rating import PeriodCharges

from .models import (
    TOKEN_COLUMNS,
    BilledEvent,
    CreditNote,
    Invoice,
    InvoiceLine,
    RatedEvent,
    SellerDetails,
    UsageDay,
    UsageRollup,
)
from .periods import TermsSegment, events_waiting, period_money, period_of, period_rollups

_ZERO = Decimal(0)


@dataclass
class UsageGroup:
    """Usage of one model, feature or price in the period."""

    name: str
    events: int = 0
    amount: Decimal = _ZERO
    quantity: Decimal = _ZERO
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_COLUMNS, 0))
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PeriodUsage:
    """What a customer's period costs so far, figure by figure (12 decimal places)."""

    customer: Customer
    period_start: datetime
    period_end: datetime
    segments: list[TermsSegment]
    charges: PeriodCharges
    by_price: list[UsageGroup]
    by_model: list[UsageGroup]
    by_feature: list[UsageGroup]
    unpriced: list[UsageGroup]
    failed: list[UsageGroup]
    pending_events: int  # of the period: stored and not rated yet, or waiting to be rated again

    @property
    def usage(self) -> Decimal:
        """Rated usage before discount."""
        return sum((group.amount for group in self.by_price), _ZERO)


def usage_for_period(*, customer: Customer, at: datetime | None = None) -> PeriodUsage:
    """The usage and charges of the period holding `at` (now), as rated so far: an event
    that waits to be rated, or rated again, counts in `pending_events` and nowhere else."""
    start, end = period_of(customer=customer, at=at or timezone.now())
    rollups = period_rollups(customer_id=customer.pk, start=start, end=end)
    spans, amounts, charges = period_money(customer=customer, start=start, end=end, rollups=rollups)
    # By kind, each group by its key: (price pk, terms pk), (model, feature, reason) or a name.
    groups: dict[str, dict[Any, UsageGroup]] = {
        name: {} for name in ("price", "model", "feature", "unpriced", "failed")
    }
    for rollup in rollups:
        amount = amounts.get(rollup.key, _ZERO)
        if rollup.status == UsageRollup.Status.RATED:
            assert rollup.price is not None and rollup.terms is not None  # rated: both set
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
        pending_events=rollups.pending_events,
    )


def _add(
    groups: dict[Any, UsageGroup], key: Hashable, name: str, rollup: UsageRollup, amount: Decimal
) -> None:
    group = groups.setdefault(key, UsageGroup(name=name))
    group.events += rollup.event_count
    group.amount += amount
    group.quantity += rollup.quantity
    for column in TOKEN_COLUMNS:
        group.tokens[column] += getattr(rollup, column)


def invoice_list(*, customer: Customer) -> QuerySet[Invoice]:
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


#: The invoice lines that cover events (`line_events`): usage, and late usage of a period
#: closed before.
LINES_WITH_EVENTS = (InvoiceLine.Kind.USAGE, InvoiceLine.Kind.LATE_USAGE)


def line_events(*, line: InvoiceLine) -> QuerySet[BilledEvent]:
    """The events an invoice line billed, with what each was rated at then, oldest first."""
    return line.billed_events.select_related("event").order_by("event__timestamp", "event_id")


@dataclass(frozen=True)
class InvoiceFace:
    """An invoice as its documents sum it: the lines before the prepaid credits (their sum
    is the subtotal), the credits lines, the total, and the amount due after its credit
    notes (`pricing.invoice.amount_due`). The PDF, the email and the portal read it here,
    so they add up alike."""

    lines: list[InvoiceLine]  # in their order
    charges: list[InvoiceLine]
    credits: list[InvoiceLine]
    notes: list[CreditNote]
    subtotal: Decimal
    credits_applied: Decimal
    amount_due: Decimal


def invoice_face(*, invoice: Invoice) -> InvoiceFace:
    lines = list(invoice.lines.all())
    credits = [line for line in lines if line.kind == InvoiceLine.Kind.CREDITS]
    charges = [line for line in lines if line.kind != InvoiceLine.Kind.CREDITS]
    notes = list(invoice.credit_notes.order_by("number"))
    return InvoiceFace(
        lines=lines,
        charges=charges,
        credits=credits,
        notes=notes,
        subtotal=sum((line.amount for line in charges), _ZERO),
        credits_applied=sum((line.amount for line in credits), _ZERO),
        amount_due=amount_due(invoice.total, [note.amount for note in notes]),
    )


@dataclass(frozen=True)
class Seller:
    """Who issues the invoices, as their documents print it."""

    name: str
    address: str
    tax_id: str
    email: str

    @property
    def address_lines(self) -> list[str]:
        return [line.strip() for line in self.address.strip().splitlines() if line.strip()]


def seller_details() -> Seller:
    """The seller as the admin's Seller details say, or, until they are saved there, as the
    TOKENTILL_SELLER_* settings say."""
    row = SellerDetails.objects.order_by("pk").first()
    if row is not None:
        return Seller(row.name, row.address, row.tax_id, row.email)
    return Seller(
        settings.TOKENTILL_SELLER_NAME,
        settings.TOKENTILL_SELLER_ADDRESS,
        settings.TOKENTILL_SELLER_TAX_ID,
        settings.TOKENTILL_SELLER_EMAIL,
    )


@dataclass(frozen=True)
class DayUsage:
    """A customer's rated money of one UTC day, model and feature (12 places)."""

    day: date
    model: str
    feature: str
    events: int
    amount: Decimal


def usage_days(*, customer: Customer, first: date, last: date) -> list[DayUsage]:
    """The customer's rated money of each UTC day from `first` to `last` (inclusive), by
    model and feature, before discount: per-event prices only (tiered prices are charged
    for a period as a whole). Read from the per-day rows (`UsageDay`), a few per day
    whatever the number of events, less the ratings of events that wait to be rated again,
    as the usage figures leave them out (`periods.period_rollups`). Days without usage are
    left out; in day, model and feature order."""
    sums: dict[tuple[date, str, str], list[Any]] = {
        (day, model, feature): [events, amount]
        for day, model, feature, events, amount in UsageDay.objects.filter(
            customer=customer, day__gte=first, day__lte=last
        ).values_list("day", "model", "feature", "event_count", "amount")
    }
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    waiting = (
        RatedEvent.objects.filter(
            event__customer_id=customer.pk,
            event__timestamp__gte=start,
            event__timestamp__lt=end,
            amount__isnull=False,
        )
        .filter(events_waiting(customer_id=customer.pk, through="event"))
        .values_list("event__timestamp", "event__model", "event__feature", "amount")
    )
    for timestamp, model, feature, amount in waiting.iterator():
        row = sums.get((timestamp.astimezone(UTC).date(), model, feature))
        if row is not None:
            row[0] -= 1
            row[1] -= amount
    return [
        DayUsage(day, model, feature, events, amount)
        for (day, model, feature), (events, amount) in sorted(sums.items())
        if events
    ]
