"""`manage.py migrate` as the owner: on DATABASE_OWNER_URL's connection when it is set,
followed by `db_roles`, so tables a migration creates are granted to the runtime role."""

from django.core.management import call_command
from django.core.management.commands import migrate

from .db_roles import owner_alias


class Command(migrate.Command):
    help = f"{migrate.Command.help} As DATABASE_OWNER_URL's role when set, then db_roles."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=owner_alias())

    def handle(self, *args, **options):
        super().handle(*args, **options)
        if options["database"] == "owner" and not (options["plan"] or options["check_unapplied"]):
            call_command("db_roles", database="owner", verbosity=options["verbosity"])
