"""`manage.py db_roles`: create the runtime role and set its privileges (common.db_roles)."""

from contextlib import nullcontext

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from common.db_roles import RoleError, owner_connection, runtime_role_grant


class Command(BaseCommand):
    help = (
        "As the owner (DATABASE_OWNER_URL), create DATABASE_URL's role if missing and grant it "
        "the runtime's privileges: read and write rows, only INSERT into the append-only tables, "
        "no TRUNCATE, no schema changes. Safe to run again; `migrate` runs it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--role",
            default=None,
            help="Grant to this role, connected as DATABASE_URL's (the owner): for tests.",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            self.stdout.write(f"{connection.vendor} has no roles: nothing to do.")
            return
        owner = settings.DATABASE_OWNER
        role = options["role"] or settings.DATABASES["default"].get("USER") or ""
        if owner is None and not options["role"]:
            raise CommandError(
                "DATABASE_OWNER_URL is not set: DATABASE_URL's role owns the tables, so there "
                "is no separate runtime role to grant to."
            )
        password = "" if options["role"] else settings.DATABASES["default"].get("PASSWORD") or ""
        as_owner = owner_connection(owner) if owner else nullcontext(connection)
        try:
            with as_owner as owner_conn:
                grants = runtime_role_grant(owner_conn, role, password)
        except RoleError as error:
            raise CommandError(str(error)) from error
        verb = "created" if grants.created else "exists"
        self.stdout.write(
            f"Runtime role {grants.role} ({verb}): read and write {len(grants.read_write)} "
            f"tables; insert only: {', '.join(grants.insert_only) or 'none'}; "
            f"read only: {', '.join(grants.read_only) or 'none'}."
        )
        for warning in grants.warnings:
            self.stderr.write(self.style.WARNING(warning))
