"""An invoice's arithmetic reads from its face: the discount, allowance and minimum lines
are worked out from the rounded usage lines (pricing.invoice), so a customer inside their
allowance is billed exactly their fee. Figures by hand."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.invoicing.closing import periods_close_due
from billing.models import Invoice
from contracts.services import contract_create, price_create

from .conftest import GPT_4O_FORMULA, GPT_4O_RATES, NOVEMBER, event, ingest, rate
from .invoice_support import Clock, clock_set

D = Decimal
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
#: 500 output tokens at 10.00 per 1M: 0.005 exactly, 0.01 once rounded half up.
HALF_CENT = {"output_tokens": 500}
MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini")


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@pytest.fixture
def three_models(rate_card):
    """The Standard card also prices gpt-4o-mini and o3-mini at gpt-4o's rates, so three
    calls make three usage lines."""
    for model in MODELS[1:]:
        price_create(
            version=rate_card.versions.get(),
            name=model,
            model_pattern=model,
            rates=GPT_4O_RATES,
            formula=GPT_4O_FORMULA,
        )
    return rate_card


def close_november(clock, customer, card, **terms) -> Invoice:
    contract_create(customer=customer, starts_at=NOVEMBER, rate_card=card, anchor_day=1, **terms)
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
        ("fixed_fee", "Fixed fee, 2026-11-01 to 2026-11-30 (terms)", D("500")),
        ("usage", "gpt-4o (Standard v1, terms)", D("0.01")),
        ("usage", "gpt-4o-mini (Standard v1, terms)", D("0.01")),
        ("usage", "o3-mini (Standard v1, terms)", D("0.01")),
        ("allowance", "Included allowance used (0.03 of 100)", D("-0.03")),
    ]
    assert invoice.total == D("500.00")


def test_the_minimum_true_up_tops_the_usage_on_the_face_up_to_the_minimum(
    clock, acme, three_models
):
    invoice = close_november(clock, acme, three_models, minimum_commitment=D("1"))

    # 1.00 - 0.03 on the face = 0.97. (From the exact 0.015: 0.985, 0.99, and 1.02 in all.)
    assert lines_of(invoice)[-1] == (
        "minimum",
        "Minimum commitment true-up (minimum 1)",
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
        "Discount 10 %, 2026-11-01 to 2026-11-30",
        D("0"),
    )
    assert invoice.total == D("0.03")
    answer = api.get(f"/api/v1/customers/acme/invoices/{invoice.number}").json()
    assert [line["amount"] for line in answer["lines"]] == ["0.01", "0.01", "0.01", "0.00"]
