"""PostgreSQL: the event log becomes a table partitioned by month of `timestamp`.

The plain table is renamed aside, a partitioned one takes its name (primary key (id,
timestamp), the (customer, timestamp) index, the customer's foreign key and the
append-only trigger, which PostgreSQL clones onto every partition), the partitions of
every month that holds events and of the months ingest may meet are created, the rows
move over in id order, the id sequence carries on, and the plain table is dropped.

Partitions are created by `tokentill_usage_partition_ensure(month)`, a function owned by
the migrating role (the tables' owner) that runs with its rights: the runtime role, which
`db_roles` lets execute it, calls it (the daily task, ingest) without owning what it
creates, and each partition is given exactly its parent's privileges. Tables that name events keep no database constraint to
them (billing 0018). SQLite keeps its plain table.
"""

from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import migrations

PARENT = "metering_usageevent"
OLD = "metering_usageevent_unpartitioned"
PARTITION_LOCK = 7_401_003  # pg_advisory_xact_lock key taken while a partition is created

FUNCTION = """
CREATE OR REPLACE FUNCTION tokentill_usage_partition_ensure(month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    part text := 'metering_usageevent_' || to_char(first, 'YYYY_MM');
    entry record;
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock({lock});
    IF to_regclass(part) IS NOT NULL THEN  -- created while this call waited
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF metering_usageevent FOR VALUES FROM (%L) TO (%L)',
        part, first::text || ' 00:00:00+00',
        (first + interval '1 month')::date::text || ' 00:00:00+00'
    );
    -- Exactly the parent's privileges: none of the creator's default ones.
    FOR entry IN
        SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = part::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('REVOKE ALL ON %I FROM %s', part,
            CASE WHEN entry.grantee = 0 THEN 'PUBLIC'
                 ELSE quote_ident(pg_get_userbyid(entry.grantee)) END);
    END LOOP;
    FOR entry IN
        SELECT a.grantee, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'metering_usageevent'::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %I TO %s', entry.privilege_type, part,
            CASE WHEN entry.grantee = 0 THEN 'PUBLIC'
                 ELSE quote_ident(pg_get_userbyid(entry.grantee)) END);
    END LOOP;
    RETURN true;
END;
$$
"""


def _month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _months_ingest_may_meet() -> list[date]:
    now = datetime.now(UTC)
    back = now - timedelta(days=settings.TOKENTILL_LATENESS_WINDOW_DAYS)
    month, newest = date(back.year, back.month, 1), date(now.year, now.month, 1)
    newest = _month_add(newest, settings.TOKENTILL_PARTITIONS_AHEAD_MONTHS)
    months = []
    while month <= newest:
        months.append(month)
        month = _month_add(month, 1)
    return months


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = %s::regclass",
            [PARENT],
        )
        referencing = [name for (name,) in cursor.fetchall()]
        if referencing:
            raise RuntimeError(
                f"{', '.join(referencing)} still reference {PARENT} with a foreign key: "
                "a partitioned table cannot be referenced by its id alone"
            )
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = %s::regclass",
            [PARENT],
        )
        foreign_keys = cursor.fetchall()
        statements = [
            f"DROP TRIGGER {PARENT}_append_only ON {PARENT}",
            f"ALTER TABLE {PARENT} RENAME TO {OLD}",
            f"ALTER INDEX {PARENT}_pkey RENAME TO {OLD}_pkey",
            f"ALTER INDEX usage_event_cust_ts RENAME TO {OLD}_cust_ts",
            *(f'ALTER TABLE {OLD} DROP CONSTRAINT "{name}"' for name, _ in foreign_keys),
            f"CREATE TABLE {PARENT} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY) "
            'PARTITION BY RANGE ("timestamp")',
            f'ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id, "timestamp")',
            f'CREATE INDEX usage_event_cust_ts ON {PARENT} (customer_id, "timestamp")',
            *(f'ALTER TABLE {PARENT} ADD CONSTRAINT "{n}" {d}' for n, d in foreign_keys),
            f"CREATE TRIGGER {PARENT}_append_only BEFORE UPDATE OR DELETE ON {PARENT} "
            "FOR EACH ROW EXECUTE FUNCTION tokentill_append_only()",
            FUNCTION.format(schema=f'"{schema}"', lock=PARTITION_LOCK),
            "REVOKE ALL ON FUNCTION tokentill_usage_partition_ensure(date) FROM PUBLIC",
        ]
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC')::date "
            f"FROM {OLD}"  # noqa: S608
        )
        months = {month for (month,) in cursor.fetchall()} | set(_months_ingest_may_meet())
        for month in sorted(months):
            cursor.execute("SELECT tokentill_usage_partition_ensure(%s)", [month])
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {OLD} ORDER BY id")  # noqa: S608
        cursor.execute(f"SELECT pg_get_serial_sequence('{PARENT}', 'id'), max(id) FROM {OLD}")  # noqa: S608
        sequence, last = cursor.fetchone()
        if last is not None:
            cursor.execute("SELECT setval(%s, %s)", [sequence, last])
        cursor.execute(f"DROP TABLE {OLD}")
        _sequence_name_keep(cursor, sequence)
        cursor.execute(f"ANALYZE {PARENT}")


def unpartition(apps, schema_editor):
    """Back to one plain table (what 0008 left), the rows in id order."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = %s::regclass AND conparentid = 0",
            [PARENT],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(f"SELECT pg_get_serial_sequence('{PARENT}', 'id'), max(id) FROM {PARENT}")  # noqa: S608
        _, last = cursor.fetchone()
        old = f"{PARENT}_partitioned"
        statements = [
            f"ALTER TABLE {PARENT} RENAME TO {old}",
            f"ALTER INDEX {PARENT}_pkey RENAME TO {old}_pkey",
            f"ALTER INDEX usage_event_cust_ts RENAME TO {old}_cust_ts",
            *(f'ALTER TABLE {old} DROP CONSTRAINT "{name}"' for name, _ in foreign_keys),
            f"ALTER SEQUENCE {PARENT}_id_seq RENAME TO {old}_id_seq",
            f"CREATE TABLE {PARENT} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY)",
            f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id)",
            f'CREATE INDEX usage_event_cust_ts ON {PARENT} (customer_id, "timestamp")',
            *(f'ALTER TABLE {PARENT} ADD CONSTRAINT "{n}" {d}' for n, d in foreign_keys),
            f"INSERT INTO {PARENT} SELECT * FROM {old} ORDER BY id",  # noqa: S608
            f"DROP TABLE {old}",
            "DROP FUNCTION tokentill_usage_partition_ensure(date)",
            f"CREATE TRIGGER {PARENT}_append_only BEFORE UPDATE OR DELETE ON {PARENT} "
            "FOR EACH ROW EXECUTE FUNCTION tokentill_append_only()",
        ]
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(f"SELECT pg_get_serial_sequence('{PARENT}', 'id')")
        sequence = cursor.fetchone()[0]
        if last is not None:
            cursor.execute("SELECT setval(%s, %s)", [sequence, last])
        _sequence_name_keep(cursor, sequence)


def _sequence_name_keep(cursor, sequence: str) -> None:
    """The id sequence keeps the name Django gave it, whichever table made it."""
    if sequence.split(".")[-1] != f"{PARENT}_id_seq":
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {PARENT}_id_seq")


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0009_event_keys"),
        ("billing", "0018_events_without_constraint"),
    ]
    operations = [migrations.RunPython(partition, unpartition)]
