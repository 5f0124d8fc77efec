"""PostgreSQL's monthly partitions of the event log (`metering_usageevent`).

The log is partitioned by RANGE of `timestamp`, one partition per calendar month (UTC),
named `metering_usageevent_YYYY_MM`, with no DEFAULT partition: an event whose month had
no partition would otherwise land in a catch-all that blocks creating that month later.
Partitions are made by one database function, `tokentill_usage_partition_ensure(month)`
(metering 0010), owned by the tables' owner and run with its rights (SECURITY DEFINER):
the runtime role may call it, so the daily task and ingest create what is missing, yet
that role owns no partition, so it can neither drop, detach, truncate nor alter one. A
partition gets its parent's privileges and the append-only trigger (PostgreSQL clones
it from the parent).

Three layers keep ingest from ever meeting a missing month: the migration creates the
lateness window's months back and some months ahead; the daily task keeps the current
month and `TOKENTILL_PARTITIONS_AHEAD_MONTHS` ahead; and ingest, before it stores a
batch, makes sure every month of the batch exists (a per-process memo makes that free
once a month is known). SQLite has one plain table and none of this.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

PARENT = "metering_usageevent"
ENSURE_FUNCTION = "tokentill_usage_partition_ensure"

_known: set[date] = set()  # months this process has seen exist


def month_of(instant: datetime) -> date:
    """The first day of the instant's calendar month, in UTC."""
    instant = instant.astimezone(UTC)
    return date(instant.year, instant.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) of the month as UTC instants."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = month_add(month, 1)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def partition_name(month: date) -> str:
    return f"{PARENT}_{month:%Y_%m}"


def partitioned() -> bool:
    """Whether this database partitions the log (PostgreSQL after metering 0010)."""
    return connection.vendor == "postgresql"


def partitions_list() -> list[date]:
    """The months that have a partition, oldest first."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            [PARENT],
        )
        names = [name for (name,) in cursor.fetchall()]
    prefix = f"{PARENT}_"
    return [
        date(int(name[len(prefix) :][:4]), int(name[-2:]), 1)
        for name in names
        if name.startswith(prefix)
    ]


def partitions_ensure(*, months: Iterable[date]) -> list[date]:
    """Create the partitions of `months` that are missing; returns those it created.

    Each is created by the owner's function, under its advisory lock, so two processes
    (or a process and the daily task) asking at once create it once. Months this
    process already saw exist cost nothing."""
    if not partitioned():
        return []
    # Remembered only outside a transaction, where what the function saw or made is
    # committed: inside one, a rollback could take the partition away again.
    remember = not connection.in_atomic_block
    created = []
    with connection.cursor() as cursor:
        for month in sorted(set(months) - _known):
            cursor.execute(f"SELECT {ENSURE_FUNCTION}(%s)", [month])
            if cursor.fetchone()[0]:
                created.append(month)
            if remember:
                _known.add(month)
    return created


def partitions_ensure_span(*, timestamps: list[datetime]) -> list[date]:
    """Make sure every month from the earliest of `timestamps` to the latest has its
    partition (ingest, before its transaction). Only the two ends are converted to months,
    which keeps this cheap per batch; a month between them without events costs an
    empty partition that the daily task would create anyway."""
    if not partitioned() or not timestamps:
        return []
    month, latest = month_of(min(timestamps)), month_of(max(timestamps))
    months = [month]
    while month < latest:
        month = month_add(month, 1)
        months.append(month)
    if _known.issuperset(months):
        return []
    return partitions_ensure(months=months)


def partitions_forget() -> None:
    """Forget the months seen (a partition was dropped, or a test starts afresh)."""
    _known.clear()


def partitions_create_ahead(*, now: datetime | None = None) -> list[date]:
    """The months ingest may meet, from the oldest the lateness window admits to
    `TOKENTILL_PARTITIONS_AHEAD_MONTHS` past the current one; returns those it created.
    Asks the database every time (never the memo): run daily by beat."""
    now = now or timezone.now()
    oldest = month_of(now - timedelta(days=settings.TOKENTILL_LATENESS_WINDOW_DAYS))
    newest = month_add(month_of(now), settings.TOKENTILL_PARTITIONS_AHEAD_MONTHS)
    months, month = [], oldest
    while month <= newest:
        months.append(month)
        month = month_add(month, 1)
    partitions_forget()
    return partitions_ensure(months=months)
