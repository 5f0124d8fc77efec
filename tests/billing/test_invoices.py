"""Periods closed into invoices: lines by hand, rounding once per line, late usage, numbering."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.invoicing.closing import period_close, periods_close_due, periods_due
from billing.invoicing.draft import invoice_draft
from billing.models import BillingPeriod, CreditNote, Invoice, InvoiceLine
from billing.selectors import line_events
from contracts.services import contract_create, customer_create
from wallets.models import Wallet

from .conftest import NOVEMBER, event, ingest, rate
from .invoice_support import Clock, clock_set, november_contract

DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
JANUARY = datetime(2027, 1, 1, tzinfo=UTC)
MILLION_OUT = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's 10.00 per 1M output
D = Decimal
NOV = "2026-11-01 to 2026-11-30"


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@pytest.fixture
def amended(clock, acme, rate_card):
    return november_contract(acme, rate_card)


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(
        invoice.lines.values_list("kind", "description", "quantity", "unit_price", "amount")
    )


def november_usage(clock):
    clock.now = datetime(2026, 11, 25, tzinfo=UTC)
    ingest(
        event("a", datetime(2026, 11, 5, 10, tzinfo=UTC), metrics=MILLION_OUT),
        event("b", datetime(2026, 11, 5, 11, tzinfo=UTC), metrics=MILLION_OUT),
        event("c", datetime(2026, 11, 20, 10, tzinfo=UTC), metrics=MILLION_OUT),
    )
    rate()


def test_a_period_with_an_amendment_credits_and_an_allowance_is_right_to_the_cent(clock, amended):
    november_usage(clock)

    clock.now = DECEMBER + timedelta(hours=25)  # past the 24 hours of grace
    assert periods_close_due() == 1

    invoice = Invoice.objects.get()
    # By hand: fees 30 x 15/30 = 15.00 and 60 x 15/30 = 30.00; usage 2 x 10.00 under the
    # first terms and 10.00 under the amendment, 10 % of which is 1.00 off; the allowance
    # (10 x 15/30 + 10 x 15/30 = 10.00) covers 10.00 of the 29.00; the credits paid 5.00.
    assert lines_of(invoice) == [
        ("fixed_fee", "Monthly fee, 2026-11-01 to 2026-11-15", D(1), D("15"), D("15")),
        ("fixed_fee", "Monthly fee, 2026-11-16 to 2026-11-30", D(1), D("30"), D("30")),
        # gpt-4o under each set of terms: told apart by their days, not by terms numbers.
        ("usage", "gpt-4o, 2026-11-01 to 2026-11-15", D(2), D("10"), D("20")),
        ("usage", "gpt-4o, 2026-11-16 to 2026-11-30", D(1), D("10"), D("10")),
        ("discount", "Discount 10 % on usage, 2026-11-16 to 2026-11-30", D(1), D("-1"), D("-1")),
        ("allowance", f"Included usage allowance: 10.00 USD of 10.00 USD used, {NOV}",
         D(1), D("-10"), D("-10")),
        ("credits", f"Prepaid credits applied, {NOV}", D(1), D(-5), D(-5)),
    ]  # fmt: skip
    assert (invoice.total, invoice.number, invoice.status, invoice.currency) == (
        D("59"), "INV-000001", "finalized", "USD",
    )  # fmt: skip
    assert invoice.total == sum(invoice.lines.values_list("amount", flat=True))
    period = BillingPeriod.objects.get()
    assert (period.start, period.end, period.invoice, period.billed_total) == (
        NOVEMBER, DECEMBER, invoice, D("64"),
    )  # fmt: skip


def test_each_line_is_rounded_once_and_the_total_is_the_sum_of_the_lines(clock, amended):
    november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)
    periods_close_due()
    # December: 1,000 / 500 / 2,000 tokens = 0.01 on its line; 10 % of that 0.01 is 0.001,
    # 0.00 once rounded, so the allowance covers the whole 0.01 left. A late November event
    # (0.5M output = 5.00, 4.50 after the discount) is rated after November closed.
    clock.now = DECEMBER + timedelta(days=3)
    ingest(
        event("dec", DECEMBER + timedelta(days=2)),
        event("late", datetime(2026, 11, 29, tzinfo=UTC), metrics={"output_tokens": 500_000}),
    )
    rate()

    clock.now = JANUARY + timedelta(hours=25)
    assert periods_close_due() == 1

    december = Invoice.objects.get(period_start=DECEMBER)
    assert lines_of(december) == [
        ("fixed_fee", "Monthly fee, 2026-12-01 to 2026-12-31", D(1), D("60"), D("60")),
        ("usage", "gpt-4o", D(1), D("0.01"), D("0.01")),
        ("discount", "Discount 10 % on usage, 2026-12-01 to 2026-12-31", D(1), D("0"), D("0")),
        ("allowance", "Included usage allowance: 0.01 USD of 10.00 USD used, "
         "2026-12-01 to 2026-12-31", D(1), D("-0.01"), D("-0.01")),
        ("late_usage", f"Correction of invoice INV-000001, {NOV}: 1 call received late",
         D(1), D("4.5"), D("4.5")),
    ]  # fmt: skip
    assert december.total == D("64.50")  # 60 + 0.01 + 0 - 0.01 + 4.50, line by line
    assert december.number == "INV-000002"
    assert Wallet.objects.get().balance == 0  # the credits were spent in November
    november = BillingPeriod.objects.get(start=NOVEMBER)
    assert (november.billed_total, november.billed_events) == (D("68.5"), 4)
    # closing again bills nothing twice
    clock.now += timedelta(days=1)
    assert periods_close_due() == 0
    assert Invoice.objects.count() == 2


def test_closing_twice_or_a_second_time_returns_the_same_invoice(clock, amended):
    november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    first = period_close(contract=amended, start=NOVEMBER, end=DECEMBER)
    second = period_close(contract=amended, start=NOVEMBER, end=DECEMBER)

    assert first == second
    assert (Invoice.objects.count(), InvoiceLine.objects.count()) == (1, 7)


def test_a_period_closes_only_when_its_grace_has_passed(clock, amended, settings):
    settings.TOKENTILL_PERIOD_GRACE_HOURS = 24
    clock.now = DECEMBER + timedelta(hours=23, minutes=59)
    assert periods_due(now=clock.now) == []
    assert periods_close_due() == 0

    clock.now = DECEMBER + timedelta(hours=24)
    assert periods_due(now=clock.now) == [(amended, NOVEMBER, DECEMBER)]


def test_a_late_event_is_billed_once_on_the_next_invoice(clock, amended):
    november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)
    periods_close_due()
    clock.now = DECEMBER + timedelta(days=3)
    ingest(event("late", datetime(2026, 11, 29, tzinfo=UTC), metrics=MILLION_OUT))
    rate()

    preview = invoice_draft(customer=amended.customer, start=DECEMBER, end=JANUARY, at=clock.now)
    late = [line for line in preview.lines if line.kind == "late_usage"]
    assert [(line.exact_amount, line.event_count) for line in late] == [(D("9"), 1)]

    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()
    clock.now = datetime(2027, 2, 1, tzinfo=UTC) + timedelta(hours=25)
    periods_close_due()

    late_lines = InvoiceLine.objects.filter(kind="late_usage")
    assert [(line.invoice.number, line.amount) for line in late_lines] == [("INV-000002", D(9))]


def test_usage_re_rated_lower_after_closing_is_a_credit_note_on_its_invoice(
    clock, amended, rate_card
):
    from billing.rating.rerating import period_rerate
    from contracts.rate_cards import price_update, rate_card_version_schedule

    november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)
    periods_close_due()
    # a correction halves the output rate from November 1: 15.00 of usage less
    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=NOVEMBER, correction=True
    )
    price = version.prices.get()
    rates = {**price.rates, "rate_out": {"amount": "5.00", "per": 1_000_000}}
    price_update(price=price, rates=rates)
    period_rerate(customer=amended.customer, at=datetime(2026, 11, 20, tzinfo=UTC), apply=True)
    rate()

    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()

    note = CreditNote.objects.get()
    november_invoice = Invoice.objects.get(period_start=NOVEMBER)
    # before: usage 30 - discount 1 = 29, allowance 10 → 19 billable, 5.00 of it paid by
    # credits, 14.00 in cash; after: 15 - 0.5 = 14.5, allowance 10 → 4.5, all of it paid by
    # the credits (the wallet got 0.50 back as the period was re-rated). The period's
    # charges fell by 14.50: 0.50 came back to the wallet, 14.00 is the credit note, once.
    assert (note.invoice, note.number, note.reason, note.amount, note.destination) == (
        november_invoice, "CN-000001", "rerating", D("14"), "none",
    )  # fmt: skip
    assert note.memo == "Correction of invoice INV-000001, 2026-11-01 to 2026-11-30: usage repriced"
    assert november_invoice.lines.count() == 7  # the invoice itself is unchanged
    assert not InvoiceLine.objects.filter(kind="late_usage").exists()
    assert not InvoiceLine.objects.filter(kind="credits", invoice__period_start=DECEMBER)
    assert Wallet.objects.get().balance == D("0.5")


def test_a_usage_line_lists_the_events_it_covers(clock, amended):
    november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)
    periods_close_due()

    first_terms, second_terms = InvoiceLine.objects.filter(kind="usage").order_by("position")

    assert [e.event.event_id for e in line_events(line=first_terms)] == ["a", "b"]
    assert [e.event.event_id for e in line_events(line=second_terms)] == ["c"]
    assert (first_terms.event_count, first_terms.first_event_at, first_terms.last_event_at) == (
        2, datetime(2026, 11, 5, 10, tzinfo=UTC), datetime(2026, 11, 5, 11, tzinfo=UTC),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("JPY", D("1235")), ("BHD", D("1234.568")), ("USD", D("1234.57"))],
)
def test_amounts_round_to_the_currency_minor_unit(clock, rate_card, currency, expected):
    from contracts.rate_cards import rate_card_create

    card = rate_card_create(name=f"Card {currency}", currency=currency, effective_from=NOVEMBER)
    customer = customer_create(external_id=f"c-{currency}", name=currency, currency=currency)
    contract = contract_create(
        customer=customer,
        starts_at=NOVEMBER,
        rate_card=card,
        anchor_day=1,
        fixed_fee=D("1234.5675"),
    )
    clock.now = DECEMBER + timedelta(hours=25)

    invoice = period_close(contract=contract, start=NOVEMBER, end=DECEMBER)

    assert invoice.total == expected
    assert invoice.lines.get().amount == expected


def test_invoice_numbers_are_gapless_across_customers(clock, amended, rate_card):
    other = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_create(customer=other, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    clock.now = JANUARY + timedelta(hours=25)

    assert periods_close_due() == 4

    numbers = list(Invoice.objects.order_by("number").values_list("number", flat=True))
    assert numbers == ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]
    zero = Invoice.objects.filter(customer=other).first()
    assert (zero.total, zero.status) == (D(0), "paid")  # nothing to collect
