"""Reads of the portal: what a customer's dashboard shows, from the other apps' selectors.

The estimate is the invoice preview itself (`billing.invoicing.preview`, closing's own
draft): its lines, billed, are only grouped here by kind for the page. The projection is
`pricing.projection`'s rule on those lines. Other figures in money are exact (12 places,
like the API); templates round them once, for display, to the currency's minor unit.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from billing.invoicing.preview import InvoicePreview, invoice_preview
from billing.models import InvoiceLine
from billing.periods import events_waiting, period_of
from billing.selectors import PeriodUsage, invoice_list, usage_days, usage_for_period
from contracts.models import Customer
from metering.models import UsageEvent
from pricing.projection import InvoiceProjection, invoice_projected
from wallets.models import LedgerEntry, Wallet
from wallets.selectors import alert_settings_for, wallet_for

from .ranges import DateRange

_ZERO = Decimal(0)
Kind = InvoiceLine.Kind

#: How the estimate groups the preview's lines, in the invoice's order; a group with no
#: line is left out but for usage, and each line is in exactly one group, so the groups
#: add up to the preview's total.
ESTIMATE_GROUPS = [
    ("fees", "Fixed fees", (Kind.FIXED_FEE,)),
    ("usage", "Usage", (Kind.USAGE,)),
    ("discount", "Discount", (Kind.DISCOUNT,)),
    ("allowance", "Included allowance used", (Kind.ALLOWANCE,)),
    ("minimum", "Minimum commitment true-up", (Kind.MINIMUM,)),
    ("late", "Late usage of closed periods", (Kind.LATE_USAGE,)),
    ("credits", "Prepaid credits applied", (Kind.CREDITS,)),
]


@dataclass
class Dashboard:
    """The customer's current period: the invoice it would produce now, where it is
    heading, the usage against the budget, the allowance, the credits, the latest events."""

    usage: PeriodUsage
    at: datetime
    estimate: InvoicePreview
    spend: Decimal  # usage after discount on the estimate's face: what the budget is compared with
    projection: InvoiceProjection | None
    budget: Decimal | None
    allowance_included: Decimal
    allowance_used: Decimal
    wallet: Wallet | None
    events: list[UsageEvent]

    @property
    def currency(self) -> str:
        return self.usage.customer.currency

    @property
    def estimate_rows(self) -> list[tuple[str, str, Decimal]]:
        """(id, label, billed amount) per group of the estimate's lines, in invoice order."""
        sums: dict[str, Decimal] = {}
        for key, _, kinds in ESTIMATE_GROUPS:
            amounts = [line.amount for line in self.estimate.lines if line.kind in kinds]
            if amounts or key == "usage":
                sums[key] = sum(amounts, _ZERO)
        return [(key, label, sums[key]) for key, label, _ in ESTIMATE_GROUPS if key in sums]

    @property
    def allowance_left(self) -> Decimal:
        return self.allowance_included - self.allowance_used

    @property
    def budget_share(self) -> Decimal | None:
        """Usage after discount as a percentage of the budget (exact)."""
        return None if not self.budget else self.spend * 100 / self.budget


def dashboard_for(*, customer: Customer, at: datetime | None = None) -> Dashboard:
    at = at or timezone.now()
    usage = usage_for_period(customer=customer, at=at)
    estimate = invoice_preview(customer=customer, at=at)

    def billed(*kinds: str) -> Decimal:
        return sum((line.amount for line in estimate.lines if line.kind in kinds), _ZERO)

    return Dashboard(
        usage=usage,
        at=at,
        estimate=estimate,
        # As the estimate's lines write them, so the page shows one figure for each
        spend=billed(Kind.USAGE, Kind.DISCOUNT),
        projection=projection_of(usage=usage, estimate=estimate, at=at),
        budget=alert_settings_for(customer=customer).budget,
        allowance_included=sum(usage.charges.allowances, _ZERO),
        allowance_used=-billed(Kind.ALLOWANCE),
        wallet=wallet_for(customer=customer),
        events=events_latest(customer=customer),
    )


def projection_of(
    *, usage: PeriodUsage, estimate: InvoicePreview, at: datetime
) -> InvoiceProjection | None:
    """The estimate carried to the period's end (`pricing.projection`): its fee and late
    lines as they are, its usage lines per terms segment at the rate so far, the segments'
    discounts, allowance and minimum shares from the period's charges."""
    segment_of = {terms.pk: n for n, (_, terms) in enumerate(usage.segments) if terms}
    usage_lines: list[list[Decimal]] = [[] for _ in usage.segments]
    fixed = []
    for line in estimate.lines:
        if line.kind == Kind.USAGE:
            if line.terms_id not in segment_of:
                return None  # terms changed between the two reads: no projection this time
            usage_lines[segment_of[line.terms_id]].append(line.amount)
        elif line.kind in (Kind.FIXED_FEE, Kind.LATE_USAGE):
            fixed.append(line.amount)
    return invoice_projected(
        fixed_lines=fixed,
        usage_lines=usage_lines,
        discounts=[piece.segment.discount for piece in usage.segments],
        allowances=usage.charges.allowances,
        minimums=usage.charges.minimums,
        start=usage.period_start,
        end=usage.period_end,
        at=at,
        currency=usage.customer.currency,
    )


@dataclass
class UsageTotal:
    """Usage of one model, feature or day in a range: events and rated money (exact)."""

    name: str
    events: int = 0
    amount: Decimal = _ZERO


@dataclass
class RangeUsage:
    """The rated money of a range of days, before discount, by model, feature and day."""

    range: DateRange
    by_model: list[UsageTotal] = field(default_factory=list)
    by_feature: list[UsageTotal] = field(default_factory=list)
    by_day: list[tuple[date, UsageTotal]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((row.amount for row in self.by_model), _ZERO)


def usage_in_range(*, customer: Customer, days: DateRange, today: date) -> RangeUsage:
    """The range's usage from the per-day rows (`billing.selectors.usage_days`). Every day
    of the range up to today is in `by_day`, with nothing where there was no usage."""
    models: dict[str, UsageTotal] = {}
    features: dict[str, UsageTotal] = {}
    by_day: dict[date, UsageTotal] = {
        day: UsageTotal(day.isoformat()) for day in days.days if day <= max(today, days.first)
    }
    for row in usage_days(customer=customer, first=days.first, last=days.last):
        for groups, name in ((models, row.model), (features, row.feature), (by_day, row.day)):
            total = groups.setdefault(name, UsageTotal(str(name)))  # type: ignore[arg-type]
            total.events += row.events
            total.amount += row.amount
    return RangeUsage(
        range=days,
        by_model=sorted(models.values(), key=lambda total: (-total.amount, total.name)),
        by_feature=sorted(features.values(), key=lambda total: (-total.amount, total.name)),
        by_day=sorted(by_day.items()),
    )


def events_latest(*, customer: Customer, limit: int = 10) -> list[UsageEvent]:
    """The customer's latest events by timestamp, each with `cost`: its rated amount, or
    None while it is not rated (or is unpriced, failed or tiered). An event that waits to
    be rated again is not rated yet: its earlier rating no longer holds."""
    events = list(
        UsageEvent.objects.filter(customer=customer)
        .select_related("rating")
        .order_by("-timestamp", "-id")[:limit]
    )
    waiting = set(
        UsageEvent.objects.filter(events_waiting(customer_id=customer.pk))
        .filter(pk__in=[event.pk for event in events])
        .values_list("pk", flat=True)
    )
    for event in events:
        rating = None if event.pk in waiting else getattr(event, "rating", None)
        # Attributes for the dashboard's template, not fields of the model.
        event.cost = rating.amount if rating is not None else None  # type: ignore[attr-defined]
        event.rated = rating is not None  # type: ignore[attr-defined]
    return events


def ledger_entries(*, wallet: Wallet) -> QuerySet[LedgerEntry]:
    """The wallet's ledger, newest first."""
    return LedgerEntry.objects.filter(wallet=wallet).select_related("grant").order_by("-id")


def usage_periods(*, customer: Customer) -> list[tuple[datetime, datetime]]:
    """The periods whose usage the portal offers as CSV, newest first: the current one and
    every period the customer has an invoice for."""
    periods = {period_of(customer=customer, at=timezone.now())}
    periods.update(
        invoice_list(customer=customer)
        .prefetch_related(None)
        .values_list("period_start", "period_end")
    )
    return sorted(periods, reverse=True)


def usage_period_starting(*, customer: Customer, day: date) -> tuple[datetime, datetime] | None:
    """The customer's billing period that begins on `day` (UTC), or None if none does."""
    midnight = datetime.combine(day, time.min, tzinfo=UTC)
    # A period starts at midnight, or (a contract's first one) at the contract's instant.
    for at in (midnight, midnight + timedelta(days=1) - timedelta(microseconds=1)):
        start, end = period_of(customer=customer, at=at)
        if start.astimezone(UTC).date() == day:
            return start, end
    return None
