"""The event log's monthly partitions (PostgreSQL), the key table that keeps event ids
unique across months, and a month archived to Parquet, verified, then dropped."""

import hashlib
import re
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from metering import archive
from metering.models import EventArchive, UnratedEvent, UsageEvent, UsageEventKey
from metering.partitions import (
    month_add,
    month_of,
    partition_name,
    partitions_create_ahead,
    partitions_list,
)
from metering.selectors import event_log_verify, events_list
from metering.services import events_ingest
from metering.tasks import create_event_partitions
from tests.db_split import TEST_RUNTIME_ROLE, owner_connection
from tests.metering.test_event_log import tamper
from tests.metering.test_ingest_api import an_event, iso
from tests.metering.test_ingest_races import race

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="partitions are PostgreSQL's; SQLite keeps one plain table",
)


def statuses(result) -> list[str]:
    return [item["status"] for item in result.as_dict()["items"]]


# --- partitions created ahead -----------------------------------------------------------


@postgres_only
def test_the_log_is_partitioned_by_month_and_the_months_ingest_may_meet_exist(db):
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'metering_usageevent'")
        assert cursor.fetchone() == ("p",)
        cursor.execute(
            "SELECT pg_get_partkeydef('metering_usageevent'::regclass), "
            "pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'metering_usageevent_pkey'"
        )
        assert cursor.fetchone() == ('RANGE ("timestamp")', 'PRIMARY KEY (id, "timestamp")')
        cursor.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'metering_usageevent'::regclass AND c.relispartition "
            "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'"
        )
        assert cursor.fetchone() == (0,)  # no DEFAULT partition
    months = partitions_list()
    back = month_of(now - timedelta(days=35))
    assert {back, month_of(now), month_add(month_of(now), 3)} <= set(months)


@postgres_only
def test_the_daily_task_creates_the_months_ahead_once(db, settings):
    settings.TOKENTILL_PARTITIONS_AHEAD_MONTHS = 3
    settings.TOKENTILL_LATENESS_WINDOW_DAYS = 35
    march_2031 = datetime(2031, 3, 10, 9, tzinfo=UTC)

    first = partitions_create_ahead(now=march_2031)
    again = partitions_create_ahead(now=march_2031)

    # 35 days before 2031-03-10 is in February; three months past March is June
    assert first == [date(2031, 2, 1), date(2031, 3, 1), date(2031, 4, 1), date(2031, 5, 1),
                     date(2031, 6, 1)]  # fmt: skip
    assert again == []
    assert [m for m in partitions_list() if m.year == 2031] == first
    # the task (as beat runs it, here as the runtime role) finds nothing more to do
    assert create_event_partitions() == []


@postgres_only
def test_a_partition_the_runtime_role_creates_is_the_owners_and_insert_only(db, settings):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (TEST_RUNTIME_ROLE,)
    partitions_create_ahead(now=datetime(2032, 7, 20, tzinfo=UTC))
    name = partition_name(date(2032, 7, 1))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) <> current_user, "
            "has_table_privilege(current_user, %s, 'SELECT'), "
            "has_table_privilege(current_user, %s, 'INSERT'), "
            "has_table_privilege(current_user, %s, 'UPDATE'), "
            "has_table_privilege(current_user, %s, 'DELETE'), "
            "has_table_privilege(current_user, %s, 'TRUNCATE') "
            "FROM pg_class WHERE relname = %s",
            [name] * 6,
        )
        assert cursor.fetchone() == (True, True, True, False, False, False)
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [name],
        )
        assert cursor.fetchall() == [("metering_usageevent_append_only",)]


def refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as c:
        c.execute(sql)
    return str(error.value)


@postgres_only
@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("DROP TABLE {part}", "must be owner of table"),
        ("ALTER TABLE metering_usageevent DETACH PARTITION {part}", "must be owner of table"),
        ("TRUNCATE {part}", "permission denied for table"),
        ("DELETE FROM {part}", "permission denied for table"),
        ("UPDATE {part} SET model = 'x'", "permission denied for table"),
        ("ALTER TABLE {part} DISABLE TRIGGER ALL", "must be owner of table"),
        (
            "CREATE TABLE scratch PARTITION OF metering_usageevent "
            "FOR VALUES FROM ('2040-01-01') TO ('2040-02-01')",
            "permission denied for schema",
        ),
        ("DELETE FROM metering_usageeventkey", "permission denied for table"),
        ("TRUNCATE metering_usageeventkey", "permission denied for table"),
    ],
)
def test_the_runtime_role_cannot_drop_detach_or_empty_a_partition(acme, template, message):
    assert events_ingest(items=[an_event(event_id="kept")]).count("accepted") == 1
    part = partition_name(month_of(timezone.now() - timedelta(hours=1)))

    assert message in refused(template.format(part=part))

    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["kept"]
    assert part in [partition_name(m) for m in partitions_list()]


@postgres_only
def test_an_event_whose_month_has_no_partition_yet_is_stored(acme, settings):
    settings.TOKENTILL_LATENESS_WINDOW_DAYS = 800
    month = month_add(month_of(timezone.now()), -20)
    assert month not in partitions_list()
    moment = datetime(month.year, month.month, 3, 8, tzinfo=UTC)

    result = events_ingest(items=[an_event(event_id="old", timestamp=iso(moment))])

    assert statuses(result) == ["accepted"]
    assert month in partitions_list()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id FROM {partition_name(month)}"  # noqa: S608
        )
        assert cursor.fetchall() == [("old",)]


# --- deduplication across months ----------------------------------------------------------


def test_an_event_id_is_unique_across_months(acme):
    now = timezone.now()
    this_month = an_event(event_id="x-1", timestamp=iso(now - timedelta(hours=1)))
    # 32 days back is always in an earlier month, and inside the 35-day lateness window
    other_month = an_event(event_id="x-1", timestamp=iso(now - timedelta(days=32)))

    first = events_ingest(items=[this_month])
    moved = events_ingest(items=[other_month])
    resent = events_ingest(items=[this_month])

    assert statuses(first) == ["accepted"]
    assert statuses(moved) == ["rejected"]
    assert moved.items[0].errors[0].code == "conflict"
    assert statuses(resent) == ["duplicate"]
    assert UsageEvent.objects.count() == 1
    key = UsageEventKey.objects.get()
    event = UsageEvent.objects.get()
    assert (key.customer_id, key.event_id, key.event_pk, key.seal_id, key.content_hash) == (
        acme.pk,
        "x-1",
        event.pk,
        event.seal_id,
        event.content_hash,
    )


def test_a_batch_carrying_one_event_id_in_two_months_stores_the_first(acme):
    now = timezone.now()
    result = events_ingest(
        items=[
            an_event(event_id="y-1", timestamp=iso(now - timedelta(days=32))),
            an_event(event_id="y-1", timestamp=iso(now - timedelta(hours=1))),
        ]
    )

    assert statuses(result) == ["accepted", "rejected"]
    assert UsageEvent.objects.get().timestamp < now - timedelta(days=31)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_batches_spanning_two_months_in_opposite_orders_store_each_event_once(acme):
    now = timezone.now()
    batch = [
        an_event(event_id=f"m-{i}", timestamp=iso(now - timedelta(days=32 * (i % 2), hours=1)))
        for i in range(40)
    ]

    results = race([batch, batch[::-1], batch, batch[::-1]])

    for answer in results:
        assert all(codes == [] for _, _, codes in answer)
    for event_id in (f"m-{i}" for i in range(40)):
        statuses = sorted(s for answer in results for e, s, _ in answer if e == event_id)
        assert statuses == ["accepted", "duplicate", "duplicate", "duplicate"]
    assert UsageEvent.objects.count() == UsageEventKey.objects.count() == 40
    assert len({month_of(t) for t in UsageEvent.objects.values_list("timestamp", flat=True)}) == 2
    assert event_log_verify().ok


# --- pruning ------------------------------------------------------------------------------


@postgres_only
def test_a_customers_month_reads_one_partition(acme):
    now = timezone.now()
    events_ingest(
        items=[
            an_event(event_id="p-1", timestamp=iso(now - timedelta(hours=1))),
            an_event(event_id="p-2", timestamp=iso(now - timedelta(days=32))),
        ]
    )
    month = month_of(now - timedelta(hours=1))
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month_add(month, 1).year, month_add(month, 1).month, 1, tzinfo=UTC)

    plan = events_list(customer_external_id="acme", since=start, until=end).explain()

    touched = set(re.findall(r"metering_usageevent_\d{4}_\d{2}\b", plan))  # not its indexes
    assert touched == {partition_name(month)}
    assert list(
        events_list(customer_external_id="acme", since=start, until=end).values_list(
            "event_id", flat=True
        )
    ) == ["p-1"]


# --- archive: export, verify, detach, drop --------------------------------------------------


def _old_month() -> date:
    return month_add(month_of(timezone.now()), -15)


@pytest.fixture
def old_month_logged(acme, settings):
    """Three events of a month 15 months back, and two of now, in two batches (the first
    batch spans both months); everything rated (the queue emptied, as the rater does)."""
    month = _old_month()
    settings.TOKENTILL_LATENESS_WINDOW_DAYS = 800
    old = [
        an_event(
            event_id=f"old-{n}",
            timestamp=iso(datetime(month.year, month.month, 15, 12, n, tzinfo=UTC)),
        )
        for n in range(3)
    ]
    first = events_ingest(items=[*old, an_event(event_id="new-1")])
    second = events_ingest(items=[an_event(event_id="new-2")])
    assert (first.count("accepted"), second.count("accepted")) == (4, 1)
    settings.TOKENTILL_LATENESS_WINDOW_DAYS = 35
    settings.TOKENTILL_EVENT_RETENTION_MONTHS = 13
    with owner_connection() as owner, owner.cursor() as cursor:
        cursor.execute("DELETE FROM metering_unratedevent")
    return month


def archive_command(month: date, directory, *, drop: bool = True) -> str:
    with owner_connection():
        call_command("archive_events", month=f"{month:%Y-%m}", to=str(directory), drop=drop)
    return ""


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_month_is_archived_verified_and_dropped(old_month_logged, tmp_path, capsys):
    month = old_month_logged
    before = event_log_verify()
    assert (before.ok, before.seals, before.events) == (True, 2, 5)

    archive_command(month, tmp_path)

    path = tmp_path / f"usage-events-{month:%Y-%m}.parquet"
    table = pq.read_table(path)
    assert table.column("event_id").to_pylist() == ["old-0", "old-1", "old-2"]
    record = EventArchive.objects.get()
    assert (record.month, record.file_name, record.row_count, record.dropped) == (
        month,
        path.name,
        3,
        True,
    )
    assert record.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    out = capsys.readouterr().out
    assert f"{month:%Y-%m}: 3 events to {path.name} (sha256 {record.file_sha256})" in out
    assert "verified, partition dropped." in out
    assert month not in partitions_list()
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["new-1", "new-2"]
    assert UsageEventKey.objects.count() == 5  # the keys stay: resends still recognised

    after = event_log_verify()  # the old events chain from their keys' content hashes
    assert (after.ok, after.seals, after.events) == (True, 2, 5)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_verify_still_names_a_real_deletion_after_a_month_is_dropped(old_month_logged, tmp_path):
    archive_command(old_month_logged, tmp_path)
    kept = UsageEvent.objects.get(event_id="new-1")

    tamper("DELETE FROM metering_usageevent WHERE id = %s", [kept.pk])

    assert event_log_verify().problem == "seal #1 covers 4 events but 3 are stored"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_file_that_does_not_verify_drops_nothing(old_month_logged, tmp_path, monkeypatch):
    write = archive._parquet_write

    def corrupting(path, rows):
        def altered():
            for n, row in enumerate(rows):
                yield (*row[:4], "gpt-4o-mini", *row[5:]) if n == 1 else row

        return write(path, altered())

    monkeypatch.setattr(archive, "_parquet_write", corrupting)
    second = UsageEvent.objects.get(event_id="old-1")

    with pytest.raises(CommandError) as error:
        archive_command(old_month_logged, tmp_path)

    assert str(error.value) == (
        f"{old_month_logged:%Y-%m} not archived: {tmp_path}/usage-events-"
        f"{old_month_logged:%Y-%m}.parquet does not match the database: event {second.pk} in "
        "the file no longer matches its content hash; nothing dropped"
    )
    assert old_month_logged in partitions_list()
    assert UsageEvent.objects.count() == 5
    assert not EventArchive.objects.exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_archive_is_refused_while_events_wait_for_rating_or_may_still_arrive(
    old_month_logged, tmp_path
):
    now = timezone.now()
    late = month_of(now - timedelta(days=32))
    with pytest.raises(CommandError, match=f"events of {late:%Y-%m} may still arrive until"):
        archive_command(late, tmp_path)
    with owner_connection() as owner, owner.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metering_unratedevent (event_id, customer_id) "
            "SELECT id, customer_id FROM metering_usageevent WHERE event_id LIKE 'old-%%'"
        )
    with pytest.raises(CommandError, match="still has 3 events waiting to be rated"):
        archive_command(old_month_logged, tmp_path)

    assert list(tmp_path.iterdir()) == []
    assert UsageEvent.objects.count() == 5
    assert UnratedEvent.objects.count() == 3
    assert not EventArchive.objects.exists()
    assert {late, old_month_logged} <= set(partitions_list())


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_archive_without_drop_keeps_the_partition_and_verify_counts_it_once(
    old_month_logged, tmp_path
):
    archive_command(old_month_logged, tmp_path, drop=False)

    assert EventArchive.objects.get().dropped is False
    assert old_month_logged in partitions_list()
    result = event_log_verify()
    assert (result.ok, result.events) == (True, 5)


def test_sqlite_has_no_months_to_archive(acme, tmp_path):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's answer")
    with pytest.raises(CommandError, match="only a partitioned event log"):
        call_command("archive_events", month="2025-01", to=str(tmp_path), drop=True)
