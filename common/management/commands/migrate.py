"""`manage.py migrate` as the owner: with DATABASE_OWNER_URL set, the default connection
logs in as the owner for the whole command (a migration's own queries included), and
`db_roles` follows, so the tables a migration created are granted to the runtime role."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from common.db_roles import owner_connection


class Command(migrate.Command):
    help = f"{migrate.Command.help} As DATABASE_OWNER_URL's role when set, then db_roles."

    def handle(self, *args, **options):
        owner = settings.DATABASE_OWNER
        if owner is None or options["database"] != DEFAULT_DB_ALIAS:
            return super().handle(*args, **options)
        with owner_connection(owner):
            super().handle(*args, **options)
        if not (options["plan"] or options["check_unapplied"]):
            call_command("db_roles", verbosity=options["verbosity"])
        return None
