"""Writes to the usage event log.

`events_ingest` takes a batch as the API received it and judges it item by item. Accepted
events go in with one statement: an INSERT ... ON CONFLICT DO NOTHING into the key table
(`UsageEventKey`, unique on (customer, event_id) across every month's partition of the
log) decides between a new event and a resend inside the statement itself, so two copies
racing in from different processes can never both be stored, and only the events whose
key was new are inserted in the log. The batch is queued for its seal by the same
statement (`UnsealedBatch`); the sealer (`metering.sealing`) chains it after commit, so
no request waits for another's seal. The months of a batch have their partitions made
before the transaction starts (`metering.partitions`).

Locks come in one order: the new events' keys in (customer, event_id) order (the
insert's order; their ids still follow the batch's), so two batches carrying the same
events in another order wait for each other instead of deadlocking. A deadlock or
serialization failure that still happens rolls the batch back and is tried again, a few
times, after a short random pause.
"""

import contextlib
import functools
import logging
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import orjson
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.tasks import rating_nudge, sealing_nudge
from contracts.selectors import customer_ids_by_external_id

from .canonical import event_content_hash
from .intake import EventDraft, IntakeRules, ItemError, event_parse
from .models import UnratedEvent, UnsealedBatch, UsageEvent, UsageEventKey
from .partitions import partitions_ensure_span
from .tokenizer_rules import counter_resolver

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
# PostgreSQL's SQLSTATEs for a transaction that lost a race and may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
STORE_ATTEMPTS = 4
STORE_BACKOFF_SECONDS = 0.02  # the first pause's ceiling; it doubles with each attempt
logger = logging.getLogger(__name__)

Row: TypeAlias = dict[str, Any]  # an event's columns, by name, as the insert binds them
Inserted: TypeAlias = tuple[int, int, str]  # an inserted event's (id, customer_id, event_id)


@dataclass
class ItemResult:
    index: int
    event_id: str | None
    status: str = ACCEPTED
    errors: list[ItemError] = field(default_factory=list)
    tokenizer: str = ""  # an event sent as text: the tokenizer that counted it
    estimated: bool = False

    def reject(self, error: ItemError) -> None:
        self.status = REJECTED
        self.errors.append(error)

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "index": self.index,
            "event_id": self.event_id,
            "status": self.status,
        }
        if self.errors:
            answer["errors"] = [error.as_dict() for error in self.errors]
        elif self.tokenizer:
            answer |= {"tokenizer": self.tokenizer, "estimated": self.estimated}
        return answer


@dataclass
class IngestResult:
    items: list[ItemResult]

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.count(ACCEPTED),
            "duplicates": self.count(DUPLICATE),
            "rejected": self.count(REJECTED),
            "items": [item.as_dict() for item in self.items],
        }


@dataclass
class _Candidate:
    result: ItemResult
    draft: EventDraft
    customer_pk: int
    content_hash: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.customer_pk, self.draft.event_id)


def intake_rules() -> IntakeRules:
    return IntakeRules(
        now=timezone.now(),
        lateness=timedelta(days=settings.TOKENTILL_LATENESS_WINDOW_DAYS),
        future_tolerance=timedelta(seconds=settings.TOKENTILL_FUTURE_TOLERANCE_SECONDS),
        counter_for=counter_resolver(),
    )


def events_ingest(*, items: list[Any], out_of_range_possible: bool = True) -> IngestResult:
    """Validate, deduplicate, store and seal a batch of events; nothing refused is stored.
    `out_of_range_possible`: whether an item may hold a number too large to read
    (`intake.body_load` says)."""
    rules = intake_rules()
    results, drafts = [], []
    for index, item in enumerate(items):
        event_id = item.get("event_id") if isinstance(item, dict) else None
        result = ItemResult(index=index, event_id=event_id if isinstance(event_id, str) else None)
        results.append(result)
        parsed = event_parse(item, rules=rules, out_of_range_possible=out_of_range_possible)
        if isinstance(parsed, list):
            result.status = REJECTED
            result.errors = parsed
        else:
            result.tokenizer, result.estimated = parsed.tokenizer, parsed.estimated
            drafts.append((result, parsed))

    candidates, repeats = _candidates(drafts)
    if candidates:
        partitions_ensure_span(timestamps=[c.draft.timestamp for c in candidates])
        _store_retrying(candidates, received_at=rules.now)
    for repeat, first in repeats:
        _judge_repeat(repeat.result, repeat.content_hash, first.content_hash)
        if repeat.result.status == DUPLICATE and first.result.status == REJECTED:
            repeat.result.status = REJECTED
            repeat.result.errors = list(first.result.errors)
    return IngestResult(items=results)


def _candidates(
    drafts: list[tuple[ItemResult, EventDraft]],
) -> tuple[list[_Candidate], list[tuple[_Candidate, _Candidate]]]:
    """Resolve customers; the first copy of each (customer, event_id) goes on to the insert.

    Returns the first copies and the (repeat, first copy) pairs, judged after the insert.
    """
    customer_pks = customer_ids_by_external_id(external_ids=[d.customer_id for _, d in drafts])
    first_copies: dict[tuple[int, str], _Candidate] = {}
    repeats: list[tuple[_Candidate, _Candidate]] = []
    for result, draft in drafts:
        customer_pk = customer_pks.get(draft.customer_id)
        if customer_pk is None:
            result.reject(
                ItemError("customer_id", f"unknown customer '{draft.customer_id}'", "not_found")
            )
            continue
        candidate = _Candidate(result, draft, customer_pk, _content_hash(customer_pk, draft))
        if candidate.key in first_copies:
            repeats.append((candidate, first_copies[candidate.key]))
        else:
            first_copies[candidate.key] = candidate
    return list(first_copies.values()), repeats


def _judge_repeat(result: ItemResult, content_hash: str, stored_hash: str) -> None:
    if content_hash == stored_hash:
        result.status = DUPLICATE
    else:
        result.reject(
            ItemError(
                "event_id",
                f"event_id '{result.event_id}' was already used for this customer "
                "with different content",
                "conflict",
            )
        )


def _content_hash(customer_pk: int, draft: EventDraft) -> str:
    return event_content_hash(
        customer_pk=customer_pk,
        event_id=draft.event_id,
        timestamp=draft.timestamp,
        model=draft.model,
        feature=draft.feature,
        metrics=draft.metrics,
        properties=draft.properties,
        counting=draft.counting,
        provider=draft.provider,
        tokenizer=draft.tokenizer,
        estimated=draft.estimated,
    )


def _store_retrying(candidates: list[_Candidate], *, received_at: datetime) -> None:
    """Store the batch; a deadlock or serialization failure is rolled back and tried again.

    A client's resend must never be answered 5xx for losing a race with its own first
    attempt. Inside a caller's transaction nothing can be tried again: the error is raised.
    """
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            _store(candidates, received_at=received_at)
            return
        except OperationalError as error:
            if (
                _sqlstate(error) not in RETRYABLE_SQLSTATES
                or attempt == STORE_ATTEMPTS
                or connection.in_atomic_block
            ):
                raise
            logger.warning("ingest: %s on attempt %d; trying again", _sqlstate(error), attempt)
        for candidate in candidates:  # judged again from what the next attempt finds
            candidate.result.status, candidate.result.errors = ACCEPTED, []
        time.sleep(random.uniform(0, STORE_BACKOFF_SECONDS * 2 ** (attempt - 1)))


def _sqlstate(error: OperationalError) -> str | None:
    """The SQLSTATE of the driver's error under Django's (psycopg 3 names it `sqlstate`)."""
    state: str | None = getattr(error.__cause__, "sqlstate", None)
    return state


def _store(candidates: list[_Candidate], *, received_at: datetime) -> None:
    """Insert and queue the batch for its seal, then settle what was stored before; the
    unique keys are locked in key order by the insert (see the module's docstring).

    On PostgreSQL the insert is one statement, and so its own transaction: no BEGIN and
    no COMMIT to wait for, two round trips that cost a single event a fifth of its time.
    What the constraint turned away was committed before the statement ended (ON CONFLICT
    waits for a racing insert's transaction), so it is read after. SQLite's insert takes
    several statements and keeps the transaction."""
    seal_id = uuid.uuid4()
    one_statement = connection.vendor == "postgresql"
    with contextlib.nullcontext() if one_statement else transaction.atomic():
        inserted = _insert_events(candidates, seal_id=seal_id, received_at=received_at)
        if inserted:
            transaction.on_commit(sealing_nudge)
            transaction.on_commit(rating_nudge)
    _settle_not_inserted([c for c in candidates if c.key not in inserted])


def _settle_not_inserted(candidates: list[_Candidate]) -> None:
    """Events the constraint turned away were stored before: a duplicate or a conflict."""
    if not candidates:
        return
    event_ids_by_customer = defaultdict(list)
    for candidate in candidates:
        event_ids_by_customer[candidate.customer_pk].append(candidate.draft.event_id)
    condition = Q()
    for customer_pk, event_ids in event_ids_by_customer.items():
        condition |= Q(customer_id=customer_pk, event_id__in=event_ids)
    stored = {
        (customer_pk, event_id): content_hash
        for customer_pk, event_id, content_hash in UsageEventKey.objects.filter(
            condition
        ).values_list("customer_id", "event_id", "content_hash")
    }
    for candidate in candidates:
        _judge_repeat(candidate.result, candidate.content_hash, stored[candidate.key])


# --- the bulk insert --------------------------------------------------------------------

# The columns each event fills, with their PostgreSQL types; received_at and seal_id are
# the same for the whole batch and are bound once.
_COLUMN_TYPES = {
    "customer_id": "bigint",
    "event_id": "text",
    "timestamp": "timestamptz",
    "model": "text",
    "feature": "text",
    "metrics": "jsonb",
    "properties": "jsonb",
    "counting": "text",
    "provider": "text",
    "tokenizer": "text",
    "estimated": "boolean",
    "content_hash": "text",
}


def _row(candidate: _Candidate) -> Row:
    draft = candidate.draft
    return {
        "customer_id": candidate.customer_pk,
        "event_id": draft.event_id,
        "timestamp": draft.timestamp,
        "model": draft.model,
        "feature": draft.feature,
        "metrics": draft.metrics,
        "properties": draft.properties,
        "counting": draft.counting,
        "provider": draft.provider,
        "tokenizer": draft.tokenizer,
        "estimated": draft.estimated,
        "content_hash": candidate.content_hash,
    }


def _insert_events(
    candidates: list[_Candidate], *, seal_id: uuid.UUID, received_at: datetime
) -> dict[tuple[int, str], int]:
    """Insert what is new, with its keys, its rating queue rows and the batch's row on the
    sealer's queue (the new events' content hashes in id order), in one statement on
    PostgreSQL; return {(customer_pk, event_id): pk} of those.

    Ids follow the batch's order, so events of one instant list as they were sent; on
    PostgreSQL the rows go in (customer, event_id) order, so concurrent batches lock the
    unique keys in one order (SQLite has one writer at a time and needs none)."""
    rows = [_row(candidate) for candidate in candidates]
    insert = _insert_postgresql if connection.vendor == "postgresql" else _insert_sqlite
    returned = insert(rows, seal_id=seal_id, received_at=received_at)
    return {(customer_pk, event_id): pk for pk, customer_pk, event_id in returned}


_KEY_COLUMNS = ("customer_id", "event_id", "event_pk", "seal_id", "timestamp", "content_hash")


@functools.lru_cache(maxsize=32)
def _insert_sql(vendor: str, rows: int = 0) -> str:
    """The insert; on PostgreSQL one statement takes the keys, inserts the events whose key
    was new and queues them for rating and the batch for its seal."""
    quote = connection.ops.quote_name
    names = [*_COLUMN_TYPES, "received_at", "seal_id"]
    table, keys = UsageEvent._meta.db_table, UsageEventKey._meta.db_table
    # The ids' sequence by name (migration 0010 keeps it): looked up with
    # pg_get_serial_sequence, it cost 2 µs an event, more than drawing the id.
    sequence = f"{table}_id_seq"
    if vendor == "postgresql":
        # Ids are drawn in the batch's order (output expressions are evaluated after
        # ORDER BY); the keys go in (customer, event_id) order, each locking its key until
        # commit, and only the events whose key was new follow, in key order too.
        record = ", ".join(f"{quote(name)} {kind}" for name, kind in _COLUMN_TYPES.items())
        select = ", ".join(map(quote, _COLUMN_TYPES))
        source = (
            f"ROWS FROM (json_to_recordset(%s::json) AS ({record})) "
            f"WITH ORDINALITY AS r({select}, position)"
        )
        numbered = (
            f"SELECT nextval('{sequence}'::regclass) AS id, {select} "  # noqa: S608
            f"FROM {source} ORDER BY position"
        )
        from_numbered = ", ".join(f"n.{quote(name)}" for name in _COLUMN_TYPES)
        return (
            f"WITH numbered AS MATERIALIZED ({numbered}), "  # noqa: S608
            f"keyed AS (INSERT INTO {keys} ({', '.join(map(quote, _KEY_COLUMNS))}) "
            'SELECT customer_id, event_id, id, %s, "timestamp", content_hash FROM numbered '
            "ORDER BY customer_id, event_id ON CONFLICT (customer_id, event_id) DO NOTHING "
            "RETURNING event_pk), "
            f"inserted AS (INSERT INTO {table} (id, {', '.join(map(quote, names))}) "
            f"SELECT n.id, {from_numbered}, %s, %s FROM numbered n "
            "JOIN keyed k ON k.event_pk = n.id ORDER BY n.customer_id, n.event_id "
            "RETURNING id, customer_id, event_id), "
            f"queued AS (INSERT INTO {UnratedEvent._meta.db_table} (event_id, customer_id) "
            "SELECT id, customer_id FROM inserted), "
            f"unsealed AS (INSERT INTO {UnsealedBatch._meta.db_table} "
            "(seal_id, received_at, content_hashes) "
            "SELECT %s, %s, string_agg(n.content_hash, '' ORDER BY n.id) "
            "FROM numbered n JOIN inserted i ON i.id = n.id HAVING count(*) > 0) "
            "SELECT id, customer_id, event_id FROM inserted"
        )
    if vendor == "postgresql-one":
        # One event: the same statement with its values bound in place, which PostgreSQL
        # plans and runs in about two thirds of the time of reading a JSON document.
        values = ", ".join(f"%({name})s::{kind}" for name, kind in _COLUMN_TYPES.items())
        return (
            f"WITH keyed AS (INSERT INTO {keys} ({', '.join(map(quote, _KEY_COLUMNS))}) "  # noqa: S608
            f"VALUES (%(customer_id)s, %(event_id)s, "
            f"nextval('{sequence}'::regclass), %(seal_id)s, %(timestamp)s, "
            "%(content_hash)s) ON CONFLICT (customer_id, event_id) DO NOTHING "
            "RETURNING event_pk), "
            f"inserted AS (INSERT INTO {table} (id, {', '.join(map(quote, names))}) "
            f"SELECT event_pk, {values}, %(received_at)s, %(seal_id)s FROM keyed "
            "RETURNING id, customer_id, event_id), "
            f"queued AS (INSERT INTO {UnratedEvent._meta.db_table} (event_id, customer_id) "
            "SELECT id, customer_id FROM inserted), "
            f"unsealed AS (INSERT INTO {UnsealedBatch._meta.db_table} "
            "(seal_id, received_at, content_hashes) "
            "SELECT %(seal_id)s, %(received_at)s, %(content_hash)s FROM inserted) "
            "SELECT id, customer_id, event_id FROM inserted"
        )
    if vendor == "sqlite-keys":
        values = ", ".join(["(" + ", ".join(["%s"] * len(_KEY_COLUMNS)) + ")"] * rows)
        return f"INSERT INTO {keys} ({', '.join(map(quote, _KEY_COLUMNS))}) VALUES {values}"  # noqa: S608
    values = ", ".join(["(" + ", ".join(["%s"] * len(names)) + ")"] * rows)
    return (
        f"INSERT INTO {table} ({', '.join(map(quote, names))}) VALUES {values} "  # noqa: S608
        "RETURNING id, customer_id, event_id"
    )


def _insert_postgresql(
    rows: list[Row], *, seal_id: uuid.UUID, received_at: datetime
) -> list[Inserted]:
    """The batch travels as one JSON document that orjson writes and PostgreSQL reads,
    both in C: no per-value adaptation in Python. A single event is bound value by value.

    The values are bound by the server, and the statement prepared where the database
    allows (`common.postgresql`'s `server_bound_cursor`); errors reach the caller as
    Django's (`_store_retrying` tells a deadlock by them)."""
    with connection.server_bound_cursor() as cursor:  # type: ignore[attr-defined]
        if len(rows) == 1:
            row = rows[0]
            cursor.execute(
                _insert_sql("postgresql-one"),
                {
                    **row,
                    "metrics": orjson.dumps(row["metrics"]).decode(),
                    "properties": orjson.dumps(row["properties"]).decode(),
                    "seal_id": seal_id,
                    "received_at": received_at,
                },
            )
        else:
            cursor.execute(
                _insert_sql("postgresql"),
                [orjson.dumps(rows).decode(), seal_id, received_at, seal_id, seal_id, received_at],
            )
        inserted: list[Inserted] = cursor.fetchall()
        return inserted


def _insert_sqlite(rows: list[Row], *, seal_id: uuid.UUID, received_at: datetime) -> list[Inserted]:
    """SQLite's IMMEDIATE transaction holds the only write lock from its start, so the
    keys already stored are read first and only the new events are inserted."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, event_id FROM {UsageEventKey._meta.db_table} "  # noqa: S608
            "WHERE (customer_id, event_id) IN (VALUES " + ", ".join(["(%s, %s)"] * len(rows)) + ")",
            [value for row in rows for value in (row["customer_id"], row["event_id"])],
        )
        known = set(cursor.fetchall())
    rows = [row for row in rows if (row["customer_id"], row["event_id"]) not in known]
    if not rows:
        return []
    adapt_time = connection.ops.adapt_datetimefield_value
    tail = (adapt_time(received_at), seal_id.hex)
    params = []
    for row in rows:
        for name, value in row.items():
            if name == "timestamp":
                value = adapt_time(value)
            elif name in ("metrics", "properties"):
                value = orjson.dumps(value).decode()
            params.append(value)
        params.extend(tail)
    by_key = {(row["customer_id"], row["event_id"]): row for row in rows}
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql("sqlite", len(rows)), params)
        returned: list[Inserted] = cursor.fetchall()
        key_params: list[Any] = []
        for pk, customer_pk, event_id in returned:
            row = by_key[(customer_pk, event_id)]
            key_params += [customer_pk, event_id, pk, seal_id.hex]
            key_params += [adapt_time(row["timestamp"]), row["content_hash"]]
        cursor.execute(_insert_sql("sqlite-keys", len(returned)), key_params)
        cursor.execute(
            f"INSERT INTO {UnratedEvent._meta.db_table} (event_id, customer_id) "  # noqa: S608
            "VALUES " + ", ".join(["(%s, %s)"] * len(returned)),
            [value for pk, customer_pk, _ in returned for value in (pk, customer_pk)],
        )
    in_order = sorted(returned)
    UnsealedBatch.objects.create(
        seal_id=seal_id,
        received_at=received_at,
        content_hashes="".join(by_key[key[1:]]["content_hash"] for key in in_order),
    )
    return returned


# --- the rating queue -------------------------------------------------------------------


def events_queue_for_rating(
    *, customer_id: int, start: datetime, end: datetime | None = None
) -> int:
    """Put a customer's events with a timestamp in [start, end) back in the rating queue
    (terms changed, or a period is re-rated): one INSERT ... SELECT, nothing in memory.

    An event may be in a batch that a rater took before this change committed and is
    rating with what it read then: the insert waits for that rater's transaction, which
    holds the event's queue row, and queues the event again once it commits, to be rated
    with what is in force now. DO UPDATE, not DO NOTHING: it waits for a row however a
    rater holds it (taken with DELETE, or only locked FOR UPDATE), where DO NOTHING passes
    over a row that is only locked and the change is lost (tests/billing/
    test_rating_races.py). In id order, so two of these for one customer do not deadlock."""
    adapt = connection.ops.adapt_datetimefield_value
    bounds, params = "timestamp >= %s", [customer_id, adapt(start)]
    if end is not None:
        bounds += " AND timestamp < %s"
        params.append(adapt(end))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {UnratedEvent._meta.db_table} (event_id, customer_id) "  # noqa: S608
            f"SELECT id, customer_id FROM {UsageEvent._meta.db_table} "
            f"WHERE customer_id = %s AND {bounds} "
            "ORDER BY id ON CONFLICT (event_id) DO UPDATE SET event_id = excluded.event_id "
            "WHERE 1 = 0",
            params,
        )
        queued: int = cursor.rowcount
        return queued
