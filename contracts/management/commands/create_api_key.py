"""`manage.py create_api_key NAME`: a new operator API key, printed once."""

from django.core.management.base import BaseCommand

from contracts.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an operator API key and print it. Only its hash is stored: the key is "
        "shown this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what will use the key, e.g. 'ingest-prod'.")

    def handle(self, *args, name: str, **options):
        api_key, plain_key = api_key_create(name=name)
        self.stderr.write(
            f"Created API key “{api_key.name}” (tt_{api_key.prefix}_…). Copy it now: "
            "it will not be shown again."
        )
        self.stdout.write(plain_key)
