"""The runtime role reads and writes rows, and is refused everything that could rewrite
history or the schema; `db_roles` sets that up and changes nothing when run again."""

import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from metering.models import EventSeal, UsageEvent
from metering.sealing import events_seal
from metering.services import events_ingest
from tests.db_split import TEST_RUNTIME_ROLE, owner_connection, runtime_split_active
from tests.metering.test_ingest_api import an_event
from tests.test_deploy_check import ROOT, manage

INSERT_ONLY = [
    "billing_billedevent",
    "common_auditentry",
    "metering_eventseal",
    "metering_usageevent",
    "metering_usageeventkey",
    "wallets_ledgerentry",
]
# The event log's monthly partitions carry its trigger, so they are insert-only too.
PARTITION = re.compile(r"metering_usageevent_\d{4}_\d{2}")

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="roles and privileges are PostgreSQL's"
)


@pytest.fixture
def logged(acme):
    """Two sealed events, stored by the runtime role."""
    result = events_ingest(items=[an_event(event_id="r1"), an_event(event_id="r2")])
    assert result.count("accepted") == 2
    events_seal()
    return acme


def refused(sql: str) -> str:
    """Run `sql` as the suite's connection in a savepoint; the error PostgreSQL gave."""
    with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as c:
        c.execute(sql)
    return str(error.value)


@postgres_only
def test_the_suite_connects_as_the_runtime_role(db):
    assert runtime_split_active()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user")
        assert cursor.fetchone() == (TEST_RUNTIME_ROLE, TEST_RUNTIME_ROLE)


@postgres_only
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("TRUNCATE metering_usageevent", "permission denied for table metering_usageevent"),
        ("TRUNCATE contracts_customer CASCADE", "permission denied for table contracts_customer"),
        ("ALTER TABLE metering_usageevent DISABLE TRIGGER ALL", "must be owner of table"),
        (
            "ALTER TABLE metering_usageevent DISABLE TRIGGER metering_usageevent_append_only",
            "must be owner of table",
        ),
        ("ALTER TABLE wallets_ledgerentry DISABLE TRIGGER ALL", "must be owner of table"),
        ("ALTER TABLE metering_usageevent ADD COLUMN note text", "must be owner of table"),
        ("DROP TABLE metering_eventseal", "must be owner of table"),
        ("DROP TRIGGER metering_usageevent_append_only ON metering_usageevent", "must be owner"),
        ("CREATE TABLE scratch (id int)", "permission denied for schema public"),
        ("SET session_replication_role = replica", "permission denied to set parameter"),
        ("UPDATE metering_usageevent SET model = 'x'", "permission denied for table"),
        ("DELETE FROM metering_usageevent", "permission denied for table"),
        ("UPDATE metering_eventseal SET event_count = 0", "permission denied for table"),
        ("DELETE FROM metering_eventseal", "permission denied for table"),
        ("UPDATE wallets_ledgerentry SET amount = 100", "permission denied for table"),
        ("DELETE FROM wallets_ledgerentry", "permission denied for table"),
        ("DELETE FROM common_auditentry", "permission denied for table"),
        ("UPDATE billing_billedevent SET amount = 0", "permission denied for table"),
        ("INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())", "denied"),
    ],
)
def test_the_runtime_role_is_refused(logged, sql, message):
    assert message in refused(sql)

    # nothing changed: the rows, the seal and the triggers are as they were
    assert sorted(UsageEvent.objects.values_list("event_id", "model")) == [
        ("r1", "gpt-4o"),
        ("r2", "gpt-4o"),
    ]
    assert list(EventSeal.objects.values_list("event_count", flat=True)) == [2]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgenabled FROM pg_trigger "
            "WHERE tgname LIKE '%%_append_only' AND tgparentid = 0 ORDER BY 1"
        )
        assert cursor.fetchall() == [
            ("metering_eventseal", "O"),
            ("metering_usageevent", "O"),
            ("metering_usageeventkey", "O"),
            ("wallets_ledgerentry", "O"),
        ]


@postgres_only
def test_the_runtime_role_stores_and_reads_events_and_updates_what_the_app_updates(logged):
    # stored by the runtime role (the fixture), read back by it
    assert UsageEvent.objects.filter(customer=logged).count() == 2
    logged.name = "Acme Renamed"
    logged.save()  # contracts_customer is read-write
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM contracts_customer WHERE id = %s", [logged.pk])
        assert cursor.fetchone() == ("Acme Renamed",)
        cursor.execute("SELECT count(*) FROM django_migrations")
        assert cursor.fetchone()[0] > 40  # read, not written


def acl_snapshot(cursor) -> list:
    """Every privilege on the schema's tables and sequences, the default privileges, the
    schema's and the role's attributes."""
    cursor.execute(
        "SELECT c.relname, c.relacl::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'S') ORDER BY 1"
    )
    snapshot = cursor.fetchall()
    cursor.execute("SELECT defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1")
    snapshot += cursor.fetchall()
    cursor.execute("SELECT nspacl::text FROM pg_namespace WHERE nspname = current_schema()")
    snapshot += cursor.fetchall()
    cursor.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = %s",
        [TEST_RUNTIME_ROLE],
    )
    snapshot += cursor.fetchall()
    return snapshot


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_db_roles_run_again_changes_nothing(capsys):
    with owner_connection() as owner, owner.cursor() as cursor:
        before = acl_snapshot(cursor)
        call_command("db_roles", role=TEST_RUNTIME_ROLE)
        call_command("db_roles", role=TEST_RUNTIME_ROLE)
        after = acl_snapshot(cursor)

    assert after == before
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1]
    assert out[0].startswith(f"Runtime role {TEST_RUNTIME_ROLE} (exists): read and write ")
    assert out[0].endswith("; read only: django_migrations.")
    insert_only = out[0].split("insert only: ")[1].split(";")[0].split(", ")
    assert [table for table in insert_only if not PARTITION.fullmatch(table)] == INSERT_ONLY
    assert any(PARTITION.fullmatch(table) for table in insert_only)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_db_roles_takes_back_what_the_runtime_role_was_given(db):
    """A privilege granted by hand (TRUNCATE, UPDATE on the event log) is revoked."""
    with owner_connection() as owner, owner.cursor() as cursor:
        cursor.execute(f"GRANT TRUNCATE, UPDATE ON metering_usageevent TO {TEST_RUNTIME_ROLE}")
        call_command("db_roles", role=TEST_RUNTIME_ROLE, verbosity=0)
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = 'metering_usageevent' ORDER BY 1",
            [TEST_RUNTIME_ROLE],
        )
        assert [row[0] for row in cursor.fetchall()] == ["INSERT", "SELECT"]


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("postgres", "the runtime role postgres is the owner"),
        ('x"; DROP TABLE metering_usageevent; --', "is not a plain role name"),
    ],
)
def test_db_roles_refuses_a_role_that_defeats_the_split(role, message):
    with owner_connection(), pytest.raises(CommandError, match=message):
        call_command("db_roles", role=role)


def test_db_roles_on_sqlite_does_nothing(db, capsys):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's answer")
    call_command("db_roles")
    assert capsys.readouterr().out == "sqlite has no roles: nothing to do.\n"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_migrate_runs_as_the_owner_then_grants(settings, capsys):
    """Production's path: DATABASE_URL is the runtime role, DATABASE_OWNER_URL the owner."""
    with owner_connection() as owner:
        owner_user = owner.settings_dict["USER"]
    settings.DATABASE_OWNER = {"USER": owner_user, "PASSWORD": ""}

    call_command("migrate", verbosity=0)

    assert capsys.readouterr().out.startswith(f"Runtime role {TEST_RUNTIME_ROLE} (exists): ")
    with connection.cursor() as cursor:  # the suite's connection is the runtime role again
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (TEST_RUNTIME_ROLE,)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_migrate_as_the_runtime_role_is_refused(settings):
    """Without DATABASE_OWNER_URL, migrate connects as DATABASE_URL's role: a runtime role
    cannot even record a migration."""
    from django.db import connection as runtime

    assert settings.DATABASE_OWNER is None
    with runtime.cursor() as cursor, pytest.raises(DatabaseError, match="permission denied"):
        cursor.execute("CREATE TABLE django_scratch (id int)")


def test_an_owner_url_naming_another_database_is_refused(tmp_path):
    env = {
        "SECRET_KEY": "x" * 50,
        "DEBUG": "true",
        "DATABASE_URL": "postgres://runtime@db.internal:5432/tokentill",
        "DATABASE_OWNER_URL": "postgres://owner@db.internal:5432/other",
    }
    result = manage("check", env=env, cwd=ROOT)

    assert result.returncode != 0
    assert "DATABASE_OWNER_URL names another database than DATABASE_URL" in result.stderr
