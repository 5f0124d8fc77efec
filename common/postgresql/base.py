"""Django's PostgreSQL backend with a cheaper connection health check, and a cursor that
binds values on the server, and prepares, for the hottest statements.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request
on a kept connection, so that one the server or a proxy closed while it sat idle is
replaced instead of failing the request. Under load that is a round trip on every
request (a tenth of a single-event ingest's) to check a connection that answered a
moment ago. Here the check is made only when the connection has answered nothing for
HEALTH_CHECK_IDLE_SECONDS: what it is for, a connection closed while idle (an idle
timeout, a proxy or firewall dropping it, a restarted server), is still caught.
"""

import contextlib
import time
from collections import deque
from collections.abc import Iterator

import psycopg
from django.db.backends.postgresql import base

# A connection that answered within this many seconds is not checked again.
HEALTH_CHECK_IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _last_used = float("-inf")  # time.monotonic() of the last cursor this connection gave

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self._last_used < HEALTH_CHECK_IDLE_SECONDS
        ):
            self.health_check_done = True  # it answered a moment ago
            return
        super().close_if_health_check_failed()

    def _cursor(self, name=None):
        cursor = super()._cursor(name)
        self._last_used = time.monotonic()
        return cursor

    def connect(self):
        super().connect()
        self._last_used = time.monotonic()

    @contextlib.contextmanager
    def server_bound_cursor(self) -> Iterator[psycopg.Cursor]:
        """A psycopg cursor of this connection that sends values apart from the SQL, for
        the server to bind. Django's own cursor quotes each value into the SQL text in
        Python, the largest part of a single-event insert's Python time. Checked as
        Django's cursors are (the connection's health, its thread), and its errors reach
        the caller as Django's (`_store_retrying` tells a deadlock by them).

        Unlike Django's cursors, it prepares a statement run often enough, when the
        connection's `prepare_threshold` allows (settings: DATABASE_PREPARED_STATEMENTS):
        PostgreSQL then plans it once per connection instead of on every call."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_thread_sharing()
        self._last_used = time.monotonic()
        cursor = (
            _LoggedCursor(self.connection, self.queries_log)
            if self.queries_logged
            else psycopg.Cursor(self.connection)
        )
        with self.wrap_database_errors, cursor:
            yield cursor


class _LoggedCursor(psycopg.Cursor):
    """A server-bound cursor that records its statements in Django's query log, as
    Django's own cursors do when queries are logged (DEBUG, or a test's
    `CaptureQueriesContext`), so that they count with the rest."""

    def __init__(self, connection: psycopg.Connection, queries_log: deque):
        super().__init__(connection)
        self.queries_log = queries_log

    def execute(self, query, params=None, **kwargs):
        started = time.monotonic()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            elapsed = time.monotonic() - started
            self.queries_log.append({"sql": str(query), "time": f"{elapsed:.3f}"})
