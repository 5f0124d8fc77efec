"""The revenue report as CSV on standard output (billing.reports defines its figures)."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from billing.reports import revenue_report, revenue_report_csv
from contracts.selectors import customer_get


def instant(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 instant with a timezone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"'{text}' is not a date (2026-11-01) or an instant.") from None
    if len(text) == 10:  # a date
        return moment.replace(tzinfo=UTC)
    if moment.utcoffset() is None:
        raise CommandError(f"Give '{text}' a timezone, e.g. 2026-11-01T00:00Z.")
    return moment


class Command(BaseCommand):
    help = (
        "Revenue per customer and closed billing period as CSV: fixed fees, usage revenue, "
        "credits applied, credit notes, deferred revenue (prepaid credits held) and breakage. "
        "E.g. revenue_report --from 2026-01-01 --to 2027-01-01 > revenue-2026.csv"
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", help="Periods starting at or after this.")
        parser.add_argument("--to", dest="end", help="Periods starting before this.")
        parser.add_argument("--customer", help="Only this customer (external_id).")

    def handle(self, *args, start, end, customer, **options):
        found = None
        if customer is not None:
            found = customer_get(external_id=customer)
            if found is None:
                raise CommandError(f"No customer with external_id '{customer}'.")
        rows = revenue_report(
            start=instant(start) if start else None,
            end=instant(end) if end else None,
            customer=found,
        )
        revenue_report_csv(rows=rows, out=self.stdout)
