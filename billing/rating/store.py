"""The rater's statements: the one place that speaks PostgreSQL or SQLite to the rating
tables, each statement written for both.

On PostgreSQL the queue is taken with `FOR UPDATE SKIP LOCKED` (any number of raters
share it without waiting on each other), a batch's ratings go in as one INSERT over
arrays, and rollups move in one UPDATE over arrays, their rows locked in id order so two
raters never deadlock. SQLite has one writer at a time and keeps exact decimals as text,
so there the same work is plain ORM and sums done in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeAlias

import orjson
from django.db import connection
from django.utils import timezone

from metering.models import UnratedEvent, UsageEvent

from ..models import (
    TOKEN_COLUMNS,
    DrawDownDue,
    RatedEvent,
    UsageDay,
    UsageDrawDown,
    UsageRollup,
)
from ..periods import instants_read_fast, token_count

_ZERO = Decimal(0)
#: An event's metrics as the log stores them: token counts as ints, others as decimal text.
Metrics: TypeAlias = Mapping[str, int | str]
#: An earlier rating, taken out on re-rating: (rollup id, amount, quantity).
PreviousRating: TypeAlias = tuple[int, Decimal | None, Decimal | None]


class EventRow(NamedTuple):
    """An event as the rater reads it from the log."""

    pk: int
    customer_id: int
    timestamp: datetime
    model: str
    feature: str
    properties: dict[str, str]
    metrics: dict[str, int | str]


#: The UsageEvent columns an EventRow holds, in its order.
EVENT_COLUMNS = EventRow._fields


ROLLUP_SUMS = [
    "event_count",
    "amount",
    "quantity",
    *TOKEN_COLUMNS,
    "first_event_at",
    "last_event_at",
    "updated_at",
]


@dataclass
class Rating:
    """What rating one event decided."""

    event_pk: int
    timestamp: datetime
    key: str
    rollup: dict[str, Any]  # the rollup's identity fields
    amount: Decimal | None = None
    quantity: Decimal | None = None
    reason: str = ""


@dataclass
class RollupDelta:
    """What a batch adds to (or, for re-rated events, takes from) one rollup."""

    events: int = 0
    amount: Decimal = _ZERO
    quantity: Decimal = _ZERO
    first: datetime | None = None
    last: datetime | None = None

    def __post_init__(self) -> None:
        self.tokens = dict.fromkeys(TOKEN_COLUMNS, 0)

    def add(
        self,
        sign: int,
        metrics: Metrics,
        timestamp: datetime,
        amount: Decimal | None,
        quantity: Decimal | None,
    ) -> None:
        self.events += sign
        self.amount += sign * (amount or _ZERO)
        self.quantity += sign * (quantity or _ZERO)
        tokens = self.tokens
        for name in TOKEN_COLUMNS:
            tokens[name] += sign * token_count(metrics.get(name, 0))
        if sign > 0:
            self.first = timestamp if self.first is None else min(self.first, timestamp)
            self.last = timestamp if self.last is None else max(self.last, timestamp)


#: A per-day row's identity: (customer pk, UTC day, model, feature).
DayKey: TypeAlias = tuple[int, date, str, str]


@dataclass
class DayDelta:
    """What a batch adds to (or, for re-rated events, takes from) one day's money."""

    events: int = 0
    amount: Decimal = _ZERO

    def add(self, sign: int, amount: Decimal) -> None:
        self.events += sign
        self.amount += sign * amount


def day_key(rating: Rating) -> DayKey:
    """The per-day row an event's amount goes to: its customer, UTC day, model, feature."""
    rollup = rating.rollup
    day = rating.timestamp.astimezone(UTC).date()
    return rollup["customer_id"], day, rollup["model"], rollup["feature"]


def pg_array(values: Iterable[object]) -> str:
    """An array parameter as PostgreSQL's array text, cast in the statement (`%s::bigint[]`).

    Django binds parameters on the client, which quotes an array's elements one by one in
    Python: about 3 ms per thousand, for each array of a statement, where one string costs
    next to nothing. Numbers, instants and dates go as they print (a Decimal exactly);
    text is quoted; None is NULL."""
    return "{" + ",".join([_ELEMENTS.get(type(v), _element)(v) for v in values]) + "}"


def _element(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, date):  # datetimes too, in ISO 8601 with their offset
        return value.isoformat()
    return str(value)


#: How the common types print, looked up by type: most arrays are a thousand of one.
_ELEMENTS: dict[type, Callable[[Any], str]] = {
    int: str,
    Decimal: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    type(None): _element,
    str: _element,
}


#: How deep a rater looks into the queue for a batch's customers: this many batches' worth
#: of the oldest queued events. Deeper groups a backlog over many customers into fewer of
#: them a batch (so fewer rollups, per-day rows and draw-downs), at the cost of a longer
#: read each time the rater reads the queue again.
QUEUE_DEPTH = 100
#: Events per customer in a first look at a batch's worth: with fewer on average (and
#: more than one customer) the queue interleaves customers and the rater looks deeper;
#: with as many, a batch of a few customers' events is grouped as it is.
_GROUPED_ENOUGH = 100
#: Times a batch chooses again after another rater took some of what it chose.
_ROUNDS = 8


def queue_take(batch_size: int) -> list[int]:
    """Take a batch off the queue, in this transaction (if it rolls back, they are back),
    grouped by customer: the customers of the oldest queued events, oldest first, each
    with its events among the oldest `QUEUE_DEPTH` batches' worth (`batch_choose`).

    A batch over a few customers writes a few rollups, per-day rows and draw-down rows,
    and reads a few customers' terms, where the queue's own order (ingestion interleaves
    customers) makes a batch of a thousand events touch a thousand customers. A queue
    whose head is a few customers' (`_interleaved`: not) is taken in its order.

    On PostgreSQL a rater keeps what it read of the queue between its batches (`_kept`)
    and reads it again once used up, or once the queue's oldest event is not among what it
    read (an event queued again, a batch committed late, the rest taken by others): the
    oldest queued event is among what it chooses from, first. Rows another rater holds are
    skipped, never waited for, and so are the rest of their customers' (that rater is on
    them); the batch then chooses again, and fills what is still missing with the oldest
    rows nobody holds, so it is short only when no row is left to take, as the rater's
    loop expects.
    """
    if connection.vendor != "postgresql":  # one writer: nobody holds a row; read each time
        chosen = batch_choose(_queue_look(batch_size), batch_size)
        pks = [pk for customer_pks in chosen.values() for pk in customer_pks]
        if pks:
            marks = ", ".join(["%s"] * len(pks))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {UnratedEvent._meta.db_table} "  # noqa: S608
                    f"WHERE event_id IN ({marks})",
                    pks,
                )
        return pks
    if not _kept.grouping:
        return _take_in_order(batch_size)
    oldest = _queue_oldest()
    if oldest is None:
        return []
    fresh = not _kept.queued or oldest not in _kept.seen
    if fresh and not _kept.read(batch_size):
        return _take_in_order(batch_size)
    taken: list[int] = []
    for _ in range(_ROUNDS):
        if not _kept.queued and not fresh:  # used up in this batch: what follows it
            fresh = True
            if not _kept.read(batch_size):
                break
        chosen = batch_choose(_kept.queued, batch_size - len(taken))
        if not chosen:
            break
        got = _queue_delete([pk for pks in chosen.values() for pk in pks])
        _kept.seen.difference_update(got)
        taken += got
        if len(taken) >= batch_size:
            return taken
        missed = {pk for pks in chosen.values() for pk in pks}.difference(got)
        for customer, pks in chosen.items():
            if missed.intersection(pks):  # another rater is on this customer
                _kept.queued.pop(customer, None)
    filled = [pk for pk, _ in _queue_take_oldest(batch_size - len(taken))]
    _kept.seen.difference_update(filled)
    return taken + filled


def _take_in_order(batch_size: int) -> list[int]:
    """The oldest rows as they stand, while the queue's head is a few customers' (one
    statement, as a batch of one customer's backlog needs no choosing); whether the next
    batch looks again is told by the customers of these."""
    rows = _queue_take_oldest(batch_size)
    _kept.grouping = _interleaved(rows, batch_size)
    return [pk for pk, _ in rows]


def _interleaved(rows: list[tuple[int, int]], batch_size: int) -> bool:
    """Whether these oldest (event pk, customer pk), a batch's worth, interleave customers:
    more than one, and fewer than `_GROUPED_ENOUGH` events each on average."""
    customers = len({customer for _, customer in rows})
    return len(rows) == batch_size and customers > max(1, batch_size // _GROUPED_ENOUGH)


def batch_choose(queued: dict[int, list[int]], size: int) -> dict[int, list[int]]:
    """Up to `size` of the queued event pks, given by customer (each customer's in queue
    order): each customer's in turn by their oldest, oldest first, the last customer's
    cut short. The oldest event is always chosen. What is chosen leaves `queued`."""
    chosen: dict[int, list[int]] = {}
    count = 0
    for customer in sorted(queued, key=lambda customer: queued[customer][0]):
        pks = queued.pop(customer)
        chosen[customer] = pks[: size - count]
        count += len(chosen[customer])
        if count >= size:
            if len(pks) > len(chosen[customer]):
                queued[customer] = pks[len(chosen[customer]) :]
            break
    return chosen


class _Horizon(threading.local):
    """What a rater thread read of the queue, kept between its batches: the oldest rows'
    event pks by customer; the pks read and not taken since (`seen`: an event queued again
    by a re-rating keeps its old pk, which is not among them, so the rater reads again
    and takes it first); and whether the queue's head interleaved customers when last
    seen (`grouping`; a rater starts by looking)."""

    def __init__(self) -> None:
        self.queued: dict[int, list[int]] = {}
        self.seen: set[int] = set()
        self.grouping = True

    def read(self, batch_size: int) -> bool:
        """Look at the queue again; keep `QUEUE_DEPTH` batches' worth if its head
        interleaves customers. Whether it does."""
        self.queued = {}
        self.grouping = _interleaved(_queue_rows(batch_size), batch_size)
        if self.grouping:
            self.queued = _by_customer(_queue_rows(batch_size * QUEUE_DEPTH))
            self.seen = {pk for pks in self.queued.values() for pk in pks}
        return self.grouping


_kept = _Horizon()


def queue_forget() -> None:
    """Forget what this rater kept of the queue (after a batch rolled back, its events, the
    oldest, are queued again): its next batch looks at the queue afresh."""
    _kept.queued, _kept.seen, _kept.grouping = {}, set(), True


def _queue_look(batch_size: int) -> dict[int, list[int]]:
    """The oldest batch's worth of the queue by customer, or `QUEUE_DEPTH` of them when
    that first look shows it interleaves customers."""
    rows = _queue_rows(batch_size)
    if _interleaved(rows, batch_size):
        rows = _queue_rows(batch_size * QUEUE_DEPTH)
    return _by_customer(rows)


def _by_customer(rows: list[tuple[int, int]]) -> dict[int, list[int]]:
    """(event pk, customer pk) in queue order as event pks by customer, in queue order."""
    queued: dict[int, list[int]] = {}
    for pk, customer in rows:
        queued.setdefault(customer, []).append(pk)
    return queued


def _queue_rows(limit: int) -> list[tuple[int, int]]:
    """The oldest `limit` queue rows, (event pk, customer pk), taking no lock. On
    PostgreSQL as two arrays of text in one row: a hundred thousand rows come into Python
    ten times faster so than row by row."""
    table = UnratedEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT array_agg(event_id ORDER BY event_id)::text, "  # noqa: S608
                "array_agg(customer_id ORDER BY event_id)::text FROM (SELECT event_id, "
                f"customer_id FROM {table} ORDER BY event_id LIMIT %s) AS oldest",
                [limit],
            )
            pks_text, customers_text = cursor.fetchone()
            return list(zip(_ints(pks_text), _ints(customers_text), strict=True))
        cursor.execute(
            f"SELECT event_id, customer_id FROM {table} ORDER BY event_id LIMIT %s",  # noqa: S608
            [limit],
        )
        return [(pk, customer) for pk, customer in cursor.fetchall()]


def _ints(text: str | None) -> list[int]:
    """An array of whole numbers as PostgreSQL writes it ("{1,2,3}"; NULL: empty)."""
    return list(map(int, text[1:-1].split(","))) if text else []


def queue_waiting() -> bool:
    """Whether any event is queued for rating (rows other raters hold included)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {UnratedEvent._meta.db_table})")  # noqa: S608
        return bool(cursor.fetchone()[0])


def _queue_oldest() -> int | None:
    """The oldest queued event's pk, rows other raters hold included (None: empty)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(event_id) FROM {UnratedEvent._meta.db_table}")  # noqa: S608
        oldest: int | None = cursor.fetchone()[0]
        return oldest


def _queue_delete(pks: list[int]) -> list[int]:
    """PostgreSQL: delete these queue rows, those no other rater holds. Which went."""
    table = UnratedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM {table} "  # noqa: S608
            "WHERE event_id = ANY(%s::bigint[]) FOR UPDATE SKIP LOCKED) RETURNING event_id",
            [pg_array(pks)],
        )
        return [row[0] for row in cursor.fetchall()]


def _queue_take_oldest(limit: int) -> list[tuple[int, int]]:
    """PostgreSQL: take the oldest `limit` rows no other rater holds, (event pk, customer
    pk)."""
    table = UnratedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM {table} "  # noqa: S608
            "ORDER BY event_id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING event_id, customer_id",
            [limit],
        )
        return [(pk, customer) for pk, customer in cursor.fetchall()]


def events_fetch(pks: list[int]) -> list[EventRow]:
    """The events behind queue rows (one that was deleted behind our back is skipped)."""
    if connection.vendor != "postgresql":
        rows = UsageEvent.objects.filter(pk__in=pks).values_list(*EVENT_COLUMNS)
        return [EventRow(*row) for row in rows]
    with connection.cursor() as cursor:
        instants_read_fast(cursor)
        cursor.execute(
            "SELECT id, customer_id, timestamp, model, feature, properties::text, "  # noqa: S608
            f"metrics::text FROM {UsageEvent._meta.db_table} WHERE id = ANY(%s::bigint[])",
            [pg_array(pks)],
        )
        return [
            EventRow(
                pk, customer, at, model, feature, orjson.loads(properties), orjson.loads(metrics)
            )
            for pk, customer, at, model, feature, properties, metrics in cursor.fetchall()
        ]


def draw_downs_queue(periods: Iterable[tuple[int, datetime]]) -> None:
    """Queue each (customer pk, period start) for the draw-down pass, in this transaction.

    Each call writes rows of its own, never one another transaction wrote: a pass cannot
    take them before this transaction commits, so it never draws the period without the
    usage this transaction changed, and no transaction waits for a pass or for another
    (a unique row per period did both: ON CONFLICT DO NOTHING left a row a pass could
    take before the batch committed, and waited for a pass that had taken it).
    """
    queued = sorted(set(periods))
    if connection.vendor != "postgresql":
        DrawDownDue.objects.bulk_create(
            [DrawDownDue(customer_id=customer, period_start=start) for customer, start in queued]
        )
        return
    if queued:  # one INSERT over arrays: a batch over many customers queues a row each
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {DrawDownDue._meta.db_table} (customer_id, period_start) "  # noqa: S608
                "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])",
                [pg_array(c for c, _ in queued), pg_array(start for _, start in queued)],
            )


def draw_down_records_create(periods: list[tuple[int, datetime]]) -> None:
    """PostgreSQL: the draw-down records of these (customer pk, period start) that are
    missing, created at nothing drawn, in one INSERT over arrays (a pass over a thousand
    periods finds them all there but the first time: one bulk_create bound 6,000
    parameters one by one)."""
    if not periods:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {UsageDrawDown._meta.db_table} (customer_id, period_start, drawn, "  # noqa: S608
            "short, allowance_left, settled, updated_at) "
            "SELECT customer_id, period_start, 0, 0, 0, 0, %s "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS p(customer_id, period_start) "
            "ORDER BY customer_id, period_start "
            "ON CONFLICT (customer_id, period_start) DO NOTHING",
            [
                timezone.now(),
                pg_array(c for c, _ in periods),
                pg_array(start for _, start in periods),
            ],
        )


def draw_down_records_save(records: list[UsageDrawDown], now: datetime) -> None:
    """Save what the draw-down pass moved on each period's record (`drawn`, `short`,
    `allowance_left`), with `updated_at` at `now`: one UPDATE over arrays on PostgreSQL
    (the rows are locked already, by the pass)."""
    if not records:
        return
    for record in records:
        record.updated_at = now
    if connection.vendor != "postgresql":
        UsageDrawDown.objects.bulk_update(
            records, ["drawn", "short", "allowance_left", "updated_at"]
        )
        return
    ordered = sorted(records, key=lambda record: record.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {UsageDrawDown._meta.db_table} AS r SET drawn = d.drawn, "  # noqa: S608
            "short = d.short, allowance_left = d.allowance_left, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[]) "
            "AS d(id, drawn, short, allowance_left) WHERE r.id = d.id",
            [
                now,
                pg_array(record.pk for record in ordered),
                pg_array(record.drawn for record in ordered),
                pg_array(record.short for record in ordered),
                pg_array(record.allowance_left for record in ordered),
            ],
        )


_TAKE_SQL = """
WITH picked AS (
    SELECT customer_id, period_start FROM {table}
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), taken AS (
    SELECT due.id FROM {table} AS due
    JOIN (SELECT DISTINCT customer_id, period_start FROM picked) AS period
        ON due.customer_id = period.customer_id AND due.period_start = period.period_start
    FOR UPDATE OF due SKIP LOCKED
)
DELETE FROM {table} WHERE id IN (SELECT id FROM taken) RETURNING customer_id, period_start
"""


def draw_downs_take(chunk: int) -> list[tuple[int, datetime]]:
    """Take up to `chunk` periods off the draw-down queue, oldest first, with every row
    queued for them, in this transaction; return them in (customer, start) order.

    On PostgreSQL, rows another pass has taken are skipped, never waited for, and rows of
    uncommitted batches are not seen; a row committed after this statement is left for
    the next pass (which draws the period again: the usage it brought, or nothing more).
    """
    table = DrawDownDue._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_SQL.format(table=table), [chunk])
            return sorted(set(cursor.fetchall()))
    picked = set(
        DrawDownDue.objects.order_by("id").values_list("customer_id", "period_start")[:chunk]
    )
    queued = DrawDownDue.objects.filter(customer_id__in={customer for customer, _ in picked})
    rows = queued.values_list("pk", "customer_id", "period_start")
    DrawDownDue.objects.filter(
        pk__in=[pk for pk, customer, start in rows if (customer, start) in picked]
    ).delete()
    return sorted(picked)


def ratings_take_previous(event_pks: list[int]) -> dict[int, PreviousRating]:
    """Delete the events' earlier ratings (re-rating) and return them by event pk as
    (rollup id, amount, quantity), to take out of their rollups."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {RatedEvent._meta.db_table} "  # noqa: S608
                "WHERE event_id = ANY(%s::bigint[]) "
                "RETURNING event_id, rollup_id, amount, quantity",
                [pg_array(event_pks)],
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


def ratings_insert(ratings: list[Rating], rollup_ids: dict[str, int], now: datetime) -> None:
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
                pg_array(rating.event_pk for rating in ratings),
                pg_array(rollup_ids[rating.key] for rating in ratings),
                pg_array(rating.amount for rating in ratings),
                pg_array(rating.quantity for rating in ratings),
                pg_array(rating.reason for rating in ratings),
            ],
        )


def rollup_ids_read(keys: list[str]) -> dict[str, int]:
    """The ids of the rollups with these keys that exist, by key (one array parameter on
    PostgreSQL: a thousand keys of 64 characters bound one by one cost more than the
    read)."""
    if connection.vendor != "postgresql":
        return dict(UsageRollup.objects.filter(key__in=keys).values_list("key", "pk"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT key, id FROM {UsageRollup._meta.db_table} "  # noqa: S608
            "WHERE key = ANY(%s::text[])",
            [pg_array(keys)],
        )
        return dict(cursor.fetchall())


def rollups_move(deltas: dict[int, RollupDelta], now: datetime) -> None:
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
            assert delta.last is not None  # set together, by the first event added
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


def _rollups_move_postgresql(deltas: dict[int, RollupDelta], now: datetime) -> None:
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
            f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",  # noqa: S608
            [pg_array(pks)],
        )
        cursor.execute(
            sql,
            [
                now,
                pg_array(pks),
                pg_array(delta.events for delta in ordered),
                pg_array(delta.amount for delta in ordered),
                pg_array(delta.quantity for delta in ordered),
                *(pg_array(delta.tokens[name] for delta in ordered) for name in TOKEN_COLUMNS),
                pg_array(delta.first for delta in ordered),
                pg_array(delta.last for delta in ordered),
            ],
        )


_DAYS_SQL = """
INSERT INTO {table} AS u (customer_id, day, model, feature, event_count, amount)
SELECT customer_id, day, model, feature, events, amount
FROM unnest(%s::bigint[], %s::date[], %s::text[], %s::text[], %s::bigint[], %s::numeric[])
    WITH ORDINALITY AS d(customer_id, day, model, feature, events, amount, n)
ORDER BY n
ON CONFLICT (customer_id, day, model, feature) DO UPDATE SET
    event_count = u.event_count + excluded.event_count, amount = u.amount + excluded.amount
"""


def days_move(deltas: Mapping[DayKey, DayDelta]) -> None:
    """Add each delta to its day's row, creating it where missing, in key order (two raters
    take the rows' locks in the same order: no deadlock). A delta of nothing (an event
    re-rated at the same amount) is skipped.

    PostgreSQL adds in SQL (exact `numeric`) in one upsert over arrays; SQLite keeps the
    amount as text, so there the sum is done here, under its only write lock."""
    moved = sorted((key, delta) for key, delta in deltas.items() if delta.events or delta.amount)
    if not moved:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _DAYS_SQL.format(table=UsageDay._meta.db_table),
                [
                    *(pg_array(key[column] for key, _ in moved) for column in range(4)),
                    pg_array(delta.events for _, delta in moved),
                    pg_array(delta.amount for _, delta in moved),
                ],
            )
        return
    for (customer_id, day, model, feature), delta in moved:
        row, _ = UsageDay.objects.get_or_create(
            customer_id=customer_id, day=day, model=model, feature=feature
        )
        row.event_count += delta.events
        row.amount += delta.amount
        row.save(update_fields=["event_count", "amount"])
