"""A month of the event log to Parquet, verified, then detached and dropped (PostgreSQL).

`event_month_archive` refuses a month whose events may still change what tokentill
bills, writes the month's partition to one Parquet file in id order, reads the file
back and checks it row by row against the partition (the same ids, and every row's
content hash recomputed from the file's own columns equal to the hash stored), and only
then, in one transaction that first locks the partition against writes and counts it
again, detaches and drops the partition and records the archive. Any doubt stops it
before anything is dropped. The month's keys stay in `UsageEventKey`: resends of its
events are still recognised, and the seal chain still verifies (`event_log_verify`).

It runs as the tables' owner (`manage.py archive_events` logs in as DATABASE_OWNER_URL's
role when set): the runtime role may neither detach nor drop a partition.
"""

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .canonical import event_content_hash
from .models import EventArchive, UnratedEvent, UsageEvent
from .partitions import (
    PARENT,
    month_add,
    month_bounds,
    month_of,
    partition_name,
    partitioned,
    partitions_forget,
    partitions_list,
)

CHUNK_ROWS = 50_000
Row: TypeAlias = tuple[Any, ...]  # an event's columns, in _FIELDS order

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("customer_id", pa.int64()),
        ("event_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("feature", pa.string()),
        ("metrics", pa.string()),  # JSON, as stored
        ("properties", pa.string()),  # JSON, as stored
        ("counting", pa.string()),
        ("provider", pa.string()),
        ("tokenizer", pa.string()),
        ("estimated", pa.bool_()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("content_hash", pa.string()),
        ("seal_id", pa.string()),
    ]
)
_FIELDS = [
    "id",
    "customer_id",
    "event_id",
    "timestamp",
    "model",
    "feature",
    "metrics",
    "properties",
    "counting",
    "provider",
    "tokenizer",
    "estimated",
    "received_at",
    "content_hash",
    "seal_id",
]


class ArchiveRefused(Exception):
    """The month may not be archived, or its file did not verify; nothing was dropped."""


def event_month_archive(
    *, month: date, directory: Path, drop: bool, now: datetime | None = None
) -> EventArchive:
    """Write `month`'s events to `directory`, verify the file, and with `drop` detach and
    drop the month's partition; returns the archive's record."""
    month = date(month.year, month.month, 1)
    _refuse_unless_archivable(month, now=now or timezone.now())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"usage-events-{month:%Y-%m}.parquet"
    written = _parquet_write(path, _month_rows(month))
    problem = _parquet_verify(path, _month_rows(month))
    if problem:
        raise ArchiveRefused(f"{path} does not match the database: {problem}; nothing dropped")
    with transaction.atomic():
        if drop:
            _partition_drop(month, expected_rows=written)
        archive, _ = EventArchive.objects.update_or_create(
            month=month,
            defaults={
                "file_name": path.name,
                "row_count": written,
                "file_sha256": _sha256(path),
                "dropped": drop,
                "archived_at": timezone.now(),
            },
        )
    return archive


def archived_months() -> list[date]:
    """The months whose partition was archived and dropped."""
    return list(EventArchive.objects.filter(dropped=True).values_list("month", flat=True))


def _refuse_unless_archivable(month: date, *, now: datetime) -> None:
    if not partitioned():
        raise ArchiveRefused("only a partitioned event log (PostgreSQL) has months to archive")
    if EventArchive.objects.filter(month=month, dropped=True).exists():
        raise ArchiveRefused(f"{month:%Y-%m} is archived and dropped already")
    if month not in partitions_list():
        raise ArchiveRefused(f"{month:%Y-%m} has no partition")
    _, end = month_bounds(month)
    lateness = timedelta(days=settings.TOKENTILL_LATENESS_WINDOW_DAYS)
    if end > now - lateness:
        raise ArchiveRefused(
            f"events of {month:%Y-%m} may still arrive until {(end + lateness):%Y-%m-%d} "
            f"(TOKENTILL_LATENESS_WINDOW_DAYS={lateness.days})"
        )
    retention = settings.TOKENTILL_EVENT_RETENTION_MONTHS
    if month >= month_add(month_of(now), -retention):
        raise ArchiveRefused(
            f"{month:%Y-%m} is inside the retention of {retention} months "
            "(TOKENTILL_EVENT_RETENTION_MONTHS)"
        )
    start, end = month_bounds(month)
    unrated = UnratedEvent.objects.filter(
        event_id__in=UsageEvent.objects.filter(timestamp__gte=start, timestamp__lt=end).values("id")
    ).count()
    if unrated:
        raise ArchiveRefused(f"{month:%Y-%m} still has {unrated} events waiting to be rated")


def _month_rows(month: date) -> Iterator[Row]:
    """The month's events in id order, streamed (a server-side cursor on PostgreSQL)."""
    start, end = month_bounds(month)
    return (
        UsageEvent.objects.filter(timestamp__gte=start, timestamp__lt=end)
        .order_by("id")
        .values_list(*[f if f != "id" else "pk" for f in _FIELDS])
        .iterator(chunk_size=CHUNK_ROWS)
    )


def _as_columns(rows: list[Row]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in _FIELDS}
    for row in rows:
        for name, value in zip(_FIELDS, row, strict=True):
            if name in ("metrics", "properties"):
                value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            elif name == "seal_id":
                value = str(value)
            columns[name].append(value)
    return columns


def _parquet_write(path: Path, rows: Iterator[Row]) -> int:
    """Write the rows in chunks (memory stays flat); returns how many were written."""
    count = 0
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        chunk: list[Row] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK_ROWS:
                writer.write_table(pa.table(_as_columns(chunk), schema=SCHEMA))
                count, chunk = count + len(chunk), []
        if chunk or not count:
            writer.write_table(pa.table(_as_columns(chunk), schema=SCHEMA))
            count += len(chunk)
    return count


def _parquet_verify(path: Path, rows: Iterator[Row]) -> str:
    """'' when the file holds exactly the database's rows (same ids in the same order,
    same content hashes) and every row's hash, recomputed from the file, matches;
    otherwise the first difference."""
    stored = ((row[0], row[_FIELDS.index("content_hash")]) for row in rows)
    read = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
        for record in batch.to_pylist():
            read += 1
            expected = next(stored, None)
            if expected is None:
                return f"row {read} (id {record['id']}) is not in the database"
            if record["id"] != expected[0]:
                return f"row {read} is id {record['id']}, the database's is {expected[0]}"
            if record["content_hash"] != expected[1]:
                return f"event {record['id']}'s content hash differs"
            recomputed = event_content_hash(
                customer_pk=record["customer_id"],
                event_id=record["event_id"],
                timestamp=record["timestamp"],
                model=record["model"],
                feature=record["feature"],
                metrics=orjson.loads(record["metrics"]),
                properties=orjson.loads(record["properties"]),
                counting=record["counting"],
                provider=record["provider"],
                tokenizer=record.get("tokenizer") or "",  # absent from older archives
                estimated=bool(record.get("estimated")),
            )
            if recomputed != expected[1]:
                return f"event {record['id']} in the file no longer matches its content hash"
    missing = sum(1 for _ in stored)
    if missing:
        return f"{missing} of the database's events are missing from the file ({read} read)"
    return ""


def _partition_drop(month: date, *, expected_rows: int) -> None:
    """Detach and drop the month's partition, once nothing can be written to it and it
    still holds exactly the rows the file verified."""
    name = partition_name(month)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
        cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608
        now_rows = cursor.fetchone()[0]
        if now_rows != expected_rows:
            raise ArchiveRefused(
                f"{name} holds {now_rows} events, the file {expected_rows}: nothing dropped"
            )
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    transaction.on_commit(partitions_forget)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
