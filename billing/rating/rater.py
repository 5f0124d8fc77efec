"""The rater: the event log turned into rated usage, continuously and exactly once.

Events wait in metering's queue (`UnratedEvent`, written with the event). A rater takes a
batch of them (`store.queue_take`: grouped by customer, the oldest event's first; any
number of raters share the queue), rates each with the terms in force at its timestamp
(`pricing.rating`), writes a `RatedEvent` per event, adds the batch into the
`UsageRollup` rows and the per-day `UsageDay` rows, and deletes the batch from the
queue, all in one transaction. A crash anywhere rolls all of it back
and the events are still queued; an event is never in two batches at once, so it is
rated exactly once. Each period a batch touches is queued for the credit draw-down
(`draw_down`), which runs between batches, in slices.

Re-rating uses the same path: an event put back in the queue is rated again, its old
contribution taken out of its old rollup and the new one added, in one transaction.
"""

import functools
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contracts.models import Contract, ContractTerms, RateCardVersion, TermsChange
from metering.services import events_queue_for_rating
from pricing.rating import PriceTerms, RatingError, event_amount, event_quantity

from ..models import TOKEN_COLUMNS, HoldSettlement, UsageRollup
from ..periods import rerate_from
from ..terms import TermsBook
from .draw_down import usage_draw_down_slice, usage_shortfalls_cover
from .store import (
    DayDelta,
    DayKey,
    EventRow,
    Metrics,
    Rating,
    RollupDelta,
    day_key,
    days_move,
    draw_downs_queue,
    events_fetch,
    queue_forget,
    queue_take,
    queue_waiting,
    ratings_insert,
    ratings_take_previous,
    rollup_ids_read,
    rollups_move,
)

logger = logging.getLogger(__name__)

#: What a rollup's key hashes: (customer pk, period start, status, terms pk or "",
#: price pk or "", model, feature, reason or "").
_KeyParts: TypeAlias = tuple[int, datetime, str, int | str, int | str, str, str, str]


_ZERO = Decimal(0)
#: How long a rater that emptied the queue while events keep coming waits before its next
#: batch, between draw-down passes: a batch gathers what arrived meanwhile.
GATHER_SECONDS = 0.05


def usage_rate_pending(*, batch_size: int | None = None) -> int:
    """Rate what is queued, batch by batch, until the queue is empty; return how many.

    Safe to run in any number of workers at once and to run again after a crash.
    """
    batch_size = batch_size or settings.TOKENTILL_RATING_BATCH
    terms_changes_apply()
    usage_shortfalls_cover()
    every = settings.TOKENTILL_DRAW_DOWN_SECONDS
    total, drawn_at, drawing = 0, time.monotonic(), 0.0
    while True:
        rated = _rate_batch(batch_size)
        total += rated
        emptied = rated < batch_size  # empty, or the rest is being rated by another worker
        # Balances keep up with a queue that never empties: a pass at least every
        # TOKENTILL_DRAW_DOWN_SECONDS, but no more than a third of the time, as a pass over
        # many customers' periods can take longer than rating the batches that touched them.
        # A pass lasts about that long too: events queued meanwhile are rated after it,
        # not after every period waiting to be drawn (a thousand customers' take seconds).
        # A rater that keeps up (its batch emptied the queue) holds to that share too while
        # events keep coming (some were queued while it rated): between passes it waits a
        # moment for the next batch to gather, leaving the processor to ingestion, where
        # drawing whenever the queue is empty would take all of it (a thousand customers'
        # periods are touched again as soon as they are drawn). A pass of a rater that keeps
        # up stops as soon as events are queued again, after a chunk at least: they wait
        # for one chunk of periods, not for a whole pass.
        due = time.monotonic() - drawn_at >= max(every, 2 * drawing)
        if emptied and rated and not due and queue_waiting():
            time.sleep(GATHER_SECONDS)
            continue
        if emptied or due:
            started = time.monotonic()
            drawn_all = usage_draw_down_slice(
                seconds=every, until=queue_waiting if emptied else None
            )
            drawn_at = time.monotonic()
            drawing = drawn_at - started
            if emptied and drawn_all:
                return total


def terms_changes_apply() -> int:
    """Queue again the usage rated before a contract change it is subject to."""
    applied = 0
    with transaction.atomic():
        changes = list(
            TermsChange.objects.select_for_update(skip_locked=True)
            .filter(applied_at__isnull=True)
            .order_by("id")[:500]
        )
        for change in changes:
            contracts = list(Contract.objects.filter(customer_id=change.customer_id))
            start = rerate_from(change.effective_from, contracts)
            events_queue_for_rating(customer_id=change.customer_id, start=start)
            applied += 1
        TermsChange.objects.filter(pk__in=[change.pk for change in changes]).update(
            applied_at=timezone.now()
        )
    return applied


def _tokens_check(metrics: Metrics) -> None:
    for name in TOKEN_COLUMNS:
        value = metrics.get(name, 0)
        if type(value) is not int and Decimal(value) != Decimal(value).to_integral_value():
            raise RatingError(f"{name} is {value}: token counts are whole numbers")


def _rate_batch(batch_size: int) -> int:
    try:
        with transaction.atomic():
            pks = queue_take(batch_size)
            if not pks:
                return 0
            events = events_fetch(pks)
            book = TermsBook.load(
                customer_ids={event.customer_id for event in events},
                moments=[(event.customer_id, event.timestamp) for event in events],
            )
            kinds: dict[_KindKey, _Kind] = {}
            ratings = [rate_event(book, event, kinds) for event in events]
            _ratings_store(ratings, metrics={event.pk: event.metrics for event in events})
            _holds_settle(events)
    except BaseException:
        queue_forget()  # the batch is back in the queue: read it again, oldest first
        raise
    return len(pks)


def _holds_settle(events: list[EventRow]) -> None:
    """Queue the holds the batch's events carry (their `hold_id` property) for settling:
    the draw-down pass that draws the call's period releases each, at what it drew for it."""
    carried = [
        HoldSettlement(hold_id=hold_id, customer_id=event.customer_id, event_id=event.pk)
        for event in events
        if (hold_id := _hold_id(event.properties.get("hold_id")))
    ]
    if carried:
        # A hold carried by two events is settled by the first.
        HoldSettlement.objects.bulk_create(carried, ignore_conflicts=True)


def _hold_id(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:  # not one of ours: the event is rated all the same
        return None


#: What rating decides once for a batch's events of one kind (`_Kind`), by
#: (customer pk, terms pk, version pk, period start, model, feature, properties).
_KindKey: TypeAlias = tuple[int, int, int, datetime, str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class _Kind:
    """What every event of one kind in a batch shares: its price (None: unpriced, for
    `reason`), and the rollup it is rated into with its key. The rollup dict is shared by
    those events' ratings and never changed."""

    price: PriceTerms | None
    rollup: dict[str, Any]
    key: str
    reason: str = ""


def rate_event(
    book: TermsBook, event: EventRow, kinds: dict[_KindKey, _Kind] | None = None
) -> Rating:
    """What one event costs under the terms and prices the book has for its timestamp,
    or why it is unpriced, or why its price failed to rate it.

    `kinds` (one dict per batch) keeps what is the same for every event of one kind (its
    terms, version, period, model, feature and properties): the price, the rollup and its
    key are then worked out once per kind, not per event; the money is per event."""
    pk, customer_id, timestamp, model, feature, properties, metrics = event
    terms = book.terms_at(customer_id, timestamp)
    if terms is None:
        identity = {"customer_id": customer_id, "model": model, "feature": feature}
        start, end = book.period_at(customer_id, timestamp)
        return _unpriced(pk, timestamp, identity, start, end, "no contract in force")
    start, end = book.contract_period(terms.contract, timestamp)
    version = book.version_at(terms.rate_card_id, timestamp)
    if version is None:
        identity = {
            "customer_id": customer_id, "model": model, "feature": feature, "terms_id": terms.pk
        }  # fmt: skip
        reason = f"{terms.rate_card.name} has no version in force"
        return _unpriced(pk, timestamp, identity, start, end, reason)
    key: _KindKey = (
        customer_id,
        terms.pk,
        version.pk,
        start,
        model,
        feature,
        tuple(sorted(properties.items())) if properties else (),
    )
    kind = kinds.get(key) if kinds is not None else None
    if kind is None:
        kind = _kind(book, event, terms, version, start, end)
        if kinds is not None:
            kinds[key] = kind
    price = kind.price
    if price is None:
        return Rating(pk, timestamp, kind.key, kind.rollup, reason=kind.reason)
    rating = Rating(pk, timestamp, kind.key, kind.rollup)
    try:
        _tokens_check(metrics)
        if price.kind == "per_event":
            rating.amount = event_amount(price, metrics)
        else:
            rating.quantity = event_quantity(price, metrics)
    except RatingError as error:
        rating.amount = rating.quantity = None
        rating.reason = str(error)[:500]
        rating.rollup = {
            **kind.rollup,
            "status": UsageRollup.Status.FAILED,
            "reason": rating.reason,
        }
        rating.key = _rollup_key(rating.rollup)
    return rating


def _kind(
    book: TermsBook,
    event: EventRow,
    terms: ContractTerms,
    version: RateCardVersion,
    start: datetime,
    end: datetime,
) -> _Kind:
    """The price of an event of this kind and the rollup it is rated into (or, unpriced,
    why, and its unpriced rollup)."""
    _, customer_id, _, model, feature, properties, _ = event
    identity: dict[str, Any] = {
        "customer_id": customer_id, "model": model, "feature": feature, "terms_id": terms.pk
    }  # fmt: skip
    price = book.price_for(version, terms, model=model, feature=feature, properties=properties)
    if price is None:
        where = f" and feature '{feature}'" if feature else ""
        reason = f"no price of {terms.rate_card.name} v{version.number} matches '{model}'{where}"
        rollup = _unpriced_rollup(identity, start, end, reason)
        return _Kind(None, rollup, _rollup_key(rollup, with_reason=True), reason)
    row = book.price_row(price.price_id)
    identity.update(price_id=row.pk, line=row.name)
    rollup = {
        **identity,
        "period_start": start,
        "period_end": end,
        "status": UsageRollup.Status.RATED,
    }
    return _Kind(price, rollup, _rollup_key(rollup))


def _unpriced(
    pk: int,
    timestamp: datetime,
    identity: dict[str, Any],
    start: datetime,
    end: datetime,
    reason: str,
) -> Rating:
    rollup = _unpriced_rollup(identity, start, end, reason)
    return Rating(pk, timestamp, _rollup_key(rollup, with_reason=True), rollup, reason=reason)


def _unpriced_rollup(
    identity: dict[str, Any], start: datetime, end: datetime, reason: str
) -> dict[str, Any]:
    return {
        **identity,
        "period_start": start,
        "period_end": end,
        "status": UsageRollup.Status.UNPRICED,
        "reason": reason,
    }


def _rollup_key(rollup: dict[str, Any], *, with_reason: bool = False) -> str:
    """One rollup per customer, period, status, terms, price, model and feature (and, for
    unpriced usage, reason); a hash, as model and feature names are long."""
    return _key_hash(
        (
            rollup["customer_id"],
            rollup["period_start"],
            rollup["status"],
            rollup.get("terms_id") or "",
            rollup.get("price_id") or "",
            rollup["model"],
            rollup["feature"],
            rollup.get("reason", "") if with_reason else "",
        )
    )


@functools.lru_cache(maxsize=65_536)
def _key_hash(parts: _KeyParts) -> str:
    """A batch has thousands of events and a few rollups: each key is hashed once."""
    text = [parts[0], parts[1].astimezone(UTC).isoformat(), *parts[2:]]
    return hashlib.sha256("\x1f".join(map(str, text)).encode()).hexdigest()


def _ratings_store(ratings: list[Rating], *, metrics: Mapping[int, Metrics]) -> None:
    """Write the batch's ratings and move the rollups by what changed."""
    now = timezone.now()
    previous = ratings_take_previous([rating.event_pk for rating in ratings])
    rollup_ids = _rollups_ensure(ratings, now)
    deltas: dict[int, RollupDelta] = defaultdict(RollupDelta)
    days: dict[DayKey, DayDelta] = defaultdict(DayDelta)
    for rating in ratings:
        event_metrics, at = metrics[rating.event_pk], rating.timestamp
        old = previous.get(rating.event_pk)
        if old is not None:
            rollup_id, amount, quantity = old
            deltas[rollup_id].add(-1, event_metrics, at, amount, quantity)
            if amount is not None:
                days[day_key(rating)].add(-1, amount)
        deltas[rollup_ids[rating.key]].add(1, event_metrics, at, rating.amount, rating.quantity)
        if rating.amount is not None:
            days[day_key(rating)].add(1, rating.amount)
    rollups_move(deltas, now)
    days_move(days)
    ratings_insert(ratings, rollup_ids, now)
    # Each period whose usage the batch changed, for the draw-down pass: those it rated
    # into, and those a re-rating took usage out of.
    periods = {(r.rollup["customer_id"], r.rollup["period_start"]) for r in ratings}
    if previous:
        taken_from = UsageRollup.objects.filter(pk__in={old[0] for old in previous.values()})
        periods.update(taken_from.values_list("customer_id", "period_start"))
    draw_downs_queue(periods)


def _rollups_ensure(ratings: Iterable[Rating], now: datetime) -> dict[str, int]:
    """The id of each rating's rollup, created empty where missing (in key order, so two
    raters creating the same rows cannot deadlock). Those that exist are read first: a
    batch over many customers meets a thousand rollups, nearly all there already, and
    an insert that conflicts costs far more than a read."""
    wanted: dict[str, Rating] = {}
    for rating in ratings:
        wanted.setdefault(rating.key, rating)
    ids = rollup_ids_read(list(wanted))
    missing = sorted(set(wanted) - set(ids))
    if not missing:
        return ids
    UsageRollup.objects.bulk_create(
        [
            UsageRollup(
                key=key,
                **wanted[key].rollup,
                first_event_at=wanted[key].timestamp,
                last_event_at=wanted[key].timestamp,
                updated_at=now,
            )
            for key in missing
        ],
        ignore_conflicts=True,
    )
    ids.update(rollup_ids_read(missing))
    return ids
