"""A billing period's money, from its rollups: the one reading of a period that rating's
draw-down, the usage endpoint, authorizations, invoices and re-rating all share.

A period is cut where terms change (`TermsSegment`: a segment and the terms in force
there, None where no contract is), each rated rollup gets its money (a per-event price's
own amount; a tiered line's charge shared by quantity) and the period's charges follow
from the rules of `pricing.rating`. Rollups are a few rows per price, model and feature,
so this reads a few rows whatever the number of events.

While events wait to be rated again (a terms change, a re-rate), their earlier ratings
are still in the rollups, perhaps under terms that no longer cover their time.
`period_rollups` takes them out of the figures it reads, so every read counts each event
of a period once: in the figures as rated now, or as pending (docs/guide/usage.md, "Reads
while events wait"). For that it reads the waiting events' ratings, from the rating
queue: none or a few, but for the minute or so a large re-rate takes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeAlias

from django.db import connection, transaction
from django.db.models import Prefetch, Q, prefetch_related_objects
from django.db.models.base import ModelState

from contracts.models import Contract, ContractTerms, Customer, Price, TermsChange
from metering.models import UnratedEvent, UsageEvent
from pricing.cycles import period_holding
from pricing.rating import PeriodCharges, Segment, charge_shares, period_charges, tiered_charges

from .models import TOKEN_COLUMNS, RatedEvent, UsageRollup
from .terms import price_terms

_ZERO = Decimal(0)
TIERED = ("graduated", "volume", "package")
#: Where a tiered rollup's quantity is priced: (segment index, version number, price pk).
_Place: TypeAlias = tuple[int, int, int]


class TermsSegment(NamedTuple):
    """A stretch of a period under one set of terms (None: under no contract)."""

    segment: Segment
    terms: ContractTerms | None


class PeriodMoney(NamedTuple):
    """A period's segments, each rated rollup's money by rollup key, and its charges."""

    segments: list[TermsSegment]
    amounts: dict[str, Decimal]
    charges: PeriodCharges


def period_of(*, customer: Customer, at: datetime) -> tuple[datetime, datetime]:
    """The billing period holding `at`: a contract's, or outside them the calendar month
    (pricing.cycles.period_holding, the rule rating uses)."""
    return period_holding(Contract.objects.filter(customer=customer), at)


class PeriodRollups(list[UsageRollup]):
    """A period's rollups as its figures count them now (docs/guide/usage.md, "Reads while
    events wait"), and beside them what waits.

    Each rollup's figures are its stored ones less those of its events that wait to be
    rated again (unsaved figures: never saved); a rollup with no event left is left out.
    `segments` are the period's for [start, end), read with the rollups; `pending_events`
    counts the events timestamped in the period that wait (to be rated, or rated again);
    `rerating` says whether any event rated into the period waits to be rated again.
    """

    def __init__(
        self,
        rollups: Iterable[UsageRollup] = (),
        *,
        start: datetime,
        end: datetime | None,
        segments: list[TermsSegment],
        pending_events: int = 0,
        rerating: bool = False,
    ):
        super().__init__(rollups)
        self.start, self.end, self.segments = start, end, segments
        self.pending_events, self.rerating = pending_events, rerating


@dataclass
class _Taken:
    """What the waiting events rated into one rollup add up to: taken out of its figures."""

    events: int = 0
    amount: Decimal = _ZERO
    quantity: Decimal = _ZERO
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_COLUMNS, 0))


def period_rollups(
    *, customer_id: int, start: datetime, end: datetime | None = None
) -> PeriodRollups:
    """The period's rollups that hold events, as its figures count them now, with what
    `period_money` reads of them: each less its events that wait to be rated again.

    `end` is the period's end; by default, that of the period starting at `start`
    (`period_holding`), or as its rollups recorded it. The terms (the segments), then the
    terms changes not yet applied, then the rollups with the queue are read in that order,
    the last in one statement on PostgreSQL (in one transaction on SQLite), so a rater
    committing meanwhile is seen whole or not at all. A rated rollup whose terms cover
    none of the period after that (a change committed between the reads) is left out and
    its events count as pending: no read ever prices usage under terms that do not cover
    it.
    """
    contracts = None
    if end is None:
        contracts = list(Contract.objects.filter(customer_id=customer_id))
        holding = period_holding(contracts, start)
        end = holding[1] if holding[0] == start else None
    segments = _segments(customer_id, start, end) if end is not None else []
    since = _waiting_since(customer_id, contracts)
    read = _read_postgresql if connection.vendor == "postgresql" else _read_sqlite
    stored, taken, pending = read(customer_id, start, end, since)
    if end is None and stored:
        end = max(rollup.period_end for rollup in stored)
        segments = _segments(customer_id, start, end)
    return _rollups_count(stored, taken, pending, start=start, end=end, segments=segments)


def _rollups_count(
    stored: list[UsageRollup],
    taken: dict[int, _Taken],
    pending: int,
    *,
    start: datetime,
    end: datetime | None,
    segments: list[TermsSegment],
) -> PeriodRollups:
    """The period's rollups as its figures count them: each less what its waiting events
    add up to; a rated rollup whose terms cover none of the period is left out and its
    events count as pending."""
    terms_of = {terms.pk: terms for _, terms in segments if terms}
    rollups, rerating = [], bool(taken)
    for rollup in stored:
        if rollup.terms_id in terms_of:  # the segments' rows: not read again (cached as
            # `rollup.terms = ...` caches them, without setting the same terms_id again)
            _TERMS.set_cached_value(rollup, terms_of[rollup.terms_id])
        waiting = taken.get(rollup.pk)
        if waiting is not None:
            rollup.event_count -= waiting.events
            rollup.amount -= waiting.amount
            rollup.quantity -= waiting.quantity
            for name in TOKEN_COLUMNS:
                setattr(rollup, name, getattr(rollup, name) - waiting.tokens[name])
        if rollup.event_count <= 0:
            continue
        if rollup.status == UsageRollup.Status.RATED and rollup.terms_id not in terms_of:
            pending += rollup.event_count
            rerating = True
            continue
        rollups.append(rollup)
    return PeriodRollups(
        rollups,
        start=start,
        end=end,
        segments=segments,
        pending_events=pending,
        rerating=rerating,
    )


def periods_rollups(
    *, periods: Iterable[tuple[int, datetime]]
) -> dict[tuple[int, datetime], PeriodRollups]:
    """`period_rollups` of many (customer pk, period start), read together: the draw-down
    pass reads every period a rating pass touched, often one each of a thousand customers.

    On PostgreSQL, in as many statements as for one period: the customers' contracts,
    their terms, their terms changes not yet applied, then every period's rollups with
    the queue in one statement (one snapshot for all). SQLite reads them one by one."""
    wanted = sorted(set(periods))
    if connection.vendor != "postgresql":
        return {(c, start): period_rollups(customer_id=c, start=start) for c, start in wanted}
    if not wanted:
        return {}
    customer_ids = sorted({c for c, _ in wanted})
    contracts: defaultdict[int, list[Contract]] = defaultdict(list)
    for contract in Contract.objects.filter(customer_id__in=customer_ids):
        contracts[contract.customer_id].append(contract)
    terms_rows: defaultdict[int, list[ContractTerms]] = defaultdict(list)
    for terms in (
        ContractTerms.objects.filter(contract__customer_id__in=customer_ids)
        .select_related("contract")
        .order_by("effective_from")
    ):
        terms_rows[terms.contract.customer_id].append(terms)
    changes: defaultdict[int, list[datetime]] = defaultdict(list)
    for customer_id, at in TermsChange.objects.filter(
        customer_id__in=customer_ids, applied_at__isnull=True
    ).values_list("customer_id", "effective_from"):
        changes[customer_id].append(at)
    since = {
        customer_id: min(rerate_from(at, contracts[customer_id]) for at in instants)
        for customer_id, instants in changes.items()
    }
    ends: dict[tuple[int, datetime], datetime | None] = {}
    for customer_id, start in wanted:
        holding = period_holding(contracts[customer_id], start)
        ends[(customer_id, start)] = holding[1] if holding[0] == start else None
    reads = _read_many_postgresql(wanted, ends, since)
    found = {}
    for key in wanted:
        customer_id, start = key
        stored, taken, pending = reads[key]
        end = ends[key]
        if end is None and stored:
            end = max(rollup.period_end for rollup in stored)
        segments = _segments_of(terms_rows[customer_id], start, end) if end is not None else []
        found[key] = _rollups_count(stored, taken, pending, start=start, end=end, segments=segments)
    return found


def events_waiting(*, customer_id: int, through: str = "") -> Q:
    """A filter for the customer's events that wait to be rated or rated again: in the
    rating queue, or at or after the instant from which a terms change not yet applied
    re-rates. On UsageEvent, or through the relation named `through` (RatedEvent's
    "event"); combine it with a filter on the customer."""
    prefix = f"{through}__" if through else ""
    queued = UnratedEvent.objects.filter(customer_id=customer_id).values("event_id")
    waiting = Q(**{f"{prefix}pk__in": queued})
    since = rerating_since(customer_id=customer_id)
    if since is not None:
        waiting |= Q(**{f"{prefix}timestamp__gte": since})
    return waiting


def rerating_since(*, customer_id: int) -> datetime | None:
    """The instant from which terms changes not yet applied will queue the customer's
    events again (None: every change is applied)."""
    return _waiting_since(customer_id)


def _waiting_since(customer_id: int, contracts: list[Contract] | None = None) -> datetime | None:
    """The earliest instant from which a terms change not yet applied will queue the
    customer's events again (None: every change is applied). The rater applies a change
    first thing, from `rerate_from`'s instant."""
    changes = TermsChange.objects.filter(customer_id=customer_id, applied_at__isnull=True)
    instants = list(changes.values_list("effective_from", flat=True))
    if not instants:
        return None
    if contracts is None:
        contracts = list(Contract.objects.filter(customer_id=customer_id))
    return min(rerate_from(at, contracts) for at in instants)


def rerate_from(at: datetime, contracts: list[Contract]) -> datetime:
    """Where re-rating for a terms change at `at` starts: at its instant; or, when a
    contract starts there after time under none, at the start of the contract's first
    period, as the usage of that period from before the contract moves into it from a
    calendar month (`period_holding`)."""
    if any(c.starts_at < at and (c.ends_at is None or at <= c.ends_at) for c in contracts):
        return at
    return min(at, period_holding(contracts, at)[0])


#: A read of a period: its stored rollups (that hold events), what the waiting events add
#: up to in each (by rollup pk), and how many events of the period wait.
_Read: TypeAlias = tuple[list[UsageRollup], dict[int, _Taken], int]
#: A statement's parameter, as these reads pass them.
_Param: TypeAlias = int | str | datetime | None
_EVENTS, _QUEUE = UsageEvent._meta.db_table, UnratedEvent._meta.db_table
_RATED, _ROLLUPS = RatedEvent._meta.db_table, UsageRollup._meta.db_table


def _waiting_sql(customer_id: int, since: datetime | None) -> tuple[str, list[_Param]]:
    """The ids of the customer's waiting events (`events_waiting`) as a CTE, `waiting`,
    and its parameters: the queue's, and those a change not yet applied will queue."""
    sql = f"WITH waiting AS (SELECT event_id AS id FROM {_QUEUE} "  # noqa: S608
    sql += "WHERE customer_id = %s"
    params: list[_Param] = [customer_id]
    if since is not None:
        sql += f" UNION SELECT id FROM {_EVENTS} "  # noqa: S608
        sql += "WHERE customer_id = %s AND timestamp >= %s"
        params += [customer_id, _instant(since)]
    return sql + ")", params


def _instant(moment: datetime) -> str | None:
    """An instant as the database takes it in a statement's parameters."""
    return connection.ops.adapt_datetimefield_value(moment)


def _read_sqlite(
    customer_id: int, start: datetime, end: datetime | None, since: datetime | None
) -> _Read:
    """In one transaction, which on SQLite sees one state of the database. Money is text
    there, so what the waiting events add up to is summed here. CROSS JOIN keeps SQLite
    to the order written: from the waiting events (a few) to their ratings."""
    waiting, params = _waiting_sql(customer_id, since)
    with transaction.atomic(), connection.cursor() as cursor:
        stored = list(
            UsageRollup.objects.filter(
                customer_id=customer_id, period_start=start, event_count__gt=0
            ).select_related("price__version__rate_card")
        )
        cursor.execute(
            f"{waiting} SELECT r.rollup_id, r.amount, r.quantity, e.metrics "  # noqa: S608
            f"FROM waiting w CROSS JOIN {_RATED} r CROSS JOIN {_ROLLUPS} o CROSS JOIN {_EVENTS} e "
            "WHERE r.event_id = w.id AND o.id = r.rollup_id AND e.id = w.id "
            "AND o.customer_id = %s AND o.period_start = %s",
            [*params, customer_id, _instant(start)],
        )
        taken: dict[int, _Taken] = {}
        for rollup_id, amount, quantity, metrics in cursor.fetchall():
            sums = taken.setdefault(rollup_id, _Taken())
            sums.events += 1
            sums.amount += _ZERO if amount is None else Decimal(amount)
            sums.quantity += _ZERO if quantity is None else Decimal(quantity)
            counts = json.loads(metrics)
            for name in TOKEN_COLUMNS:
                sums.tokens[name] += token_count(counts.get(name, 0))
        pending = 0
        if end is not None:
            cursor.execute(
                f"{waiting} SELECT count(*) FROM waiting w CROSS JOIN {_EVENTS} e "  # noqa: S608
                "WHERE e.id = w.id AND e.timestamp >= %s AND e.timestamp < %s",
                [*params, _instant(start), _instant(end)],
            )
            pending = cursor.fetchone()[0]
    return stored, taken, pending


def token_count(value: object) -> int:
    """A token metric as a rollup sums it: a whole number as itself, anything else as 0.
    Ingestion takes a decimal string for any metric, so a token count can arrive as
    "12.5": it counts 0, and its event fails to rate and says why
    (`billing.rating.rater._tokens_check`), rather than stopping the queue."""
    if type(value) is int:
        return value
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return 0
    return int(number) if number.is_finite() and number == number.to_integral_value() else 0


def _token_sql(name: str) -> str:
    """`token_count` in SQL, for one token metric of `m`, the event's metrics as numbers
    (ingestion stores whole numbers as JSON numbers and others as decimal text)."""
    return f"CASE WHEN m.{name} = trunc(m.{name}) THEN m.{name} ELSE 0 END"


_ROLLUP_FIELDS = UsageRollup._meta.concrete_fields
_TERMS = UsageRollup._meta.get_field("terms")

#: From each waiting event (few, but during a re-rate) to its row and its rating by primary
#: key, never from the period's ratings (many) to the queue: OFFSET 0 keeps each LATERAL a
#: lookup per waiting event, whatever the planner thinks of the queue's size.
_READ_SQL = """
{waiting},
found AS MATERIALIZED (
    SELECT e.timestamp, e.metrics, r.rollup_id, r.amount, r.quantity
    FROM waiting w
    CROSS JOIN LATERAL (
        SELECT timestamp, metrics FROM {events} WHERE id = w.id OFFSET 0
    ) AS e
    LEFT JOIN LATERAL (
        SELECT rollup_id, amount, quantity FROM {rated} WHERE event_id = w.id OFFSET 0
    ) AS r ON TRUE
),
taken AS (
    SELECT e.rollup_id, count(*) AS events, coalesce(sum(e.amount), 0) AS amount,
           coalesce(sum(e.quantity), 0) AS quantity, {token_sums}
    FROM found e JOIN {rollups} o ON o.id = e.rollup_id
    CROSS JOIN LATERAL jsonb_to_record(e.metrics) AS m({token_types})
    WHERE o.customer_id = %s AND o.period_start = %s
    GROUP BY e.rollup_id
)
SELECT c.pending, {rollup_columns}, t.events, t.amount, t.quantity, {token_columns}
FROM (
    SELECT count(*) AS pending FROM found WHERE timestamp >= %s AND timestamp < %s
) AS c
LEFT JOIN ({rollups} u LEFT JOIN taken t ON t.rollup_id = u.id)
    ON u.customer_id = %s AND u.period_start = %s AND u.event_count > 0
ORDER BY u.id
"""


def _read_sql(template: str, **parts: str) -> str:
    """A read statement with the parts every one of them shares filled in."""
    return template.format(
        **parts,
        token_sums=", ".join(
            f"coalesce(sum({_token_sql(name)}), 0)::bigint AS {name}" for name in TOKEN_COLUMNS
        ),
        token_types=", ".join(f"{name} numeric" for name in TOKEN_COLUMNS),
        rated=_RATED,
        rollups=_ROLLUPS,
        events=_EVENTS,
        rollup_columns=", ".join(f"u.{field.column}" for field in _ROLLUP_FIELDS),
        token_columns=", ".join(f"t.{name}" for name in TOKEN_COLUMNS),
    )


def _read_postgresql(
    customer_id: int, start: datetime, end: datetime | None, since: datetime | None
) -> _Read:
    """One statement, so one snapshot: the period's rollups, each with what its waiting
    events add up to (summed in SQL, exact `numeric`), and how many events of the period
    wait; always one row at least (the count), with no rollup when the period has none."""
    waiting, params = _waiting_sql(customer_id, since)
    sql = _read_sql(_READ_SQL, waiting=waiting)
    # Without an end, no event is counted as the period's: an empty span.
    params += [customer_id, start, start, end or start, customer_id, start]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = len(_ROLLUP_FIELDS)
    names = [field.attname for field in _ROLLUP_FIELDS]
    stored, taken = [], {}
    for row in rows:
        values = row[1 : 1 + width]
        if values[0] is None:  # the period has no rollup
            continue
        rollup = UsageRollup.from_db(connection.alias, names, values)
        stored.append(rollup)
        events_taken, amount, quantity, *tokens = row[1 + width :]
        if events_taken:
            taken[rollup.pk] = _Taken(
                events_taken, amount, quantity, dict(zip(TOKEN_COLUMNS, tokens, strict=True))
            )
    prices = Price.objects.select_related("version__rate_card")
    prefetch_related_objects(stored, Prefetch("price", queryset=prices))
    return stored, taken, rows[0][0]


_READ_MANY_SQL = """
WITH p AS (
    SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
        AS p(customer_id, start, stop, since)
),
waiting AS (
    SELECT q.event_id AS id FROM {queue} q
    WHERE q.customer_id IN (SELECT customer_id FROM p)
    UNION
    SELECT e.id FROM {events} e JOIN p ON e.customer_id = p.customer_id
    WHERE p.since IS NOT NULL AND e.timestamp >= p.since
),
found AS MATERIALIZED (
    SELECT e.customer_id, e.timestamp, e.metrics, r.rollup_id, r.amount, r.quantity
    FROM waiting w
    CROSS JOIN LATERAL (
        SELECT customer_id, timestamp, metrics FROM {events} WHERE id = w.id OFFSET 0
    ) AS e
    LEFT JOIN LATERAL (
        SELECT rollup_id, amount, quantity FROM {rated} WHERE event_id = w.id OFFSET 0
    ) AS r ON TRUE
),
taken AS (
    SELECT e.rollup_id, count(*) AS events, coalesce(sum(e.amount), 0) AS amount,
           coalesce(sum(e.quantity), 0) AS quantity, {token_sums}
    FROM found e JOIN {rollups} o ON o.id = e.rollup_id
    JOIN p ON o.customer_id = p.customer_id AND o.period_start = p.start
    CROSS JOIN LATERAL jsonb_to_record(e.metrics) AS m({token_types})
    GROUP BY e.rollup_id
),
counted AS (
    SELECT p.customer_id, p.start, count(f.customer_id) AS pending
    FROM p LEFT JOIN found f ON f.customer_id = p.customer_id
        AND f.timestamp >= p.start AND f.timestamp < coalesce(p.stop, p.start)
    GROUP BY p.customer_id, p.start
)
SELECT c.customer_id, c.start, c.pending, {rollup_columns}, t.events, t.amount, t.quantity,
       {token_columns}
FROM counted c
LEFT JOIN ({rollups} u LEFT JOIN taken t ON t.rollup_id = u.id)
    ON u.customer_id = c.customer_id AND u.period_start = c.start AND u.event_count > 0
ORDER BY c.customer_id, c.start, u.id
"""


def _read_many_postgresql(
    periods: list[tuple[int, datetime]],
    ends: dict[tuple[int, datetime], datetime | None],
    since: dict[int, datetime],
) -> dict[tuple[int, datetime], _Read]:
    """`_read_postgresql` of many periods in one statement, so one snapshot for all."""
    sql = _read_sql(_READ_MANY_SQL, queue=_QUEUE)
    params: Any = [
        [customer_id for customer_id, _ in periods],
        [start for _, start in periods],
        [ends[key] for key in periods],
        [since.get(customer_id) for customer_id, _ in periods],
    ]
    with connection.cursor() as cursor:
        instants_read_fast(cursor)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = len(_ROLLUP_FIELDS)
    names = [field.attname for field in _ROLLUP_FIELDS]
    reads: dict[tuple[int, datetime], _Read] = {}
    by_instant = {
        (customer_id, start.timestamp()): (customer_id, start) for customer_id, start in periods
    }
    price_at, alias = names.index("price_id"), connection.alias
    prices = Price.objects.select_related("version__rate_card").in_bulk(
        {row[3 + price_at] for row in rows if row[3 + price_at] is not None}
    )
    for row in rows:
        key = by_instant[(row[0], row[1].timestamp())]
        stored, taken, _ = reads.setdefault(key, ([], {}, row[2]))
        values = row[3 : 3 + width]
        if values[0] is None:  # the period has no rollup
            continue
        rollup = rollup_loaded(names, values, price=prices.get(values[price_at]), db=alias)
        stored.append(rollup)
        events_taken, amount, quantity, *tokens = row[3 + width :]
        if events_taken:
            taken[rollup.pk] = _Taken(
                events_taken, amount, quantity, dict(zip(TOKEN_COLUMNS, tokens, strict=True))
            )
    return reads


def rollup_loaded(
    names: list[str], values: Iterable[Any], *, price: Price | None, db: str
) -> UsageRollup:
    """The rollup `UsageRollup.from_db(db, names, values)` makes of these column values
    (`names`: every concrete field's attname), with its price (that of `price_id`, None without one)
    cached as a prefetch leaves it. Without `Model.__init__`, which sets each field through
    its descriptor (and sends its init signals, which no receiver listens to for
    rollups): a third of the time of reading a thousand periods' rollups went to it.
    `tests/billing/test_draw_down_many.py` checks it against `from_db`."""
    rollup = UsageRollup.__new__(UsageRollup)
    rollup.__dict__.update(zip(names, values, strict=True))
    state = rollup._state = ModelState()
    state.adding, state.db = False, db
    state.fields_cache = {"price": price}
    return rollup


def instants_read_fast(cursor: Any) -> None:
    """Read this cursor's timestamptz columns with psycopg's own loader (C) rather than
    Django's, a Python subclass of it that costs about 25 µs a value: a third of a
    draw-down pass over a thousand periods went to it. The same instants, in UTC: the
    session's time zone, which Django's loader only relabels with its own UTC."""
    if connection.vendor != "postgresql":
        return
    import psycopg  # only on PostgreSQL
    from psycopg.pq import Format

    timestamptz = psycopg.adapters.types["timestamptz"].oid
    cursor.cursor.adapters.register_loader(
        "timestamptz", psycopg.adapters.get_loader(timestamptz, Format.TEXT)
    )


def period_money(
    *, customer: Customer, start: datetime, end: datetime, rollups: list[UsageRollup]
) -> PeriodMoney:
    """The period's terms segments, each rated rollup's money by key (tiered lines
    allocated) and the period's charges, for these rollups (stored or hypothetical).

    The segments are those `period_rollups` read with the rollups, for the same period;
    otherwise read now. A rated rollup whose terms are in none of them is not counted: it
    waits to be rated again (`period_rollups` leaves such rollups out itself)."""
    if isinstance(rollups, PeriodRollups) and (rollups.start, rollups.end) == (start, end):
        segments = rollups.segments
    else:
        segments = _segments(customer.pk, start, end)
    index_of_terms = {terms.pk: index for index, (_, terms) in enumerate(segments) if terms}
    rated = [
        rollup
        for rollup in rollups
        if rollup.status == UsageRollup.Status.RATED and rollup.terms_id in index_of_terms
    ]
    amounts = _amounts(rated, index_of_terms)
    usage_by_segment = [_ZERO] * len(segments)
    for rollup in rated:
        assert rollup.terms_id is not None  # in index_of_terms
        usage_by_segment[index_of_terms[rollup.terms_id]] += amounts[rollup.key]
    charges = period_charges(
        period_start=start,
        period_end=end,
        segments=[piece.segment for piece in segments],
        usage_by_segment=usage_by_segment,
    )
    return PeriodMoney(segments, amounts, charges)


def _segments(customer_id: int, start: datetime, end: datetime) -> list[TermsSegment]:
    """The period cut where terms change, each piece with its terms (None: no contract)."""
    terms_rows = list(
        ContractTerms.objects.filter(contract__customer_id=customer_id, effective_from__lt=end)
        .select_related("contract")
        .order_by("effective_from")
    )
    return _segments_of(terms_rows, start, end)


def _segments_of(
    all_terms: list[ContractTerms], start: datetime, end: datetime
) -> list[TermsSegment]:
    """`_segments` from the customer's terms rows, read already in `effective_from` order."""
    terms_rows = [terms for terms in all_terms if terms.effective_from < end]
    spans, cursor = [], start
    for number, terms in enumerate(terms_rows):
        following = terms_rows[number + 1].effective_from if number + 1 < len(terms_rows) else end
        stops = [following, end] + ([terms.contract.ends_at] if terms.contract.ends_at else [])
        piece_start, piece_end = max(terms.effective_from, start), min(stops)
        if piece_start >= piece_end:
            continue
        if piece_start > cursor:
            spans.append(TermsSegment(Segment(start=cursor, end=piece_start), None))
        segment = Segment(
            start=piece_start,
            end=piece_end,
            fixed_fee=terms.fixed_fee,
            included_allowance=terms.included_allowance,
            discount=terms.discount,
            minimum_commitment=terms.minimum_commitment,
        )
        spans.append(TermsSegment(segment, terms))
        cursor = piece_end
    if cursor < end:
        spans.append(TermsSegment(Segment(start=cursor, end=end), None))
    return spans


def _amounts(rollups: list[UsageRollup], index_of_terms: dict[int, int]) -> dict[str, Decimal]:
    """Each rated rollup's money, by key: its own amount for per-event prices; for tiered
    prices, its share of its line's charge in its segment, by quantity
    (`pricing.rating.charge_shares`)."""
    amounts: dict[str, Decimal] = {}
    lines: dict[str, dict[_Place, list[UsageRollup]]] = defaultdict(lambda: defaultdict(list))
    for rollup in rollups:
        if rollup.status != UsageRollup.Status.RATED:
            continue
        assert rollup.price is not None and rollup.terms_id is not None  # rated: both set
        if rollup.price.kind in TIERED:
            place = (index_of_terms[rollup.terms_id], rollup.price.version.number, rollup.price.pk)
            lines[rollup.line][place].append(rollup)
        else:
            amounts[rollup.key] = rollup.amount
    for places in lines.values():
        ordered = sorted(places)
        pieces = []
        for place in ordered:
            first = places[place][0]
            assert first.price is not None and first.terms is not None  # rated: both set
            quantity = sum((rollup.quantity for rollup in places[place]), _ZERO)
            pieces.append((quantity, price_terms(first.price, first.terms.price_overrides)))
        for place, charge in zip(ordered, tiered_charges(pieces), strict=True):
            members = places[place]
            shares = charge_shares(charge, [rollup.quantity for rollup in members])
            amounts.update(zip((rollup.key for rollup in members), shares, strict=True))
    return amounts
