"""Closing periods in several processes at once, on PostgreSQL: each period closes once,
and the invoice numbers have no gaps and no repeats."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from billing.invoicing.closing import periods_close_due
from billing.models import BillingPeriod, Invoice
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create, customer_create

from .test_rating_races import race

pytestmark = pytest.mark.django_db(transaction=True)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMERS = 12


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between processes are tested on PostgreSQL")


def _close(now: datetime) -> int:
    return periods_close_due(now=now)


def customers_with_a_fee(count: int) -> None:
    """`count` customers (c0, c1, ...) on a card from November 1 with a fee of 10.00 a
    month and no usage: each period closes into an invoice of 10.00."""
    card = rate_card_create(name="Standard", currency="USD", effective_from=NOVEMBER)
    price_create(
        version=card.versions.get(), name="any", model_pattern="*",
        rates={"rate_out": {"amount": "1", "per": 1}}, formula="output_tokens * rate_out",
    )  # fmt: skip
    for number in range(count):
        customer = customer_create(external_id=f"c{number}", name=f"C{number}", currency="USD")
        contract_create(
            customer=customer, starts_at=NOVEMBER, rate_card=card, anchor_day=1,
            fixed_fee=Decimal("10"),
        )  # fmt: skip


def test_four_processes_closing_at_once_close_each_period_once(db):
    customers_with_a_fee(CUSTOMERS)
    after_two_periods = datetime(2027, 1, 2, 1, tzinfo=UTC)

    closed = race(_close, [(after_two_periods,)] * 4)

    assert sum(closed) == CUSTOMERS * 2
    assert BillingPeriod.objects.count() == CUSTOMERS * 2
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:06d}" for n in range(1, CUSTOMERS * 2 + 1)]
    assert set(Invoice.objects.values_list("total", flat=True)) == {Decimal("10")}
    assert periods_close_due(now=after_two_periods + timedelta(hours=1)) == 0
