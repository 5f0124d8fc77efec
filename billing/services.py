"""Rating: the event log turned into rated usage, continuously and exactly once.

Events wait in metering's queue (`UnratedEvent`, written with the event). A rater takes a
batch of them (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers share the
queue without waiting on each other; SQLite has one writer at a time anyway), rates each
with the terms in force at its timestamp, writes a `RatedEvent` per event, adds the batch
into the `UsageRollup` rows, and deletes the batch from the queue, all in one transaction.
A crash anywhere rolls all of it back and the events are still queued; an event is never
in two batches at once, so it is rated exactly once.

Re-rating uses the same path: an event put back in the queue is rated again, its old
contribution taken out of its old rollup and the new one added, in one transaction.
"""

import functools
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from common.tasks import rating_nudge
from contracts.models import Contract, TermsChange
from metering.models import UnratedEvent, UsageEvent
from metering.services import events_queue_for_rating
from pricing.cycles import period_holding
from pricing.rating import RatingError, event_amount, event_quantity
from wallets.alerts import alerts_check_usage
from wallets.models import CreditGrant, Wallet
from wallets.selectors import customers_with_budget
from wallets.services import credit_grant, holds_settle, wallet_draw_down, wallet_get_or_create

from .models import (
    TOKEN_COLUMNS,
    DrawDownDue,
    HoldSettlement,
    RatedEvent,
    UsageDrawDown,
    UsageRollup,
)
from .terms import TermsBook

logger = logging.getLogger(__name__)

ROLLUP_SUMS = [
    "event_count",
    "amount",
    "quantity",
    *TOKEN_COLUMNS,
    "first_event_at",
    "last_event_at",
    "updated_at",
]
_ZERO = Decimal(0)


def usage_rate_pending(*, batch_size: int | None = None) -> int:
    """Rate what is queued, batch by batch, until the queue is empty; return how many.

    Safe to run in any number of workers at once and to run again after a crash.
    """
    batch_size = batch_size or settings.TOKENTILL_RATING_BATCH
    terms_changes_apply()
    usage_shortfalls_cover()
    total, drawn_at, drawing = 0, time.monotonic(), 0.0
    while True:
        rated = _rate_batch(batch_size)
        total += rated
        if rated < batch_size:  # empty, or the rest is being rated by another worker
            usage_draw_down_pending()
            return total
        # Balances keep up with a queue that never empties: a pass at least every
        # TOKENTILL_DRAW_DOWN_SECONDS, but no more than a third of the time, as a pass over
        # many customers' periods can take longer than rating the batches that touched them.
        if time.monotonic() - drawn_at >= max(settings.TOKENTILL_DRAW_DOWN_SECONDS, 2 * drawing):
            started = time.monotonic()
            usage_draw_down_pending()
            drawn_at = time.monotonic()
            drawing = drawn_at - started


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
            events_queue_for_rating(customer_id=change.customer_id, start=_rerate_from(change))
            applied += 1
        TermsChange.objects.filter(pk__in=[change.pk for change in changes]).update(
            applied_at=timezone.now()
        )
    return applied


def _rerate_from(change: TermsChange) -> datetime:
    """Where re-rating for a change starts: at its instant; or, when a contract starts there
    after time under none, at the start of the contract's first period, as the usage of that
    period from before the contract moves into it from a calendar month (`period_holding`)."""
    at = change.effective_from
    contracts = list(Contract.objects.filter(customer_id=change.customer_id))
    if any(c.starts_at < at and (c.ends_at is None or at <= c.ends_at) for c in contracts):
        return at
    return min(at, period_holding(contracts, at)[0])


@dataclass
class _Rating:
    """What rating one event decided."""

    event_pk: int
    timestamp: datetime
    key: str
    rollup: dict  # the rollup's identity fields
    amount: Decimal | None = None
    quantity: Decimal | None = None
    reason: str = ""


@dataclass
class _Delta:
    """What a batch adds to (or, for re-rated events, takes from) one rollup."""

    events: int = 0
    amount: Decimal = _ZERO
    quantity: Decimal = _ZERO
    first: datetime | None = None
    last: datetime | None = None

    def __post_init__(self):
        self.tokens = dict.fromkeys(TOKEN_COLUMNS, 0)

    def add(self, sign: int, metrics: dict, timestamp, amount, quantity) -> None:
        self.events += sign
        self.amount += sign * (amount or _ZERO)
        self.quantity += sign * (quantity or _ZERO)
        for name in TOKEN_COLUMNS:
            self.tokens[name] += sign * _token_count(metrics.get(name, 0))
        if sign > 0:
            self.first = timestamp if self.first is None else min(self.first, timestamp)
            self.last = timestamp if self.last is None else max(self.last, timestamp)


def _token_count(value) -> int:
    """A token metric as the whole number a rollup sums. Ingestion takes a decimal string
    for any metric, so a token count can arrive as "12.5": it counts 0 here, and its event
    fails to rate and says why (`_tokens_check`), rather than stopping the queue."""
    if type(value) is int:  # nearly always: skip the Decimal
        return value
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else 0


def _tokens_check(metrics: dict) -> None:
    for name in TOKEN_COLUMNS:
        value = metrics.get(name, 0)
        if type(value) is not int and Decimal(value) != Decimal(value).to_integral_value():
            raise RatingError(f"{name} is {value}: token counts are whole numbers")


def _rate_batch(batch_size: int) -> int:
    with transaction.atomic():
        pks = _queue_take(batch_size)
        if not pks:
            return 0
        events = _events_fetch(pks)
        book = TermsBook.load(
            customer_ids={event[1] for event in events},
            moments=[(event[1], event[2]) for event in events],
        )
        ratings = [_rate_event(book, *event) for event in events]
        _ratings_store(ratings, metrics={event[0]: event[6] for event in events})
        _holds_settle(events, ratings)
    return len(pks)


def _holds_settle(events: list[tuple], ratings: list[_Rating]) -> None:
    """Queue the holds the batch's events carry (their `hold_id` property) for settling:
    the draw-down pass releases them once it has drawn the calls' real cost."""
    carried = {}
    for pk, customer_id, _, _, _, properties, _ in events:
        hold_id = _hold_id(properties.get("hold_id"))
        if hold_id:
            carried[pk] = (hold_id, customer_id)
    if not carried:
        return
    HoldSettlement.objects.bulk_create(
        [
            HoldSettlement(
                hold_id=carried[rating.event_pk][0],
                customer_id=carried[rating.event_pk][1],
                cost=rating.amount,
            )
            for rating in ratings
            if rating.event_pk in carried
        ],
        ignore_conflicts=True,  # a hold carried by two events is settled by the first
    )


def _hold_id(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:  # not one of ours: the event is rated all the same
        return None


def _queue_take(batch_size: int) -> list[int]:
    """Take a batch off the queue, in this transaction: if it rolls back, they are back.

    On PostgreSQL, rows another rater has taken are skipped, never waited for.
    """
    table = UnratedEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM {table} "  # noqa: S608
                "ORDER BY event_id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING event_id",
                [batch_size],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT event_id FROM {table} ORDER BY event_id LIMIT %s",  # noqa: S608
            [batch_size],
        )
        pks = [row[0] for row in cursor.fetchall()]
        if pks:
            marks = ", ".join(["%s"] * len(pks))
            cursor.execute(f"DELETE FROM {table} WHERE event_id IN ({marks})", pks)  # noqa: S608
        return pks


def _events_fetch(pks: list[int]) -> list[tuple]:
    """The events behind queue rows (one that was deleted behind our back is skipped)."""
    columns = ("pk", "customer_id", "timestamp", "model", "feature", "properties", "metrics")
    if connection.vendor != "postgresql":
        return list(UsageEvent.objects.filter(pk__in=pks).values_list(*columns))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, customer_id, timestamp, model, feature, properties::text, "  # noqa: S608
            f"metrics::text FROM {UsageEvent._meta.db_table} WHERE id = ANY(%s)",
            [pks],
        )
        return [
            (pk, customer, at, model, feature, orjson.loads(properties), orjson.loads(metrics))
            for pk, customer, at, model, feature, properties, metrics in cursor.fetchall()
        ]


def _rate_event(book: TermsBook, pk, customer_id, timestamp, model, feature, properties, metrics):
    identity = {"customer_id": customer_id, "model": model, "feature": feature}
    terms = book.terms_at(customer_id, timestamp)
    if terms is None:
        start, end = book.period_at(customer_id, timestamp)
        return _unpriced(pk, timestamp, identity, start, end, "no contract in force")
    start, end = book.contract_period(terms.contract, timestamp)
    identity["terms_id"] = terms.pk
    version = book.version_at(terms.rate_card_id, timestamp)
    if version is None:
        reason = f"{terms.rate_card.name} has no version in force"
        return _unpriced(pk, timestamp, identity, start, end, reason)
    price = book.price_for(version, terms, model=model, feature=feature, properties=properties)
    if price is None:
        where = f" and feature '{feature}'" if feature else ""
        reason = f"no price of {terms.rate_card.name} v{version.number} matches '{model}'{where}"
        return _unpriced(pk, timestamp, identity, start, end, reason)
    row = book.price_row(price.price_id)
    identity.update(price_id=row.pk, line=row.name)
    rating = _Rating(pk, timestamp, "", {**identity, "period_start": start, "period_end": end})
    try:
        _tokens_check(metrics)
        if price.kind == "per_event":
            rating.amount = event_amount(price, metrics)
        else:
            rating.quantity = event_quantity(price, metrics)
        rating.rollup["status"] = UsageRollup.Status.RATED
    except RatingError as error:
        rating.reason = str(error)[:500]
        rating.rollup["status"] = UsageRollup.Status.FAILED
        rating.rollup["reason"] = rating.reason
    rating.key = _rollup_key(rating.rollup)
    return rating


def _unpriced(pk, timestamp, identity: dict, start, end, reason: str) -> _Rating:
    rollup = {
        **identity,
        "period_start": start,
        "period_end": end,
        "status": UsageRollup.Status.UNPRICED,
        "reason": reason,
    }
    return _Rating(pk, timestamp, _rollup_key(rollup, with_reason=True), rollup, reason=reason)


def _rollup_key(rollup: dict, *, with_reason: bool = False) -> str:
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
def _key_hash(parts: tuple) -> str:
    """A batch has thousands of events and a few rollups: each key is hashed once."""
    text = [parts[0], parts[1].astimezone(UTC).isoformat(), *parts[2:]]
    return hashlib.sha256("\x1f".join(map(str, text)).encode()).hexdigest()


def _ratings_store(ratings: list[_Rating], *, metrics: dict) -> None:
    """Write the batch's ratings and move the rollups by what changed."""
    now = timezone.now()
    previous = _ratings_take_previous([rating.event_pk for rating in ratings])
    rollup_ids = _rollups_ensure(ratings, now)
    deltas: dict[int, _Delta] = defaultdict(_Delta)
    for rating in ratings:
        event_metrics, at = metrics[rating.event_pk], rating.timestamp
        old = previous.get(rating.event_pk)
        if old is not None:
            rollup_id, amount, quantity = old
            deltas[rollup_id].add(-1, event_metrics, at, amount, quantity)
        deltas[rollup_ids[rating.key]].add(1, event_metrics, at, rating.amount, rating.quantity)
    _rollups_move(deltas, now)
    _ratings_insert(ratings, rollup_ids, now)
    periods = {(r.rollup["customer_id"], r.rollup["period_start"]) for r in ratings}
    DrawDownDue.objects.bulk_create(
        [DrawDownDue(customer_id=customer, period_start=start) for customer, start in periods],
        ignore_conflicts=True,
    )


def usage_draw_down_pending(*, chunk: int = 200) -> int:
    """Draw the credits for the periods whose usage was rated since (the draw-down queue),
    then settle the holds of the calls rated; return how many periods.

    Rating queues each period it touches in its own transaction, so a period is drawn
    once per pass however many batches touched it, and a crash between the two loses
    nothing: the queue row is still there. Any number of passes may run at once (rows are
    taken with SKIP LOCKED on PostgreSQL), and drawing is a reconciliation (billable usage
    less what was drawn or short), so drawing a period twice draws nothing more. A period
    whose drawing fails is logged and queued again for the next pass (its holds stay
    held); it never stops the others.
    """
    done, failed = 0, set()
    while True:
        with transaction.atomic():
            periods = set(_draw_downs_take(chunk))
            if not periods:
                break
            failed |= _draw_downs_apply(periods)
            settling = list(
                HoldSettlement.objects.select_for_update(skip_locked=True)
                .filter(customer_id__in={customer for customer, _ in periods})
                .exclude(customer_id__in={customer for customer, _ in failed})
            )
            if settling:
                holds_settle(
                    costs={row.hold_id: row.cost for row in settling},
                    customer_ids={row.hold_id: row.customer_id for row in settling},
                )
                HoldSettlement.objects.filter(pk__in=[row.pk for row in settling]).delete()
        done += len(periods)
    DrawDownDue.objects.bulk_create(
        [DrawDownDue(customer_id=customer, period_start=start) for customer, start in failed],
        ignore_conflicts=True,
    )
    return done


def _draw_downs_apply(periods: set[tuple[int, datetime]]) -> set[tuple[int, datetime]]:
    """Draw for the periods together; if that fails, one by one, and return those that
    failed (each in a savepoint, so what the others drew stands)."""
    try:
        with transaction.atomic():
            _usage_draw_down(periods)
        return set()
    except Exception:
        failed = set()
        for period in sorted(periods):
            try:
                with transaction.atomic():
                    _usage_draw_down({period})
            except Exception:
                logger.exception(
                    "drawing credits for customer %s, period %s failed; queued again", *period
                )
                failed.add(period)
        return failed


def _draw_downs_take(chunk: int) -> list[tuple[int, datetime]]:
    """Take up to `chunk` periods off the draw-down queue, in this transaction."""
    table = DrawDownDue._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
                "ORDER BY customer_id, period_start LIMIT %s FOR UPDATE SKIP LOCKED) "
                "RETURNING customer_id, period_start",
                [chunk],
            )
            return list(cursor.fetchall())
    rows = list(
        DrawDownDue.objects.order_by("customer_id", "period_start").values_list(
            "pk", "customer_id", "period_start"
        )[:chunk]
    )
    DrawDownDue.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
    return [(customer, start) for _, customer, start in rows]


def _usage_draw_down(periods: set[tuple[int, datetime]]) -> None:
    """Draw each touched period's new billable usage from the customer's credits.

    Billable usage is the period's usage after discount beyond its included allowance,
    worked out from the rollups (so tiers, discounts and the pooled allowance count as on
    the invoice); what the credits already paid or could not cover is subtracted, and the
    rest is drawn, or, when re-rating lowered it, given back (the shortfall first, then a
    refund grant). Where the period's latest terms say credits cover arrears, what the
    credits could not cover before is asked of them again, so credits granted since pay
    for it. In the rating transaction: exactly once, like the rating itself. Customers
    without a wallet are not drawn; their first credits pay for the open period's usage
    from its start. The period's usage (after discount) is checked against the
    customer's budget alerts here too, with or without a wallet.
    """
    from .selectors import period_money, period_rollups  # selectors read services' rows

    customer_ids = {customer for customer, _ in periods}
    with_wallets = set(
        Wallet.objects.filter(customer_id__in=customer_ids).values_list("customer_id", flat=True)
    )
    budgeted = customers_with_budget(customer_ids=customer_ids)
    watched = with_wallets | budgeted
    for customer_id, period_start in sorted(periods):
        if customer_id not in watched:
            continue
        # The record's lock first: a rater rating the same period meanwhile has committed
        # by the time the rollups are read, so its usage is counted here, once.
        record, _ = UsageDrawDown.objects.select_for_update().get_or_create(
            customer_id=customer_id, period_start=period_start
        )
        rollups = period_rollups(customer_id=customer_id, start=period_start)
        if not rollups:
            continue
        customer, end = rollups[0].customer, rollups[0].period_end
        spans, _, charges = period_money(
            customer=customer, start=period_start, end=end, rollups=rollups
        )
        usage = sum(charges.usage_by_segment, _ZERO)
        if customer_id in budgeted:
            alerts_check_usage(customer=customer, period_start=period_start, usage=usage)
        if customer_id not in with_wallets:
            continue
        latest_terms = spans[-1][1]
        cover = latest_terms is not None and latest_terms.credits_cover_arrears
        billable = usage - charges.allowance_used
        record.allowance_left = sum(charges.allowances, _ZERO) - charges.allowance_used
        owed = billable - record.drawn - record.short
        reference = f"usage {period_start:%Y-%m-%d}"
        if owed > 0 or (cover and record.short > 0 and owed == 0):
            ask = owed + (record.short if cover else _ZERO)
            wallet = wallet_get_or_create(customer=customer)
            result = wallet_draw_down(wallet=wallet, amount=ask, reference=reference)
            record.drawn += result.drawn
            record.short = result.short if cover else record.short + result.short
        elif owed < 0:
            back = -owed
            from_short = min(record.short, back)
            record.short -= from_short
            if back - from_short:
                credit_grant(
                    customer=customer,
                    amount=back - from_short,
                    source=CreditGrant.Source.REFUND,
                    reason=f"re-rated {reference}",
                )
                record.drawn -= back - from_short
        # Saved even when nothing moved: `updated_at` tells usage_shortfalls_cover that
        # grants older than it have been offered this period's shortfall.
        record.save(update_fields=["drawn", "short", "allowance_left", "updated_at"])


def usage_shortfalls_cover() -> int:
    """Offer each period's usage past the credits to the credits granted since it was last
    drawn (for terms where credits cover arrears), so a grant pays for it at once rather
    than at the period's next usage. Run by every rater pass; granting credits asks for one.
    """
    with transaction.atomic():
        due = set(
            UsageDrawDown.objects.filter(
                short__gt=0, customer__wallets__grants__created_at__gte=F("updated_at")
            ).values_list("customer_id", "period_start")
        )
        if due:
            _usage_draw_down(due)
    return len(due)


def _ratings_take_previous(event_pks: list[int]) -> dict[int, tuple]:
    """Delete the events' earlier ratings (re-rating) and return them by event pk as
    (rollup id, amount, quantity), to take out of their rollups."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {RatedEvent._meta.db_table} WHERE event_id = ANY(%s) "  # noqa: S608
                "RETURNING event_id, rollup_id, amount, quantity",
                [event_pks],
            )
            return {row[0]: row[1:] for row in cursor.fetchall()}
    earlier = RatedEvent.objects.filter(event_id__in=event_pks)
    previous = {
        row[0]: row[1:]
        for row in earlier.values_list("event_id", "rollup_id", "amount", "quantity")
    }
    if previous:
        earlier.delete()
    return previous


def _ratings_insert(ratings: list[_Rating], rollup_ids: dict[str, int], now) -> None:
    """One statement on PostgreSQL: the batch's columns as arrays, unnested."""
    if connection.vendor != "postgresql":
        RatedEvent.objects.bulk_create(
            RatedEvent(
                event_id=rating.event_pk,
                rollup_id=rollup_ids[rating.key],
                amount=rating.amount,
                quantity=rating.quantity,
                reason=rating.reason,
                rated_at=now,
            )
            for rating in ratings
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RatedEvent._meta.db_table} "  # noqa: S608
            "(event_id, rollup_id, amount, quantity, reason, rated_at) "
            "SELECT *, %s FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], "
            "%s::numeric[], %s::text[])",
            [
                now,
                [rating.event_pk for rating in ratings],
                [rollup_ids[rating.key] for rating in ratings],
                [rating.amount for rating in ratings],
                [rating.quantity for rating in ratings],
                [rating.reason for rating in ratings],
            ],
        )


def _rollups_ensure(ratings: Iterable[_Rating], now) -> dict[str, int]:
    """The id of each rating's rollup, created empty where missing (in key order, so two
    raters creating the same rows cannot deadlock)."""
    wanted = {}
    for rating in ratings:
        wanted.setdefault(rating.key, rating)
    UsageRollup.objects.bulk_create(
        [
            UsageRollup(
                key=key,
                **wanted[key].rollup,
                first_event_at=wanted[key].timestamp,
                last_event_at=wanted[key].timestamp,
                updated_at=now,
            )
            for key in sorted(wanted)
        ],
        ignore_conflicts=True,
    )
    return dict(UsageRollup.objects.filter(key__in=list(wanted)).values_list("key", "pk"))


def _rollups_move(deltas: dict[int, _Delta], now) -> None:
    """Add each delta to its rollup, in id order (no deadlock between raters).

    PostgreSQL adds in SQL (exact `numeric`), under the row lock the UPDATE takes; SQLite
    keeps these columns as text, so the sum is done here, in the transaction that holds
    SQLite's only write lock.
    """
    if connection.vendor == "postgresql":
        _rollups_move_postgresql(deltas, now)
        return
    rollups = UsageRollup.objects.in_bulk(sorted(deltas))
    for pk, delta in deltas.items():
        rollup = rollups[pk]
        rollup.event_count += delta.events
        rollup.amount += delta.amount
        rollup.quantity += delta.quantity
        for name in TOKEN_COLUMNS:
            setattr(rollup, name, getattr(rollup, name) + delta.tokens[name])
        if delta.first is not None:
            rollup.first_event_at = min(rollup.first_event_at, delta.first)
            rollup.last_event_at = max(rollup.last_event_at, delta.last)
        rollup.updated_at = now
    UsageRollup.objects.bulk_update(rollups.values(), ROLLUP_SUMS)


_MOVE_SQL = """
UPDATE {table} AS r SET
    event_count = r.event_count + d.events, amount = r.amount + d.amount,
    quantity = r.quantity + d.quantity, {tokens},
    first_event_at = LEAST(r.first_event_at, d.first_at),
    last_event_at = GREATEST(r.last_event_at, d.last_at), updated_at = %s
FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[], {token_arrays},
            %s::timestamptz[], %s::timestamptz[])
    AS d(id, events, amount, quantity, {token_names}, first_at, last_at)
WHERE r.id = d.id
"""


def _rollups_move_postgresql(deltas: dict[int, _Delta], now) -> None:
    """Two statements: lock the rollups in id order (two raters never deadlock), then add
    every delta in one UPDATE over arrays (LEAST and GREATEST skip a NULL)."""
    pks = sorted(deltas)
    table = UsageRollup._meta.db_table
    sql = _MOVE_SQL.format(
        table=table,
        tokens=", ".join(f"{name} = r.{name} + d.{name}" for name in TOKEN_COLUMNS),
        token_arrays=", ".join(["%s::bigint[]"] * len(TOKEN_COLUMNS)),
        token_names=", ".join(TOKEN_COLUMNS),
    )
    ordered = [deltas[pk] for pk in pks]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",  # noqa: S608
            [pks],
        )
        cursor.execute(
            sql,
            [
                now,
                pks,
                [delta.events for delta in ordered],
                [delta.amount for delta in ordered],
                [delta.quantity for delta in ordered],
                *([delta.tokens[name] for delta in ordered] for name in TOKEN_COLUMNS),
                [delta.first for delta in ordered],
                [delta.last for delta in ordered],
            ],
        )


# --- Re-rating ---------------------------------------------------------------------------


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
        old = (self.old_events, self.old_quantity, self.old_amount, self.old_source)
        return old != (self.new_events, self.new_quantity, self.new_amount, self.new_source)


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

    @property
    def changed(self) -> list[RerateLine]:
        return [line for line in self.lines if line.changed]


def period_rerate(*, customer, at: datetime, apply: bool = False) -> RerateDiff:
    """Re-rate the period holding `at` from the immutable log with today's prices and terms.

    Without `apply` nothing is stored: the diff shows, per line, the events, quantity and
    money now and after re-rating, and the period's total before and after. With `apply`
    the period's events go back into the rating queue (one INSERT ... SELECT), and the
    raters replace each event's rating and move the rollups in the same transactions as
    any rating. Events are read in bounded batches, so memory stays flat for any period.
    """
    from .selectors import period_money, period_of, period_rollups  # selectors read services' rows

    start, end = period_of(customer=customer, at=at)
    old = period_rollups(customer_id=customer.pk, start=start)
    new, events = _rollups_rated_anew(customer, start, end)
    diff_lines = {}
    for side, rollups in (("old", old), ("new", list(new.values()))):
        _, amounts, _ = period_money(customer=customer, start=start, end=end, rollups=rollups)
        for rollup in sorted(rollups, key=_source):
            line = diff_lines.setdefault(_line_key(rollup), RerateLine(label=_line_label(rollup)))
            _line_add(line, side, rollup, amounts.get(rollup.key, _ZERO))
    totals = [
        period_money(customer=customer, start=start, end=end, rollups=rollups)[2].total
        for rollups in (old, list(new.values()))
    ]
    diff = RerateDiff(start, end, sorted(diff_lines.values(), key=_by_label), *totals, events)
    if apply:
        with transaction.atomic():
            events_queue_for_rating(customer_id=customer.pk, start=start, end=end)
            transaction.on_commit(rating_nudge)
        diff.applied = True
    return diff


def _rollups_rated_anew(customer, start, end, chunk: int = 5_000):
    """Unsaved rollups of the period as the current terms rate it, and the event count."""
    rollups: dict[str, UsageRollup] = {}
    events = UsageEvent.objects.filter(
        customer=customer, timestamp__gte=start, timestamp__lt=end
    ).values_list("pk", "customer_id", "timestamp", "model", "feature", "properties", "metrics")
    batch, count = [], 0
    for event in events.iterator(chunk_size=chunk):
        batch.append(event)
        if len(batch) == chunk:
            count += _rate_into(rollups, batch)
            batch = []
    count += _rate_into(rollups, batch)
    return rollups, count


def _rate_into(rollups: dict, events: list) -> int:
    if not events:
        return 0
    book = TermsBook.load(
        customer_ids={event[1] for event in events},
        moments=[(event[1], event[2]) for event in events],
        lock=False,
    )
    for event in events:
        rating = _rate_event(book, *event)
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


def _line_key(rollup: UsageRollup) -> tuple:
    return (rollup.status, rollup.line, rollup.model, rollup.feature)


def _line_label(rollup: UsageRollup) -> str:
    where = rollup.model + (f" · {rollup.feature}" if rollup.feature else "")
    return f"{rollup.line or rollup.status} · {where}"


def _source(rollup: UsageRollup) -> str:
    if rollup.status != UsageRollup.Status.RATED:
        return rollup.reason
    version = rollup.price.version
    return f"{version.rate_card.name} v{version.number}, terms {rollup.terms.number}"


def _line_add(line: RerateLine, side: str, rollup: UsageRollup, amount: Decimal) -> None:
    def add(name, value):
        setattr(line, f"{side}_{name}", getattr(line, f"{side}_{name}") + value)

    add("events", rollup.event_count)
    add("quantity", rollup.quantity)
    add("amount", amount)
    source = getattr(line, f"{side}_source")
    setattr(line, f"{side}_source", f"{source}; {_source(rollup)}" if source else _source(rollup))


def _by_label(line: RerateLine) -> str:
    return line.label
