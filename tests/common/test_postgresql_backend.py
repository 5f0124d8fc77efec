"""tokentill's PostgreSQL backend (common.postgresql): the connection health check is
skipped for a connection that answered within the last second, and still made, and
still replaces a closed connection, after that."""

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


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("true", True)])
def test_server_side_cursors_are_turned_off_from_the_environment(value, expected):
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {"SECRET_KEY": "x", "PATH": os.environ.get("PATH", "")}
    env["DATABASE_URL"] = "postgres://tokentill@db.internal:5432/tokentill"
    if value is not None:
        env["DISABLE_SERVER_SIDE_CURSORS"] = value
    code = (
        "import json, config.settings as s; d = s.DATABASES['default']; "
        "print(json.dumps([d['ENGINE'], d['DISABLE_SERVER_SIDE_CURSORS']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(result.stdout) == ["common.postgresql", expected]
