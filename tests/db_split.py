"""On PostgreSQL the suite runs as a runtime role, as production's processes do.

pytest-django creates the test database and migrates it as the owner (DATABASE_URL's
role); then `db_roles` grants TEST_RUNTIME_ROLE the runtime's privileges on it and every
connection the tests open (threads, forked processes, the Celery worker) logs in as that
role. What only the owner may do is done on `owner_connection()`: the flush that empties
the tables after a transactional test (TRUNCATE), and a test's deliberate tampering.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management import call_command
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import TransactionTestCase

from common.db_roles import owner_connection as as_owner

# Roles are the server's, shared by every database on it: concurrent runs share this one.
TEST_RUNTIME_ROLE = "tokentill_test_runtime"

_owner: dict[str, str] = {}
_flush = TransactionTestCase._fixture_teardown


def runtime_split_start() -> bool:
    """Grant the runtime role its privileges and switch the suite's connections to it."""
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return False
    call_command("db_roles", role=TEST_RUNTIME_ROLE, verbosity=0)
    settings_dict = connection.settings_dict  # the dict every thread's connection reads
    _owner.update(
        USER=settings_dict.get("USER") or "", PASSWORD=settings_dict.get("PASSWORD") or ""
    )
    connection.close()
    settings_dict.update(USER=TEST_RUNTIME_ROLE, PASSWORD="")
    TransactionTestCase._fixture_teardown = _flush_as_owner  # type: ignore[method-assign]
    return True


def runtime_split_end() -> None:
    """Back to the owner, who drops the test database."""
    connection = connections["default"]
    connection.close()
    connection.settings_dict.update(_owner)
    _owner.clear()
    TransactionTestCase._fixture_teardown = _flush  # type: ignore[method-assign]


def runtime_split_active() -> bool:
    return bool(_owner)


@contextmanager
def owner_connection(alias: str = "default") -> Iterator[BaseDatabaseWrapper]:
    """This thread's `connections[alias]` logged in as the owner for the block.

    A separate connection: it sees only committed rows, so a test that uses it is
    transactional. Without the split (SQLite) it is the connection itself.
    """
    if not _owner:
        yield connections[alias]
        return
    with as_owner(_owner, alias) as owner:
        yield owner


def _flush_as_owner(self: TransactionTestCase) -> None:
    """Django's flush TRUNCATEs every table, which the runtime role may not."""
    with owner_connection():
        _flush(self)
