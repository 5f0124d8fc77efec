"""`manage.py db_roles`: create the runtime role and set its privileges (common.db_roles)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from common.db_roles import RoleError, runtime_role_grant


def owner_alias() -> str:
    """The connection migrations use: DATABASE_OWNER_URL's when it is set."""
    return "owner" if "owner" in settings.DATABASES else "default"


class Command(BaseCommand):
    help = (
        "As the owner (DATABASE_OWNER_URL), create DATABASE_URL's role if missing and grant it "
        "the runtime's privileges: read and write rows, only INSERT into the append-only tables, "
        "no TRUNCATE, no schema changes. Safe to run again; `migrate` runs it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            default=None,
            help="The owner's connection (default: owner, else default).",
        )
        parser.add_argument(
            "--role", default=None, help="The runtime role (default: DATABASE_URL's user)."
        )

    def handle(self, *args, **options):
        alias = options["database"] or owner_alias()
        connection = connections[alias]
        if connection.vendor != "postgresql":
            self.stdout.write(f"{connection.vendor} has no roles: nothing to do.")
            return
        runtime = settings.DATABASES["default"]
        role = options["role"] or runtime.get("USER") or ""
        password = "" if options["role"] else runtime.get("PASSWORD") or ""
        if alias == "default" and not options["role"]:
            raise CommandError(
                "DATABASE_OWNER_URL is not set: DATABASE_URL's role owns the tables, so there "
                "is no separate runtime role to grant to."
            )
        try:
            grants = runtime_role_grant(connection, role, password)
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
