"""Re-rating a period from the immutable event log, shown line by line before it is applied.

The preview rates the period's events again with today's terms in bounded batches, so its
memory stays flat whatever the period's size, and stores nothing. Applying puts the
period's events back in the rating queue, and the raters replace each event's rating and
move the rollups in their usual transactions, so a re-rate is as exactly-once as rating.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

from django.db import transaction

from common.audit import audit_record
from common.tasks import rating_nudge
from contracts.models import Customer
from metering.models import UsageEvent
from metering.services import events_queue_for_rating
from pricing.rating import PeriodCharges

from ..models import UsageRollup
from ..periods import period_money, period_of, period_rollups
from ..terms import TermsBook
from .rater import rate_event
from .store import EVENT_COLUMNS, EventRow

_ZERO = Decimal(0)
#: A line of the diff: (status, line, model, feature) of its rollups.
_LineKey: TypeAlias = tuple[str, str, str, str]


@dataclass
class RerateLine:
    """One line of a period (a price, or unpriced or failed usage, for a model and
    feature) as rated now (`old_*`) and as re-rating would rate it (`new_*`); `*_source`
    name the rate card versions and terms that rate it."""

    label: str
    old_events: int = 0
    new_events: int = 0
    old_quantity: Decimal = _ZERO
    new_quantity: Decimal = _ZERO
    old_amount: Decimal = _ZERO
    new_amount: Decimal = _ZERO
    old_source: str = ""
    new_source: str = ""

    @property
    def changed(self) -> bool:
        """Whether its events, quantity or money change. A new source alone (a correction
        copies every price of the card into its version) changes nothing billed."""
        old = (self.old_events, self.old_quantity, self.old_amount)
        return old != (self.new_events, self.new_quantity, self.new_amount)


@dataclass
class RerateDiff:
    """What re-rating a period from the event log would change, line by line."""

    period_start: datetime
    period_end: datetime
    lines: list[RerateLine]
    old_total: Decimal
    new_total: Decimal
    events: int
    applied: bool = False
    #: The period's charges as rated now and after re-rating (fees, discount, allowance,
    #: true-up): what closing and the draw-down read of it.
    old_charges: PeriodCharges | None = None
    new_charges: PeriodCharges | None = None
    #: The period's rollups as re-rating would make them (unsaved).
    new_rollups: list[UsageRollup] = field(default_factory=list, repr=False)

    @property
    def changed(self) -> list[RerateLine]:
        return [line for line in self.lines if line.changed]


def period_rerate(*, customer: Customer, at: datetime, apply: bool = False) -> RerateDiff:
    """Re-rate the period holding `at` from the immutable log with today's prices and terms.

    Without `apply` nothing is stored: the diff shows, per line, the events, quantity and
    money now and after re-rating, and the period's total before and after. With `apply`
    the period's events go back into the rating queue (one INSERT ... SELECT), and the
    raters replace each event's rating and move the rollups in the same transactions as
    any rating. Events are read in bounded batches, so memory stays flat for any period.
    """
    start, end = period_of(customer=customer, at=at)
    old = period_rollups(customer_id=customer.pk, start=start)
    new, events = _rollups_rated_anew(customer, start, end)
    diff_lines: dict[_LineKey, RerateLine] = {}
    charges: list[PeriodCharges] = []
    for side, rollups in (("old", old), ("new", list(new.values()))):
        money = period_money(customer=customer, start=start, end=end, rollups=rollups)
        charges.append(money.charges)
        for rollup in sorted(rollups, key=_source):
            line = diff_lines.setdefault(_line_key(rollup), RerateLine(label=_line_label(rollup)))
            _line_add(line, side, rollup, money.amounts.get(rollup.key, _ZERO))
    old_charges, new_charges = charges
    lines = sorted(diff_lines.values(), key=_by_label)
    diff = RerateDiff(
        start,
        end,
        lines,
        old_charges.total,
        new_charges.total,
        events,
        old_charges=old_charges,
        new_charges=new_charges,
        new_rollups=list(new.values()),
    )
    if apply:
        with transaction.atomic():
            events_queue_for_rating(customer_id=customer.pk, start=start, end=end)
            audit_record(
                "period.rerate",
                customer,
                after={
                    "period_start": start.isoformat(),
                    "events": events,
                    "total_before": format(diff.old_total, "f"),
                    "total_after": format(diff.new_total, "f"),
                },
                customer=customer.external_id,
            )
            transaction.on_commit(rating_nudge)
        diff.applied = True
    return diff


def _rollups_rated_anew(
    customer: Customer, start: datetime, end: datetime, chunk: int = 5_000
) -> tuple[dict[str, UsageRollup], int]:
    """Unsaved rollups of the period as the current terms rate it, and the event count."""
    rollups: dict[str, UsageRollup] = {}
    events = UsageEvent.objects.filter(
        customer=customer, timestamp__gte=start, timestamp__lt=end
    ).values_list(*EVENT_COLUMNS)
    batch: list[EventRow] = []
    count = 0
    for event in events.iterator(chunk_size=chunk):
        batch.append(EventRow(*event))
        if len(batch) == chunk:
            count += _rate_into(rollups, batch)
            batch = []
    count += _rate_into(rollups, batch)
    return rollups, count


def _rate_into(rollups: dict[str, UsageRollup], events: list[EventRow]) -> int:
    if not events:
        return 0
    book = TermsBook.load(
        customer_ids={event.customer_id for event in events},
        moments=[(event.customer_id, event.timestamp) for event in events],
        lock=False,
    )
    for event in events:
        rating = rate_event(book, event)
        rollup = rollups.get(rating.key)
        if rollup is None:
            fields = rating.rollup
            rollup = rollups[rating.key] = UsageRollup(
                key=rating.key,
                **fields,
                price=book.price_row(fields["price_id"]) if fields.get("price_id") else None,
                terms=book.terms_by_pk(fields["terms_id"]) if fields.get("terms_id") else None,
            )
        rollup.event_count += 1
        rollup.amount += rating.amount or _ZERO
        rollup.quantity += rating.quantity or _ZERO
    return len(events)


def _line_key(rollup: UsageRollup) -> _LineKey:
    return (rollup.status, rollup.line, rollup.model, rollup.feature)


def _line_label(rollup: UsageRollup) -> str:
    where = rollup.model + (f" · {rollup.feature}" if rollup.feature else "")
    return f"{rollup.line or rollup.status} · {where}"


def _source(rollup: UsageRollup) -> str:
    if rollup.status != UsageRollup.Status.RATED:
        return rollup.reason
    assert rollup.price is not None and rollup.terms is not None  # rated: both set
    version = rollup.price.version
    return f"{version.rate_card.name} v{version.number}, terms {rollup.terms.number}"


def _line_add(line: RerateLine, side: str, rollup: UsageRollup, amount: Decimal) -> None:
    def add(name: str, value: int | Decimal) -> None:
        setattr(line, f"{side}_{name}", getattr(line, f"{side}_{name}") + value)

    add("events", rollup.event_count)
    add("quantity", rollup.quantity)
    add("amount", amount)
    source = getattr(line, f"{side}_source")
    setattr(line, f"{side}_source", f"{source}; {_source(rollup)}" if source else _source(rollup))


def _by_label(line: RerateLine) -> str:
    return line.label
