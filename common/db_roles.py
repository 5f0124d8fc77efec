"""The runtime role: what the web and worker processes may do to the database.

Migrations run as the role that owns the tables (`DATABASE_OWNER_URL`); the processes
connect as a runtime role (`DATABASE_URL`) that can read and write rows but cannot
change the schema, disable the append-only triggers, TRUNCATE, or UPDATE and DELETE
the append-only tables. `runtime_role_grant` creates that role when it is missing and
sets its privileges from scratch, so running it again changes nothing.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import DatabaseError

# A table with this trigger function refuses UPDATE and DELETE (metering 0002, wallets 0002).
APPEND_ONLY_FUNCTION = "tokentill_append_only"
# Insert-only by policy, without a trigger: nothing in tokentill rewrites the audit trail,
# nor the events an issued invoice line billed.
INSERT_ONLY_TABLES = ("billing_billedevent", "common_auditentry")
# Written by migrations only.
READ_ONLY_TABLES = ("django_migrations",)
# Functions the runtime role may run: the owner's, with the owner's rights (metering 0010
# creates a month's partition of the event log, which the runtime role cannot drop).
RUNTIME_FUNCTIONS = ("tokentill_usage_partition_ensure(date)",)

_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# duplicate_object; unique_violation when two sessions create the role at the same time.
_ROLE_EXISTS = {"42710", "23505"}


class RoleError(Exception):
    """The runtime role cannot be set up safely; the message says why."""


@dataclass(frozen=True)
class RoleGrants:
    role: str
    created: bool
    read_write: list[str]
    insert_only: list[str]
    read_only: list[str]
    warnings: list[str]


@contextmanager
def owner_connection(
    credentials: dict, alias: str = DEFAULT_DB_ALIAS
) -> Iterator[BaseDatabaseWrapper]:
    """This thread's `connections[alias]`, for the block, logged in with the owner's
    USER and PASSWORD (same database): everything in it, a migration's data included,
    runs as the owner. A separate connection, which sees committed rows only."""
    runtime = connections[alias]
    owner = runtime.copy()
    owner.settings_dict.update(
        USER=credentials.get("USER", ""), PASSWORD=credentials.get("PASSWORD", "")
    )
    connections[alias] = owner
    try:
        yield owner
    finally:
        owner.close()
        connections[alias] = runtime


def runtime_role_grant(
    connection: BaseDatabaseWrapper, role: str, password: str = ""
) -> RoleGrants:
    """Create `role` if missing and give it exactly the runtime's privileges on the
    database `connection` (the owner's) is connected to."""
    if not _ROLE_NAME.fullmatch(role):
        raise RoleError(f"{role!r} is not a plain role name (letters, digits and _).")
    quoted = f'"{role}"'
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database(), current_schema()")
        owner, database, schema = cursor.fetchone()
        if role == owner:
            raise RoleError(
                f"the runtime role {role} is the owner: set DATABASE_URL to another role "
                "than DATABASE_OWNER_URL's"
            )
        created = _role_ensure(connection, quoted, role, password)
        _role_check(cursor, role, owner)
        tables = _tables(cursor, schema)
        append_only = _append_only_tables(cursor, schema)
        insert_only = sorted(t for t in tables if t in append_only or t in INSERT_ONLY_TABLES)
        read_only = sorted(t for t in tables if t in READ_ONLY_TABLES)
        read_write = sorted(set(tables) - set(insert_only) - set(read_only))
        on_schema = f'"{schema}"'
        statements = [
            *_reach(cursor, role, quoted, database, schema),
            # From scratch: whatever was granted before (TRUNCATE, REFERENCES, TRIGGER…) goes.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {on_schema} FROM {quoted}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {on_schema} FROM {quoted}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {on_schema} TO {quoted}",
            # Tables later migrations create can be read and written before the grants run
            # again (`migrate` runs them); an append-only one is refused by its trigger.
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {on_schema} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {on_schema} "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {quoted}",
        ]
        statements += [
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON {on_schema}."{t}" TO {quoted}'
            for t in read_write
        ]
        statements += [
            f'GRANT SELECT, INSERT ON {on_schema}."{t}" TO {quoted}' for t in insert_only
        ]
        statements += [f'GRANT SELECT ON {on_schema}."{t}" TO {quoted}' for t in read_only]
        for function in RUNTIME_FUNCTIONS:
            cursor.execute("SELECT to_regprocedure(%s)", [f"{on_schema}.{function}"])
            if cursor.fetchone()[0] is not None:
                statements.append(f"GRANT EXECUTE ON FUNCTION {on_schema}.{function} TO {quoted}")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [role, schema])
        warnings = []
        if cursor.fetchone()[0]:
            warnings.append(
                f"{role} may create tables in schema {schema} (granted to PUBLIC before "
                f"PostgreSQL 15): REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"
            )
    return RoleGrants(role, created, read_write, insert_only, read_only, warnings)


def _reach(cursor, role: str, quoted: str, database: str, schema: str) -> list[str]:
    """CONNECT and USAGE, unless PUBLIC gives them already (granting them takes owning the
    database and the schema, which the owner of the tables need not)."""
    cursor.execute(
        "SELECT has_database_privilege(%s, %s, 'CONNECT'), has_schema_privilege(%s, %s, 'USAGE')",
        [role, database, role, schema],
    )
    connect, usage = cursor.fetchone()
    statements = [] if connect else [f'GRANT CONNECT ON DATABASE "{database}" TO {quoted}']
    if not usage:
        statements.append(f'GRANT USAGE ON SCHEMA "{schema}" TO {quoted}')
    return statements


def _role_ensure(connection: BaseDatabaseWrapper, quoted: str, role: str, password: str) -> bool:
    """Create the role unless it exists; roles are the cluster's, shared by every database
    on it, so another process may be creating the same one at this moment."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            return False
        try:
            with transaction.atomic(using=connection.alias):
                if password:
                    cursor.execute(f"CREATE ROLE {quoted} LOGIN PASSWORD %s", [password])
                else:
                    cursor.execute(f"CREATE ROLE {quoted} LOGIN")
        except DatabaseError as error:
            cause = error.__cause__
            if getattr(cause, "sqlstate", None) not in _ROLE_EXISTS:
                raise
            return False
        return True


def _role_check(cursor, role: str, owner: str) -> None:
    """Refuse a role that could do what the split is meant to stop."""
    cursor.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
        "pg_has_role(rolname, %s, 'MEMBER') FROM pg_roles WHERE rolname = %s",
        [owner, role],
    )
    superuser, createrole, createdb, bypassrls, member = cursor.fetchone()
    powers = [
        name
        for name, held in (
            ("SUPERUSER", superuser),
            ("CREATEROLE", createrole),
            ("CREATEDB", createdb),
            ("BYPASSRLS", bypassrls),
        )
        if held
    ]
    if powers:
        raise RoleError(
            f"the runtime role {role} has {', '.join(powers)}: make it a plain login role "
            f"(ALTER ROLE {role} NO{' NO'.join(powers)})"
        )
    if member:
        raise RoleError(
            f"the runtime role {role} is a member of the owner {owner}, so it holds the "
            f"owner's rights: REVOKE {owner} FROM {role}"
        )


def _tables(cursor, schema: str) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm')",
        [schema],
    )
    return [name for (name,) in cursor.fetchall()]


def _append_only_tables(cursor, schema: str) -> set[str]:
    """The tables whose triggers call the append-only function."""
    cursor.execute(
        "SELECT c.relname FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE n.nspname = %s AND p.proname = %s",
        [schema, APPEND_ONLY_FUNCTION],
    )
    return {name for (name,) in cursor.fetchall()}
