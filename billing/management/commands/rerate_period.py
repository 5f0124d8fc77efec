"""Preview (and with --apply, do) the re-rating of a customer's period from the event log."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.rating.rerating import period_rerate
from contracts.selectors import customer_get


class Command(BaseCommand):
    help = (
        "Re-rate the billing period holding --at for a customer with today's prices and "
        "terms: prints the difference line by line; --apply queues the period for rating."
    )

    def add_arguments(self, parser):
        parser.add_argument("customer", help="The customer's external_id.")
        parser.add_argument("--at", help="An instant in the period (ISO 8601); default now.")
        parser.add_argument("--apply", action="store_true", help="Re-rate after showing.")

    def handle(self, *args, customer, at, apply, **options):
        found = customer_get(external_id=customer)
        if found is None:
            raise CommandError(f"No customer with external_id '{customer}'.")
        moment = timezone.now()
        if at:
            try:
                moment = datetime.fromisoformat(at)
            except ValueError:
                moment = None
            if moment is None or moment.utcoffset() is None:
                raise CommandError("--at takes an ISO 8601 instant with a timezone.")
        diff = period_rerate(customer=found, at=moment, apply=apply)
        self.stdout.write(
            f"{found.external_id}, period {diff.period_start:%Y-%m-%d} to "
            f"{diff.period_end:%Y-%m-%d}: {diff.events:,} events"
        )
        for line in diff.lines:
            mark = "*" if line.changed else " "
            self.stdout.write(
                f"{mark} {line.label}: {line.old_events:,} events {line.old_amount:f}"
                f" -> {line.new_events:,} events {line.new_amount:f}"
                f"  [{line.old_source} -> {line.new_source}]"
            )
        self.stdout.write(f"Total {diff.old_total:f} -> {diff.new_total:f} {found.currency}")
        if apply:
            self.stdout.write(self.style.SUCCESS("Queued for re-rating."))
        elif diff.changed:
            self.stdout.write("Nothing changed yet: run again with --apply to re-rate.")
