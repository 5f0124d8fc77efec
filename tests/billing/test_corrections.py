"""Corrections of closed periods never pay twice: the difference between what a period
should have billed and what it billed goes to exactly one place, whatever its cause, and
whether or not the customer had usage since. Figures by hand.

The scenario: acme on the Standard card from November 1, a fee of 30.00 a month; three
calls of 1M output tokens on November 5 (10.00 each at 10.00 per 1M): November's invoice
is 30.00 + 30.00 = 60.00, closed on December 2.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.invoicing.closing import periods_close_due
from billing.invoicing.credit_notes import credit_note_issue
from billing.models import BillingPeriod, CreditNote, Invoice, InvoiceLine
from billing.rating.rerating import period_rerate
from contracts.rate_cards import price_update, rate_card_version_schedule
from contracts.services import contract_amend, contract_create, contract_end
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant

from .conftest import NOVEMBER, event, ingest, rate
from .invoice_support import Clock, clock_set

DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
JANUARY = datetime(2027, 1, 1, tzinfo=UTC)
MILLION_OUT = {"output_tokens": 1_000_000}
NOV = "2026-11-01 to 2026-11-30"


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@pytest.fixture
def contract(clock, acme, rate_card):
    return contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, fixed_fee=D("30")
    )


def november_closed(clock, *, calls: int = 3) -> Invoice:
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    ingest(
        *(
            event(f"nov-{n}", datetime(2026, 11, 5, 10 + n, tzinfo=UTC), metrics=MILLION_OUT)
            for n in range(calls)
        )
    )
    rate()
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 1
    return Invoice.objects.get()


def output_rate_corrected(clock, rate_card, customer, amount: str) -> None:
    """A correction from November 1 of gpt-4o's output rate, applied to November."""
    clock.now = DECEMBER + timedelta(days=3)
    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=NOVEMBER, correction=True
    )
    price = version.prices.get()
    price_update(price=price, rates={**price.rates, "rate_out": {"amount": amount, "per": 10**6}})
    period_rerate(customer=customer, at=datetime(2026, 11, 20, tzinfo=UTC), apply=True)
    rate()


def december_closed(clock) -> Invoice:
    clock.now = JANUARY + timedelta(hours=25)
    assert periods_close_due() == 1
    return Invoice.objects.get(period_start=DECEMBER)


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(invoice.lines.values_list("kind", "description", "amount"))


@pytest.mark.parametrize(
    ("status", "stripe_id", "destination", "wallet"),
    [
        ("finalized", "", "none", D(0)),  # unpaid: never credited to the wallet
        ("paid", "", "wallet", D(15)),
        ("finalized", "in_1", "stripe", D(0)),
    ],
    ids=["unpaid", "paid", "in stripe"],
)
def test_a_period_paid_in_cash_re_rated_lower_is_one_credit_note(
    clock, contract, rate_card, status, stripe_id, destination, wallet
):
    november = november_closed(clock)
    Invoice.objects.filter(pk=november.pk).update(status=status, stripe_id=stripe_id)

    output_rate_corrected(clock, rate_card, contract.customer, "5.00")
    december = december_closed(clock)

    # Usage 30.00 became 15.00: 15.00 back, on November's invoice, and nothing on December's
    # but its own fee.
    note = CreditNote.objects.get()
    assert (note.invoice, note.amount, note.destination, note.memo) == (
        november, D(15), destination, f"Correction of invoice INV-000001, {NOV}: usage repriced",
    )  # fmt: skip
    assert lines_of(december) == [("fixed_fee", "Monthly fee, 2026-12-01 to 2026-12-31", D(30))]
    assert sum(Wallet.objects.values_list("balance", flat=True), D(0)) == wallet


def test_a_period_paid_by_credits_re_rated_lower_gives_the_credits_back_once(
    clock, contract, rate_card
):
    credit_grant(customer=contract.customer, amount="100", source=CreditGrant.Source.PURCHASED)
    november = november_closed(clock)
    assert lines_of(november)[-1] == ("credits", f"Prepaid credits applied, {NOV}", D(-30))
    assert november.total == D(30)  # the fee; the usage was paid by credits

    output_rate_corrected(clock, rate_card, contract.customer, "5.00")
    december = december_closed(clock)

    # The credits drew 30.00, then 15.00 came back to the wallet as November was re-rated:
    # that is the whole correction. No credit note, and December asks nothing back.
    assert not CreditNote.objects.exists()
    assert lines_of(december) == [("fixed_fee", "Monthly fee, 2026-12-01 to 2026-12-31", D(30))]
    assert Wallet.objects.get().balance == D(85)
    period = BillingPeriod.objects.get(start=NOVEMBER)
    assert (period.billed_total, period.billed_credits) == (D(45), D(15))


def test_a_fee_changed_in_a_closed_period_without_usage_since_is_billed_once(clock, contract):
    november_closed(clock, calls=0)  # 30.00: the fee alone

    clock.now = DECEMBER + timedelta(days=3)
    contract_amend(
        contract=contract, effective_from=datetime(2026, 11, 16, tzinfo=UTC), fixed_fee=D("60")
    )
    december = december_closed(clock)

    # November's fee is now 30 x 15/30 + 60 x 15/30 = 45.00: 15.00 more, on December's
    # invoice, which names the period and the cause.
    assert lines_of(december) == [
        ("fixed_fee", "Monthly fee, 2026-12-01 to 2026-12-31", D(60)),
        ("late_usage", f"Correction of invoice INV-000001, {NOV}: contract terms changed", D(15)),
    ]
    assert december.total == D(75)
    clock.now += timedelta(days=40)
    periods_close_due()
    assert not InvoiceLine.objects.filter(
        kind="late_usage", invoice__period_start=JANUARY
    ).exists()  # billed once


def test_a_fee_lowered_in_a_closed_period_is_a_credit_note(clock, contract):
    november = november_closed(clock, calls=0)

    clock.now = DECEMBER + timedelta(days=3)
    contract_amend(
        contract=contract, effective_from=datetime(2026, 11, 16, tzinfo=UTC), fixed_fee=D("0")
    )
    december_closed(clock)

    # 30 x 15/30 + 0 = 15.00: 15.00 credited on November's invoice.
    note = CreditNote.objects.get()
    assert (note.invoice, note.amount, note.memo) == (
        november,
        D(15),
        f"Correction of invoice INV-000001, {NOV}: contract terms changed",
    )


def test_a_credit_note_never_takes_an_invoice_past_its_total(clock, contract, rate_card):
    november = november_closed(clock)
    credit_note_issue(invoice=november, amount=D(50), memo="Outage", destination="none")

    output_rate_corrected(clock, rate_card, contract.customer, "5.00")
    december = december_closed(clock)

    # 15.00 comes back: 10.00 is what is left of November's 60.00, the other 5.00 is a line
    # of December's invoice.
    note = CreditNote.objects.get(reason="rerating")
    assert note.amount == D(10)
    assert lines_of(december)[-1] == (
        "late_usage",
        f"Correction of invoice INV-000001, {NOV}: usage repriced, "
        "beyond what is left to credit on INV-000001",
        D(-5),
    )
    assert december.total == D(25)


def test_late_usage_paid_by_credits_shows_both_and_asks_no_cash(clock, contract):
    credit_grant(customer=contract.customer, amount="100", source=CreditGrant.Source.PURCHASED)
    november_closed(clock)

    clock.now = DECEMBER + timedelta(days=2)
    ingest(event("late", datetime(2026, 11, 29, tzinfo=UTC), metrics=MILLION_OUT))
    rate()
    december = december_closed(clock)

    assert lines_of(december) == [
        ("fixed_fee", "Monthly fee, 2026-12-01 to 2026-12-31", D(30)),
        ("late_usage", f"Correction of invoice INV-000001, {NOV}: 1 call received late", D(10)),
        ("credits", f"Prepaid credits applied, {NOV}", D(-10)),
    ]
    assert december.total == D(30)
    assert Wallet.objects.get().balance == D(60)


def events_of(api, number: str, position: int) -> list[tuple]:
    page = api.get(f"/api/v1/customers/acme/invoices/{number}/lines/{position}/events").json()
    return [(event["event_id"], event["amount"]) for event in page["results"]]


def test_a_line_lists_the_events_it_billed_whatever_re_rating_does_later(
    clock, contract, rate_card, api
):
    november_closed(clock)
    billed = [(f"nov-{n}", "10.000000000000") for n in range(3)]
    assert events_of(api, "INV-000001", 2) == billed

    output_rate_corrected(clock, rate_card, contract.customer, "20.00")
    december = december_closed(clock)

    # November's usage line still lists the three events at what it billed them; the
    # correction line that bills their re-rating (+30.00) lists them at their new rate.
    assert events_of(api, "INV-000001", 2) == billed
    assert lines_of(december)[-1] == (
        "late_usage",
        f"Correction of invoice INV-000001, {NOV}: usage repriced",
        D(30),
    )
    assert events_of(api, december.number, 2) == [(f"nov-{n}", "20.000000000000") for n in range(3)]


def test_late_usage_of_an_ended_contract_is_billed_on_a_final_invoice_once(clock, contract):
    contract_end(contract=contract, ends_at=DECEMBER)
    november_closed(clock)

    clock.now = DECEMBER + timedelta(days=3)
    ingest(event("late", datetime(2026, 11, 29, tzinfo=UTC), metrics=MILLION_OUT))
    rate()
    clock.now += timedelta(hours=23)
    assert periods_close_due() == 0  # within the grace of the latest change
    clock.now += timedelta(hours=2)
    assert periods_close_due() == 1

    final = Invoice.objects.get(number="INV-000002")
    assert (final.period_start, final.period_end, final.total) == (NOVEMBER, DECEMBER, D(10))
    assert lines_of(final) == [
        ("late_usage", f"Correction of invoice INV-000001, {NOV}: 1 call received late", D(10))
    ]
    clock.now += timedelta(days=2)
    assert periods_close_due() == 0
    assert Invoice.objects.count() == 2


def test_usage_of_an_ended_contract_re_rated_lower_is_a_credit_note_alone(
    clock, contract, rate_card
):
    contract_end(contract=contract, ends_at=DECEMBER)
    november = november_closed(clock)

    output_rate_corrected(clock, rate_card, contract.customer, "5.00")
    clock.now += timedelta(hours=25)
    assert periods_close_due() == 1

    note = CreditNote.objects.get()
    assert (note.invoice, note.amount) == (november, D(15))
    assert Invoice.objects.count() == 1  # no invoice of nothing
