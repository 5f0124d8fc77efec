"""The revenue report: figures that tie to the invoices and the ledger, and its CSV by hand.

acme (test_invoices.py's scenario) in November: fees 15.00 + 30.00, usage 30.00 less 1.00
of discount and the 10.00 allowance; 5.00 of credits bought on the 1st, 3.00 of
promotional credits that expire unused on the 20th, 20.00 bought on the 28th (14.00 of
which pay the usage past the first 5.00 at once: credits cover arrears). December: the fee
of 60.00, and, November being paid, a goodwill credit note of 10.00 back to the wallet on
the 10th.
"""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from billing.invoicing.closing import periods_close_due
from billing.invoicing.credit_notes import credit_note_issue
from billing.models import Invoice, InvoiceLine, UsageDrawDown
from billing.reports import USAGE_KINDS, revenue_report
from pricing.money import money_round
from wallets.models import CreditGrant, LedgerEntry, Wallet
from wallets.services import credit_grant, grants_expire

from . import test_invoices as scenario
from .conftest import rate

clock = scenario.clock
amended = scenario.amended
DECEMBER, JANUARY = scenario.DECEMBER, scenario.JANUARY

CSV = """\
customer,currency,period_start,period_end,invoice,invoice_status,fixed_fees,usage_revenue,\
usage_revenue_exact,credits_applied,invoice_total,credit_notes,deferred_revenue,\
deferred_revenue_exact,breakage,breakage_exact
acme,USD,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,INV-000001,paid,45.00,19.00,\
19.000000000000,19.00,45.00,0.00,6.00,6.000000000000,3.00,3.000000000000
acme,USD,2026-12-01T00:00:00Z,2027-01-01T00:00:00Z,INV-000002,finalized,60.00,0.00,\
0.000000000000,0.00,60.00,10.00,16.00,16.000000000000,0.00,0.000000000000
"""


@pytest.fixture
def balances(clock, amended) -> dict:
    """Two closed periods as the module docstring tells; the wallet's balance just before
    each period's end, as the wallet showed it then."""
    acme = amended.customer
    credit_grant(
        customer=acme, amount="3", source=CreditGrant.Source.PROMOTIONAL,
        expires_at=datetime(2026, 11, 20, tzinfo=UTC),
    )  # fmt: skip
    clock.now = datetime(2026, 11, 21, tzinfo=UTC)
    assert grants_expire() == 1
    scenario.november_usage(clock)  # on the 25th
    clock.now = datetime(2026, 11, 28, tzinfo=UTC)
    credit_grant(customer=acme, amount="20", source=CreditGrant.Source.PURCHASED)
    rate()  # the new credits pay November's usage past the first 5.00
    seen = {"november": Wallet.objects.get().balance}
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 1
    clock.now = datetime(2026, 12, 10, tzinfo=UTC)
    november = Invoice.objects.get()
    Invoice.objects.filter(pk=november.pk).update(status=Invoice.Status.PAID, paid_at=clock.now)
    credit_note_issue(invoice=november, amount=D("10"), memo="Outage", destination="wallet")
    seen["december"] = Wallet.objects.get().balance
    clock.now = JANUARY + timedelta(hours=25)
    assert periods_close_due() == 1
    return seen


def test_the_csv_by_hand(balances):
    out = io.StringIO()

    call_command("revenue_report", stdout=out)

    assert out.getvalue() == CSV


def test_the_csv_of_a_customer_and_a_span(balances):
    from contracts.services import customer_create

    customer_create(external_id="globex", name="Globex", currency="USD")
    december, nobody = io.StringIO(), io.StringIO()

    call_command("revenue_report", "--from", "2026-12-01", "--to", "2027-01-01", stdout=december)
    call_command("revenue_report", "--customer", "globex", stdout=nobody)

    header, _, december_row = CSV.splitlines(keepends=True)
    assert december.getvalue() == header + december_row
    assert nobody.getvalue() == header


def test_usage_revenue_and_credits_tie_to_the_invoice_lines(balances):
    for row in revenue_report():
        invoice = Invoice.objects.get(number=row.invoice)
        lines = InvoiceLine.objects.filter(invoice=invoice)
        usage = lines.filter(kind__in=USAGE_KINDS)
        assert row.usage_revenue == sum(usage.values_list("amount", flat=True))
        assert row.usage_revenue_exact == sum(usage.values_list("exact_amount", flat=True))
        assert row.fixed_fees + row.usage_revenue - row.credits_applied == invoice.total
        assert row.invoice_total == sum(lines.values_list("amount", flat=True))

    november = revenue_report()[0]
    drawn = UsageDrawDown.objects.get(period_start=scenario.NOVEMBER).drawn
    assert november.credits_applied == money_round(drawn, "USD") == D("19")


def test_deferred_revenue_is_the_wallet_balance_at_each_period_end(balances):
    november, december = revenue_report()

    assert (november.deferred_revenue_exact, december.deferred_revenue_exact) == (
        balances["november"], balances["december"],
    )  # fmt: skip
    ledger = LedgerEntry.objects.exclude(kind__in=LedgerEntry.HOLD_KINDS)
    assert december.deferred_revenue_exact == sum(ledger.values_list("amount", flat=True))


def test_breakage_is_what_expired_in_the_period(balances):
    november, december = revenue_report()

    expired = LedgerEntry.objects.filter(kind="expiry").values_list("amount", flat=True)
    assert (november.breakage_exact, december.breakage_exact) == (-sum(expired), D(0))
    assert november.breakage_exact == D("3")


def test_no_closed_period_no_row(clock, amended):
    assert revenue_report() == []
