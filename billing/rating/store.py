"""The rater's statements: the one place that speaks PostgreSQL or SQLite to the rating
tables, each statement written for both.

On PostgreSQL the queue is taken with `FOR UPDATE SKIP LOCKED` (any number of raters
share it without waiting on each other), a batch's ratings go in as one INSERT over
arrays, and rollups move in one UPDATE over arrays, their rows locked in id order so two
raters never deadlock. SQLite has one writer at a time and keeps exact decimals as text,
so there the same work is plain ORM and sums done in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeAlias

import orjson
from django.db import connection

from metering.models import UnratedEvent, UsageEvent

from ..models import (
    TOKEN_COLUMNS,
    DrawDownDue,
    RatedEvent,
    UsageDay,
    UsageDrawDown,
    UsageRollup,
)
from ..periods import instants_read_fast

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
        for name in TOKEN_COLUMNS:
            self.tokens[name] += sign * _token_count(metrics.get(name, 0))
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


def _token_count(value: int | str) -> int:
    """A token metric as the whole number a rollup sums. Ingestion takes a decimal string
    for any metric, so a token count can arrive as "12.5": it counts 0 here, and its event
    fails to rate and says why (`rater._tokens_check`), rather than stopping the queue."""
    if type(value) is int:  # nearly always: skip the Decimal
        return value
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else 0


def pg_array(values: Iterable[object]) -> str:
    """An array parameter as PostgreSQL's array text, cast in the statement (`%s::bigint[]`).

    Django binds parameters on the client, which quotes an array's elements one by one in
    Python: about 3 ms per thousand, for each array of a statement, where one string costs
    next to nothing. Numbers, instants and dates go as they print (a Decimal exactly);
    text is quoted; None is NULL."""
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, date):  # datetimes too, in ISO 8601 with their offset
        return value.isoformat()
    return str(value)


#: How deep a rater looks into the queue for a batch's customers: this many batches' worth
#: of the oldest queued events. Deeper groups a backlog over many customers into fewer of
#: them a batch, at the cost of reading more of the queue's index each batch.
QUEUE_DEPTH = 20
#: Events per customer in a batch's first look: with fewer on average (and more than one
#: customer) the queue interleaves customers and the batch looks deeper; with as many, a
#: batch of a few customers' events is grouped as it is.
_GROUPED_ENOUGH = 100
#: Times a batch chooses again after another rater took some of what it chose.
_ROUNDS = 4


def queue_take(batch_size: int) -> list[int]:
    """Take a batch off the queue, in this transaction (if it rolls back, they are back),
    grouped by customer: the customers of the oldest queued events, oldest first, each
    with its events among the oldest `QUEUE_DEPTH` batches' worth (`batch_choose`).

    A batch over a few customers writes a few rollups, per-day rows and draw-down rows,
    and reads a few customers' terms, where the queue's own order (ingestion interleaves
    customers) makes a batch of a thousand events touch a thousand customers. The oldest
    event is always in the batch unless another rater holds it.

    On PostgreSQL, rows another rater has taken are skipped, never waited for: a batch
    that chose rows another holds chooses again without their customers, and fills what
    is still missing with the oldest rows nobody holds, so a batch is short only when no
    row is left to take, as the rater's loop expects.
    """
    first = _queue_read(batch_size)
    customers = len({customer for _, customer in first})
    deep = len(first) == batch_size and customers > max(1, batch_size // _GROUPED_ENOUGH)
    depth = batch_size * QUEUE_DEPTH if deep else batch_size
    if connection.vendor != "postgresql":  # one writer: nobody else holds a row
        chosen = batch_choose(_queue_read(depth) if deep else first, batch_size)
        if chosen:
            marks = ", ".join(["%s"] * len(chosen))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {UnratedEvent._meta.db_table} "  # noqa: S608
                    f"WHERE event_id IN ({marks})",
                    chosen,
                )
        return chosen
    taken: list[int] = []
    held: set[int] = set()  # customers whose chosen rows another rater holds
    for _ in range(_ROUNDS):
        got, missed = _queue_take_grouped(batch_size - len(taken), depth, held)
        taken += got
        if len(taken) >= batch_size or not missed:
            break
        held |= missed
    if len(taken) < batch_size:
        taken += _queue_take_oldest(batch_size - len(taken))
    return taken


def batch_choose(queued: list[tuple[int, int]], size: int) -> list[int]:
    """Up to `size` of the queued (event pk, customer pk), given in queue order: each
    customer's in turn, by their oldest event, oldest first, the last customer's cut
    short. The first event is always chosen. (`_TAKE_GROUPED_SQL` is the same rule.)"""
    by_customer: dict[int, list[int]] = {}
    for pk, customer in queued:
        by_customer.setdefault(customer, []).append(pk)
    chosen: list[int] = []
    for pks in by_customer.values():  # in order of each customer's first event
        chosen += pks[: size - len(chosen)]
        if len(chosen) >= size:
            break
    return chosen


def _queue_read(limit: int) -> list[tuple[int, int]]:
    """The oldest `limit` queue rows, (event pk, customer pk), taking no lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, customer_id FROM {UnratedEvent._meta.db_table} "  # noqa: S608
            "ORDER BY event_id LIMIT %s",
            [limit],
        )
        return [(pk, customer) for pk, customer in cursor.fetchall()]


#: `batch_choose` in SQL, over the oldest `depth` rows but those of customers to `skip`,
#: then the chosen rows no other rater holds deleted: each chosen row's customer, with
#: its event pk if taken (NULL: another rater holds it). Chosen in the database, as
#: reading twenty thousand rows into Python costs ten times scanning them there.
_TAKE_GROUPED_SQL = """
WITH oldest AS MATERIALIZED (
    SELECT event_id, customer_id FROM {table}
    WHERE customer_id <> ALL(%(skip)s::bigint[])
    ORDER BY event_id LIMIT %(depth)s
), customers AS (
    SELECT customer_id, min(event_id) AS first,
           sum(count(*)) OVER (ORDER BY min(event_id)) - count(*) AS before
    FROM oldest GROUP BY customer_id
), chosen AS MATERIALIZED (
    SELECT o.event_id, o.customer_id FROM oldest AS o JOIN customers AS c USING (customer_id)
    WHERE c.before < %(size)s
    ORDER BY c.first, o.event_id LIMIT %(size)s
), taken AS (
    DELETE FROM {table} WHERE event_id IN (
        SELECT event_id FROM {table} WHERE event_id IN (SELECT event_id FROM chosen)
        FOR UPDATE SKIP LOCKED
    ) RETURNING event_id
)
SELECT c.customer_id, t.event_id FROM chosen AS c LEFT JOIN taken AS t USING (event_id)
"""


def _queue_take_grouped(size: int, depth: int, skip: set[int]) -> tuple[list[int], set[int]]:
    """PostgreSQL: take up to `size` as `batch_choose` chooses from the oldest `depth`
    rows, leaving out the customers in `skip`. What was taken, and the customers of the
    chosen rows another rater holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            _TAKE_GROUPED_SQL.format(table=UnratedEvent._meta.db_table),
            {"skip": pg_array(sorted(skip)), "depth": depth, "size": size},
        )
        rows = cursor.fetchall()
    return [pk for _, pk in rows if pk is not None], {c for c, pk in rows if pk is None}


def _queue_take_oldest(limit: int) -> list[int]:
    """PostgreSQL: take the oldest `limit` rows no other rater holds."""
    table = UnratedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM {table} "  # noqa: S608
            "ORDER BY event_id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING event_id",
            [limit],
        )
        return [row[0] for row in cursor.fetchall()]


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
