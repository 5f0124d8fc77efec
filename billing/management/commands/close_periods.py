"""Close every billing period that is due now, as beat does every 5 minutes, and say which
invoices were made (billing.invoicing.closing.periods_close). Run by a person, so what it
closes is recorded in the audit trail as `command:close_periods`."""

from django.core.management.base import BaseCommand, CommandError

from billing.invoicing.closing import periods_close
from common.audit import acting_as
from contracts.selectors import customer_get
from pricing.cycles import span_text
from pricing.money import money_label

ACTOR = "command:close_periods"


class Command(BaseCommand):
    help = (
        "Close every billing period whose grace has passed (of all customers, or of "
        "--customer) into its invoice, after rating what is queued; prints each invoice "
        "made. Running it again makes nothing more."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customer", help="Only this customer (external_id).")

    def handle(self, *args, customer, **options):
        found = None
        if customer is not None:
            found = customer_get(external_id=customer)
            if found is None:
                raise CommandError(f"No customer with external_id '{customer}'.")
        with acting_as(ACTOR):
            run = periods_close(customer=found)
        for invoice in run.invoices:
            self.stdout.write(
                f"{invoice.number}  {invoice.customer.external_id}  "
                f"{span_text(invoice.period_start, invoice.period_end)}  "
                f"{money_label(invoice.total, invoice.currency)}"
            )
        if not run.count:
            self.stdout.write("Nothing was due.")
            return
        summary = f"Closed {_count(run.periods, 'period')}"
        if run.corrections:
            summary += f", billed the final corrections of {_count(run.corrections, 'customer')}"
        self.stdout.write(self.style.SUCCESS(f"{summary}: {_count(len(run.invoices), 'invoice')}."))


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"
