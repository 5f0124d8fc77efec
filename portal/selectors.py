"""Reads of the portal: what a customer's dashboard shows, from the other apps' selectors.

Every figure in money is exact here (12 places, like the API); templates round it once,
for display, to the currency's minor unit (pricing.money.money_round).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from billing.models import RatedEvent, UsageRollup
from billing.periods import events_waiting, period_of
from billing.selectors import PeriodUsage, invoice_list, usage_for_period
from contracts.models import Customer
from metering.models import UsageEvent
from wallets.models import LedgerEntry, Wallet
from wallets.selectors import alert_settings_for, wallet_for

_ZERO = Decimal(0)


@dataclass
class Dashboard:
    """The spend of the customer's current period and what it is measured against."""

    usage: PeriodUsage
    at: datetime
    spend: Decimal  # usage after discount: what the budget is compared with
    projected: Decimal | None  # spend at the period's end at the rate so far
    budget: Decimal | None
    allowance_included: Decimal
    allowance_used: Decimal
    wallet: Wallet | None
    by_day: list[tuple[date, Decimal]]
    events: list[UsageEvent]

    @property
    def currency(self) -> str:
        return self.usage.customer.currency

    @property
    def allowance_left(self) -> Decimal:
        return self.allowance_included - self.allowance_used

    @property
    def budget_share(self) -> Decimal | None:
        """Spend as a percentage of the budget (exact)."""
        return None if not self.budget else self.spend * 100 / self.budget


def dashboard_for(*, customer: Customer, at: datetime | None = None) -> Dashboard:
    at = at or timezone.now()
    usage = usage_for_period(customer=customer, at=at)
    spend = sum(usage.charges.usage_by_segment, _ZERO)
    return Dashboard(
        usage=usage,
        at=at,
        spend=spend,
        projected=spend_projected(
            spend=spend, start=usage.period_start, end=usage.period_end, at=at
        ),
        budget=alert_settings_for(customer=customer).budget,
        allowance_included=sum(usage.charges.allowances, _ZERO),
        allowance_used=usage.charges.allowance_used,
        wallet=wallet_for(customer=customer),
        by_day=spend_by_day(customer=customer, start=usage.period_start, end=usage.period_end),
        events=events_latest(customer=customer),
    )


def spend_projected(
    *, spend: Decimal, start: datetime, end: datetime, at: datetime
) -> Decimal | None:
    """The spend at the period's end if it goes on at its average rate so far: spend so far
    divided by the share of the period elapsed, `spend * (end - start) / (at - start)`,
    in microseconds. None in the period's first minute (too early to say); the spend itself
    once the period is over."""
    elapsed = min(at, end) - start
    if elapsed.total_seconds() < 60:
        return None
    return spend * _microseconds(end - start) / _microseconds(elapsed)


def _microseconds(span: timedelta) -> Decimal:
    return Decimal((span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds)


def spend_by_day(
    *, customer: Customer, start: datetime, end: datetime
) -> list[tuple[date, Decimal]]:
    """The rated amounts of the period's events per UTC day of their timestamp, before
    discount, days in order (days without usage left out).

    Rollups are per period, so days come from the rated events: summed in SQL on
    PostgreSQL; on SQLite, where money is stored as text, summed in Python over the
    period's amounts. Tiered prices are charged for the period as a whole, not per event,
    so their usage is not in this chart; nor are events that wait to be rated again, as
    in the usage they are compared with (billing.periods.period_rollups)."""
    rated = RatedEvent.objects.filter(
        rollup__customer=customer,
        rollup__period_start=start,
        rollup__status=UsageRollup.Status.RATED,
        amount__isnull=False,
        event__timestamp__gte=start,
        event__timestamp__lt=end,
    ).exclude(events_waiting(customer_id=customer.pk, through="event"))
    if connection.vendor == "postgresql":
        rows = (
            rated.annotate(day=TruncDay("event__timestamp"))
            .values("day")
            .annotate(total=Sum("amount"))
            .order_by("day")
            .values_list("day", "total")
        )
        return [(day.date(), total) for day, total in rows]
    days: defaultdict[date, Decimal] = defaultdict(lambda: _ZERO)
    for timestamp, amount in rated.values_list("event__timestamp", "amount").iterator():
        assert amount is not None  # amount__isnull=False above
        days[timestamp.date()] += amount
    return sorted(days.items())


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
