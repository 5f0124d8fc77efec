from django.core.management.base import BaseCommand

from contracts.services import catalog_load


class Command(BaseCommand):
    help = "Load the public model price catalog shipped in contracts/catalog/prices.json."

    def handle(self, *args, **options):
        created, updated = catalog_load()
        self.stdout.write(
            self.style.SUCCESS(f"Price catalog loaded: {created} new, {updated} refreshed.")
        )
