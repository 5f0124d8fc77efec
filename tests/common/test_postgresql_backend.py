"""tokentill's PostgreSQL backend (common.postgresql): the connection health check is
skipped for a connection that answered within the last second, and still made, and
still replaces a closed connection, after that; the hottest statements are prepared,
Django's own never, and they go into Django's query log where queries are logged."""

import psycopg
import pytest
from django.db import connection, connections

from common.postgresql import base

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the backend is PostgreSQL's"
)


@pytest.fixture
def kept():
    """A second connection, kept between "requests" as CONN_MAX_AGE keeps one, whose
    health checks are counted."""
    wrapper = connections.create_connection("default")
    checks = []
    usable = wrapper.is_usable

    def counted():
        checks.append(1)
        return usable()

    wrapper.is_usable = counted
    wrapper.ensure_connection()
    wrapper.close_at = None  # kept however old, as with CONN_MAX_AGE = None
    wrapper.checks = checks
    yield wrapper
    wrapper.close()


def request_ends(wrapper) -> None:
    """What Django does between two requests (request_finished / request_started)."""
    wrapper.close_if_unusable_or_obsolete()


def backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db
def test_the_settings_use_it():
    assert isinstance(connections["default"], base.DatabaseWrapper)


@postgres_only
@pytest.mark.django_db
def test_a_connection_that_answered_a_moment_ago_is_not_checked(kept):
    first = backend_pid(kept)
    request_ends(kept)

    second = backend_pid(kept)

    assert kept.checks == []
    assert second == first


@postgres_only
@pytest.mark.django_db
def test_a_connection_idle_past_the_limit_is_checked_once(kept):
    first = backend_pid(kept)
    request_ends(kept)
    kept._last_used -= base.HEALTH_CHECK_IDLE_SECONDS + 0.1

    second = backend_pid(kept)
    backend_pid(kept)  # the same request: not checked again

    assert kept.checks == [1]
    assert second == first


@postgres_only
@pytest.mark.django_db
def test_a_connection_closed_while_idle_is_replaced(kept):
    first = backend_pid(kept)
    request_ends(kept)
    with connection.cursor() as cursor:  # the server ends the idle session
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [first])
    kept._last_used -= base.HEALTH_CHECK_IDLE_SECONDS + 0.1

    second = backend_pid(kept)  # the request is served, on a new connection

    assert kept.checks == [1]
    assert second != first


@pytest.mark.parametrize(
    ("disable_cursors", "prepared", "expected"),
    [
        (None, None, [False, 5]),
        ("true", None, [True, None]),  # a pooler in transaction mode: nothing prepared
        ("true", "true", [True, 5]),  # PgBouncer >= 1.21 keeps prepared statements
        (None, "false", [False, None]),
    ],
)
def test_server_side_cursors_and_prepared_statements_come_from_the_environment(
    disable_cursors, prepared, expected
):
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {"SECRET_KEY": "x", "PATH": os.environ.get("PATH", "")}
    env["DATABASE_URL"] = "postgres://tokentill@db.internal:5432/tokentill"
    if disable_cursors is not None:
        env["DISABLE_SERVER_SIDE_CURSORS"] = disable_cursors
    if prepared is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = prepared
    code = (
        "import json, config.settings as s; d = s.DATABASES['default']; "
        "print(json.dumps([d['ENGINE'], d['DISABLE_SERVER_SIDE_CURSORS'], "
        "d['OPTIONS']['prepare_threshold']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(result.stdout) == ["common.postgresql", *expected]


def prepared_statements(wrapper) -> list[str]:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
        return [statement for (statement,) in cursor.fetchall()]


def ingest_and_read(times: int, first: int = 0) -> None:
    """`times` single events through the ingest insert (`server_bound_cursor`), and as
    many reads through Django's own cursor, all on the default connection."""
    from contracts.models import Customer
    from metering import services
    from metering.models import UsageEvent
    from tests.metering.test_ingest_api import an_event

    for n in range(first, first + times):
        result = services.events_ingest(items=[an_event(event_id=f"prepared-{n}")])
        assert result.count("accepted") == 1
        assert Customer.objects.filter(external_id="acme").count() == 1
    assert UsageEvent.objects.filter(event_id__startswith="prepared-").count() == first + times


INGEST_INSERT = "WITH keyed AS (INSERT INTO metering_usageeventkey"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_ingest_insert_is_prepared_after_five_runs_and_django_queries_never(acme):
    from django.db import connection

    connection.close()  # a fresh connection: nothing prepared on it yet
    ingest_and_read(5)  # five runs, each planned on its own
    assert not any(s.startswith(INGEST_INSERT) for s in prepared_statements(connection))

    ingest_and_read(3, first=5)

    # The sealer's statement, run after commits, may be prepared too; Django's never are.
    prepared = prepared_statements(connection)
    assert len([s for s in prepared if s.startswith(INGEST_INSERT)]) == 1
    assert [s for s in prepared if "contracts_customer" in s] == []


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_with_prepared_statements_off_nothing_is_prepared(acme):
    from django.db import connection

    options = connection.settings_dict["OPTIONS"]
    threshold = options["prepare_threshold"]
    connection.close()
    options["prepare_threshold"] = None
    try:
        ingest_and_read(8)
        assert prepared_statements(connection) == []
    finally:
        options["prepare_threshold"] = threshold
        connection.close()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_server_bound_statements_error_arrives_as_djangos_and_the_connection_goes_on():
    from django.db import ProgrammingError, connection

    with (
        pytest.raises(ProgrammingError, match="no_such_column"),
        connection.server_bound_cursor() as cursor,
    ):
        cursor.execute("SELECT no_such_column")

    assert connection.errors_occurred  # Django checks the connection before reusing it
    with connection.server_bound_cursor() as cursor:
        cursor.execute("SELECT %s::int + 1", [41])
        assert cursor.fetchone() == (42,)


@postgres_only
@pytest.mark.django_db
def test_server_bound_statements_count_with_djangos_where_queries_are_logged():
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        with connection.server_bound_cursor() as cursor:
            cursor.execute("SELECT %s::int + 1", [41])
            assert cursor.fetchone() == (42,)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    assert [query["sql"] for query in queries] == ["SELECT %s::int + 1", "SELECT 1"]
    # Where nothing is logged (production), the cursor is psycopg's own.
    assert not connection.queries_logged
    with connection.server_bound_cursor() as cursor:
        assert type(cursor) is psycopg.Cursor
