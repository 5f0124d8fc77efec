"""Price corrections from an instant in the past: a diff per customer and period first
(stored nowhere), then, applied, the correction recorded and its periods re-rated; a
closed period is corrected once, at the next closing, as the preview said.

The scenario and its figures: correction_support.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from billing.corrections import (
    price_correction_apply,
    price_correction_preview,
    rate_card_rerate,
)
from billing.invoicing.closing import periods_close_due
from billing.models import CreditNote, Invoice
from billing.periods import period_money, period_rollups
from contracts.models import PriceCorrection
from contracts.price_corrections import price_correction_create
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create, customer_create
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant

from .conftest import GPT_4O_FORMULA, GPT_4O_RATES, NOVEMBER, rate
from .correction_support import (
    DECEMBER,
    JANUARY,
    LAST_WEEK,
    NOV,
    NOW,
    REASON,
    D,
    clock_set,
    stored,
    two_customers,
)


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch)


@pytest.fixture
def globex(clock, acme, rate_card):
    return two_customers(clock, acme, rate_card)


def correction(rate_card, **fields) -> dict:
    return {
        "rate_card": rate_card,
        "price": "gpt-4o",
        "effective_from": LAST_WEEK,
        "rates": {"rate_out": "5.00"},
        "reason": REASON,
        "created_by": "ops",
        **fields,
    }


def figures(diff) -> list[tuple]:
    return [
        (line.label, line.old_events, line.old_amount, line.new_events, line.new_amount)
        for line in diff.lines
    ]


def period_total(customer, start) -> D:
    rollups = period_rollups(customer_id=customer.pk, start=start)
    return period_money(customer=customer, start=start, end=rollups.end, rollups=rollups)[2].total


def test_the_preview_shows_each_customer_and_period_and_stores_nothing(rate_card, acme, globex):
    before = stored()

    preview = price_correction_preview(**correction(rate_card))

    # One version, 2, a copy of version 1 from November 27 with output at 5.00.
    assert [(v.number, v.effective_from, v.copies) for v in preview.versions] == [(2, LAST_WEEK, 1)]
    assert (preview.applied, preview.correction, preview.reason) == (False, None, REASON)
    assert [c.customer.external_id for c in preview.customers] == ["acme", "globex"]
    acme_periods, globex_periods = (c.periods for c in preview.customers)

    # acme's November: the call of November 5 keeps its 10.00, the two of November 28
    # become 5.00 each: usage 30.00 -> 20.00, with the fee 60.00 -> 50.00.
    november, december = acme_periods
    assert (november.diff.period_start, november.diff.period_end) == (NOVEMBER, DECEMBER)
    assert figures(november.diff) == [("gpt-4o · gpt-4o", 3, D(30), 3, D(20))]
    assert (november.diff.lines[0].old_source, november.diff.lines[0].new_source) == (
        "Standard v1, terms 1",
        "Standard v1, terms 1; Standard v2, terms 1",
    )
    assert (november.diff.old_total, november.diff.new_total) == (D(60), D(50))
    # It is invoiced (INV-000001, unpaid): the next closing credits 10.00 on it, recorded
    # only (money never received is never given back as credits).
    closed = november.closed
    assert closed is not None and closed.invoice.number == "INV-000001"
    assert (closed.billed_total, closed.total_after) == (D(60), D(50))
    assert (closed.billed_credits, closed.credits_after) == (D(0), D(0))
    assert (closed.description, closed.credit_note, closed.destination, closed.lines) == (
        f"Correction of invoice INV-000001, {NOV}: usage repriced",
        D("10.00"),
        "none",
        [],
    )
    # acme's December is open: the call of December 3 10.00 -> 5.00, the total 40.00 -> 35.00.
    assert figures(december.diff) == [("gpt-4o · gpt-4o", 1, D(10), 1, D(5))]
    assert (december.diff.old_total, december.diff.new_total, december.closed) == (
        D(40),
        D(35),
        None,
    )
    # globex: December's 2M output tokens, 20.00 -> 10.00; its November had no usage.
    (globex_december,) = globex_periods
    assert figures(globex_december.diff) == [("gpt-4o · gpt-4o", 1, D(20), 1, D(10))]
    # Nothing was stored: no version, price, correction, queued event or rating.
    assert stored() == before


def test_applying_re_rates_the_open_periods_and_the_next_closing_credits_the_closed_one_once(
    clock, rate_card, acme, globex
):
    applied = price_correction_apply(**correction(rate_card))

    # The correction is kept with who and why, and its version 2.
    record = PriceCorrection.objects.get()
    assert (record.reason, record.created_by, record.created_at) == (REASON, "ops", NOW)
    assert list(record.versions.values_list("number", "effective_from")) == [(2, LAST_WEEK)]
    assert (applied.applied, applied.correction) == (True, record)
    # acme's November (3 events) and December (1) and globex's December (1) were queued.
    assert [
        (p.customer.external_id, p.period_start, p.events, p.invoice and p.invoice.number)
        for p in applied.queued
    ] == [("acme", NOVEMBER, 3, "INV-000001"), ("acme", DECEMBER, 1, None),
          ("globex", DECEMBER, 1, None)]  # fmt: skip
    assert rate() == 5

    # The open periods show the new prices.
    assert period_total(acme, DECEMBER) == D(35)
    assert period_total(globex, DECEMBER) == D(10)
    assert period_total(acme, NOVEMBER) == D(50)

    # December closes: 35.00 for acme, and 10.00 credited on November's invoice, once.
    clock.now = JANUARY + timedelta(hours=25)
    assert periods_close_due() == 2
    note = CreditNote.objects.get()
    assert (note.invoice.number, note.amount, note.destination, note.memo) == (
        "INV-000001",
        D("10.00"),
        "none",
        f"Correction of invoice INV-000001, {NOV}: usage repriced",
    )
    december = Invoice.objects.get(customer=acme, period_start=DECEMBER)
    assert list(december.lines.values_list("kind", "amount")) == [
        ("fixed_fee", D("30.00")),
        ("usage", D("5.00")),
    ]
    clock.now += timedelta(days=31)
    periods_close_due()
    assert CreditNote.objects.count() == 1


def test_a_closed_period_paid_by_credits_gets_them_back_and_nothing_else(clock, rate_card):
    # Given acme with 100.00 of credits before any usage: November's 30.00 and December's
    # 10.00 of usage were paid by them (60.00 left).
    clock.now = NOVEMBER
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    two_customers(clock, acme, rate_card)
    assert Wallet.objects.get(customer=acme).balance == D(60)

    preview = price_correction_preview(**correction(rate_card))

    # November's charges fall by 10.00 and the credits drawn for it by as much: nothing
    # is owed either way, no credit note, no line.
    closed = preview.customers[0].periods[0].closed
    assert (closed.billed_total, closed.total_after) == (D(60), D(50))
    assert (closed.billed_credits, closed.credits_after) == (D(30), D(20))
    assert (closed.credit_note, closed.lines, closed.paid_by_credits) == (D(0), [], True)
    assert closed.sentence == (
        "10.00 USD of credits goes back to the wallet, nothing more: the credits cover the "
        "difference."
    )

    price_correction_apply(**correction(rate_card))
    rate()
    # 10.00 back for November, 5.00 for December.
    assert Wallet.objects.get(customer=acme).balance == D(75)
    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()
    assert not CreditNote.objects.exists()
    december = Invoice.objects.get(customer=acme, period_start=DECEMBER)
    assert december.total == D("30.00")  # the fee; usage 5.00 paid by credits


def test_a_correction_upward_of_a_closed_period_is_a_line_on_the_next_invoice(
    clock, rate_card, acme, globex
):
    preview = price_correction_preview(**correction(rate_card, rates={"rate_out": "20.00"}))

    # November's two calls of November 28: 10.00 -> 20.00 each, 20.00 more, billed on the
    # invoice of December.
    closed = preview.customers[0].periods[0].closed
    assert closed.next_invoice == "the invoice of 2026-12-01 to 2026-12-31"
    assert [(line.kind, line.description, line.exact_amount) for line in closed.lines] == [
        ("late_usage", f"Correction of invoice INV-000001, {NOV}: usage repriced", D(20))
    ]
    assert closed.credit_note == D(0)
    assert closed.sentence == (
        f"the line “Correction of invoice INV-000001, {NOV}: usage repriced” of 20.00 USD on "
        "the invoice of "
        "2026-12-01 to 2026-12-31."
    )

    price_correction_apply(**correction(rate_card, rates={"rate_out": "20.00"}))
    rate()
    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()
    december = Invoice.objects.get(customer=acme, period_start=DECEMBER)
    assert list(december.lines.values_list("kind", "description", "amount")) == [
        ("fixed_fee", "Monthly fee, 2026-12-01 to 2026-12-31", D("30.00")),
        ("usage", "gpt-4o", D("20.00")),
        ("late_usage", f"Correction of invoice INV-000001, {NOV}: usage repriced", D("20.00")),
    ]


def test_a_customer_on_another_card_is_not_reached(rate_card, acme, globex):
    other = rate_card_create(name="Premium", currency="USD", effective_from=NOVEMBER)
    price_create(version=other.versions.get(), name="gpt-4o", model_pattern="gpt-4o",
                 rates=GPT_4O_RATES, formula=GPT_4O_FORMULA)  # fmt: skip
    initech = customer_create(external_id="initech", name="Initech", currency="USD")
    contract_create(customer=initech, starts_at=NOVEMBER, rate_card=other, anchor_day=1)

    preview = price_correction_preview(**correction(rate_card))

    assert [c.customer.external_id for c in preview.customers] == ["acme", "globex"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"effective_from": NOVEMBER - timedelta(days=1)}, "effective_from"),
        ({"price": "gpt-5"}, "price"),
    ],
)
@pytest.mark.parametrize("service", [price_correction_preview, price_correction_apply])
def test_a_refused_correction_stores_nothing(rate_card, acme, globex, service, fields, field):
    before = stored()

    with pytest.raises(ValidationError) as refused:
        service(**correction(rate_card, **fields))

    assert field in refused.value.message_dict
    assert stored() == before


def test_every_customer_of_a_card_is_re_rated_from_one_instant(rate_card, acme, globex):
    # Given the card corrected from last week without re-rating what it reaches
    price_correction_create(**correction(rate_card))
    before = stored()

    diffs = rate_card_rerate(rate_card=rate_card, at=NOW)

    assert [(c.external_id, p.diff.old_total, p.diff.new_total) for c, p in diffs] == [
        ("acme", D(40), D(35)),
        ("globex", D(20), D(10)),
    ]
    assert stored() == before
    rate_card_rerate(rate_card=rate_card, at=NOW, apply=True)
    assert rate() == 2
    assert (period_total(acme, DECEMBER), period_total(globex, DECEMBER)) == (D(35), D(10))
