"""An invoice's arithmetic reads from its face: the discount, allowance and minimum lines
are worked out from the rounded usage lines (pricing.invoice), so a customer inside their
allowance is billed exactly their fee; and the credits line is what the ledger drew for the
period, the rounding settled by an explicit ledger entry (pricing.credits, rule 4), so
usage paid by credits asks no cash. Figures by hand."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.invoicing.closing import periods_close_due
from billing.models import Invoice
from contracts.services import contract_create
from wallets.models import CreditGrant, LedgerEntry, Wallet
from wallets.services import credit_grant

from .conftest import MODELS, NOVEMBER, event, ingest, rate
from .invoice_support import Clock, clock_set

D = Decimal
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
#: 500 output tokens at 10.00 per 1M: 0.005 exactly, 0.01 once rounded half up.
HALF_CENT = {"output_tokens": 500}
NOV = "2026-11-01 to 2026-11-30"


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


def close_november(clock, customer, card, credits: str = "", **terms) -> Invoice:
    contract_create(customer=customer, starts_at=NOVEMBER, rate_card=card, anchor_day=1, **terms)
    if credits:
        credit_grant(customer=customer, amount=credits, source=CreditGrant.Source.PURCHASED)
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    ingest(
        *(
            event(f"e{number}", datetime(2026, 11, 5, 10 + number, tzinfo=UTC), model=model,
                  metrics=HALF_CENT)
            for number, model in enumerate(MODELS)
        )
    )  # fmt: skip
    rate()
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 1
    return Invoice.objects.get()


def lines_of(invoice: Invoice) -> list[tuple]:
    return list(invoice.lines.values_list("kind", "description", "amount"))


def test_usage_inside_the_allowance_nets_to_zero_and_the_invoice_is_the_fee(
    clock, acme, three_models
):
    invoice = close_november(
        clock, acme, three_models, fixed_fee=D("500"), included_allowance=D("100")
    )

    # Three lines of 0.005 each are 0.01 each on the face: 0.03, all inside the allowance.
    # (From the exact 0.015, the allowance line would be 0.02 and the invoice 500.01.)
    assert lines_of(invoice) == [
        ("fixed_fee", "Monthly fee, 2026-11-01 to 2026-11-30", D("500")),
        ("usage", "gpt-4o", D("0.01")),
        ("usage", "gpt-4o-mini", D("0.01")),
        ("usage", "o3-mini", D("0.01")),
        ("allowance", f"Included usage allowance: 0.03 USD of 100.00 USD used, {NOV}", D("-0.03")),
    ]
    assert invoice.total == D("500.00")


def test_the_minimum_true_up_tops_the_usage_on_the_face_up_to_the_minimum(
    clock, acme, three_models
):
    invoice = close_november(clock, acme, three_models, minimum_commitment=D("1"))

    # 1.00 - 0.03 on the face = 0.97. (From the exact 0.015: 0.985, 0.99, and 1.02 in all.)
    assert lines_of(invoice)[-1] == (
        "minimum",
        f"Top-up to the minimum commitment of 1.00 USD, {NOV}",
        D("0.97"),
    )
    assert invoice.total == D("1.00")


def test_a_discount_is_taken_off_the_rounded_usage_and_a_zero_is_never_negative(
    clock, acme, three_models, api
):
    invoice = close_november(clock, acme, three_models, discount_percent=D("10"))

    # 10 % of the 0.03 on the face is 0.003: 0.00 once rounded, so the invoice is 0.03.
    assert lines_of(invoice)[-1] == (
        "discount",
        "Discount 10 % on usage, 2026-11-01 to 2026-11-30",
        D("0"),
    )
    assert invoice.total == D("0.03")
    answer = api.get(f"/api/v1/customers/acme/invoices/{invoice.number}").json()
    assert [line["amount"] for line in answer["lines"]] == ["0.01", "0.01", "0.01", "0.00"]


def wallet_of(customer) -> tuple[Decimal, list[tuple]]:
    """The wallet's balance, and its entries after the purchase: (kind, amount, reason)."""
    wallet = Wallet.objects.get(customer=customer)
    entries = wallet.entries.exclude(grant__source=CreditGrant.Source.PURCHASED, kind="grant")
    return wallet.balance, list(entries.order_by("pk").values_list("kind", "amount", "reason"))


ROUNDING = "rounding to the minor unit of the credits applied on INV-000001"


def test_usage_paid_by_credits_asks_no_cash_and_the_ledger_draws_what_the_invoice_says(
    clock, acme, three_models
):
    invoice = close_november(clock, acme, three_models, credits="1")

    # The credits drew the exact 0.015 as it was rated; the face is 0.03, so closing draws
    # the 0.015 of rounding: the credits line is 0.03 and nothing is asked in cash.
    assert lines_of(invoice)[-1] == (
        "credits",
        "Prepaid credits applied, 2026-11-01 to 2026-11-30",
        D("-0.03"),
    )
    assert invoice.total == D("0.00")
    assert invoice.status == Invoice.Status.PAID
    balance, entries = wallet_of(acme)
    assert balance == D("0.97")
    assert entries == [
        (LedgerEntry.Kind.DRAW_DOWN, D("-0.015"), ""),  # the three calls, drawn as rated
        (LedgerEntry.Kind.DRAW_DOWN, D("-0.015"), ROUNDING),
    ]


def test_a_wallet_that_cannot_pay_the_rounding_applies_its_draws_rounded_down(
    clock, acme, three_models
):
    invoice = close_november(clock, acme, three_models, credits="0.015")

    # 0.015 drawn, nothing short, but nothing left for the 0.015 of rounding: the line is
    # 0.01 (0.015 rounded down) and 0.005 goes back; 0.03 - 0.01 = 0.02 is due.
    assert lines_of(invoice)[-1][2] == D("-0.01")
    assert invoice.total == D("0.02")
    balance, entries = wallet_of(acme)
    assert balance == D("0.005")
    assert entries[-1] == (LedgerEntry.Kind.GRANT, D("0.005"), ROUNDING)


def test_credits_that_fell_short_apply_what_they_drew_rounded_down(clock, acme, three_models):
    invoice = close_november(clock, acme, three_models, credits="0.012")

    # 0.012 drawn, 0.003 short: the line is 0.01, 0.002 goes back, 0.02 is due.
    assert lines_of(invoice)[-1][2] == D("-0.01")
    assert invoice.total == D("0.02")
    assert wallet_of(acme)[0] == D("0.002")


def test_a_late_event_that_leaves_the_face_as_it_was_moves_no_money_in_the_end(
    clock, acme, three_models
):
    close_november(clock, acme, three_models, credits="1")
    # A late 0.004 on gpt-4o: its line is 0.009 exactly, still 0.01 on the face. The
    # draw-down draws the 0.004 (keeping what closing settled); the next closing gives it
    # back, and bills and credits nothing for November.
    ingest(event("late", datetime(2026, 11, 30, 23, tzinfo=UTC), metrics={"output_tokens": 400}))
    rate()
    assert wallet_of(acme)[0] == D("0.966")
    clock.now = datetime(2027, 1, 2, 2, tzinfo=UTC)
    assert periods_close_due() == 1

    december = Invoice.objects.get(period_start=DECEMBER)
    assert lines_of(december) == []
    assert december.total == D("0.00")
    balance, entries = wallet_of(acme)
    assert balance == D("0.97")
    assert entries[-2:] == [
        (LedgerEntry.Kind.DRAW_DOWN, D("-0.004"), ""),
        (LedgerEntry.Kind.GRANT, D("0.004"), ROUNDING.replace("000001", "000002")),
    ]
