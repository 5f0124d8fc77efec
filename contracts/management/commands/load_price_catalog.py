from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from contracts.catalog.services import catalog_load, rate_card_create_from_catalog


class Command(BaseCommand):
    help = (
        "Load the public model price catalog shipped in contracts/catalog/prices.json; "
        "with --rate-card, also make a rate card from it at list price plus --markup."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate-card", metavar="NAME", help="Create a rate card so named.")
        parser.add_argument(
            "--markup", default="0", help="Fraction over list price, e.g. 0.20 for +20 %%."
        )
        parser.add_argument(
            "--provider", action="append", help="Only this provider's models (repeatable)."
        )

    def handle(self, *args, rate_card, markup, provider, **options):
        created, updated = catalog_load()
        self.stdout.write(
            self.style.SUCCESS(f"Price catalog loaded: {created} new, {updated} refreshed.")
        )
        if not rate_card:
            return
        try:
            markup = Decimal(markup)
        except InvalidOperation as error:
            raise CommandError(f"--markup '{markup}' is not a number such as 0.20") from error
        if not markup.is_finite() or markup < -1:
            raise CommandError("--markup must be a number of at least -1")
        try:
            card = rate_card_create_from_catalog(name=rate_card, markup=markup, providers=provider)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        prices = card.versions.get().prices.count()
        self.stdout.write(
            self.style.SUCCESS(f"Rate card '{card.name}' ({card.currency}): {prices} prices.")
        )
