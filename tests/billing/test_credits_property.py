"""A property of every invoice, whatever the usage, the credits and the terms: its total is
the sum of its lines, and the credits line is what the ledger drew for the period, to the
minor unit (pricing.credits, rule 4); usage the credits can pay in full asks no cash."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.closing import periods_close_due
from billing.models import Invoice
from contracts.services import contract_create
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant

from .conftest import MODELS, NOVEMBER, event, ingest, rate
from .invoice_support import Clock, clock_set

D = Decimal


class _Undo(Exception):
    """Rolls an example back, so each starts from the same database."""


@pytest.fixture
def clock(now, monkeypatch) -> Clock:
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    outputs=st.lists(st.integers(1, 3_000), min_size=1, max_size=5),
    credits=st.decimals(min_value=0, max_value=D("0.1"), places=3),
    allowance=st.sampled_from([D(0), D("0.01"), D("0.02")]),
    discount=st.sampled_from([D(0), D(10), D(25)]),
)
def test_the_credits_line_is_what_the_ledger_drew_and_the_total_is_the_sum_of_the_lines(
    clock, acme, three_models, outputs, credits, allowance, discount
):
    try:
        with transaction.atomic():
            clock.now = datetime(2026, 11, 1, 9, tzinfo=UTC)
            contract_create(
                customer=acme,
                starts_at=NOVEMBER,
                rate_card=three_models,
                anchor_day=1,
                included_allowance=allowance,
                discount_percent=discount,
            )
            if credits:
                credit_grant(customer=acme, amount=credits, source=CreditGrant.Source.PURCHASED)
            clock.now = datetime(2026, 11, 20, tzinfo=UTC)
            ingest(
                *(
                    event(f"e{n}", datetime(2026, 11, 5, 10, n, tzinfo=UTC),
                          model=MODELS[n % 3], metrics={"output_tokens": tokens})
                    for n, tokens in enumerate(outputs)
                )
            )  # fmt: skip
            rate()
            clock.now = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=25)
            assert periods_close_due() == 1

            invoice = Invoice.objects.get()
            amounts = dict(invoice.lines.values_list("kind", "amount"))
            assert invoice.total == sum(invoice.lines.values_list("amount", flat=True), D(0))
            applied = -amounts.get("credits", D(0))
            wallet = Wallet.objects.filter(customer=acme).first()
            left = wallet.balance if wallet else D(0)
            assert credits - left == applied  # what the ledger drew for the period
            exact_usage = sum(outputs) * D("0.00001")  # 10.00 per 1M output tokens
            if credits >= exact_usage + D("0.05"):  # the rounding is well within the wallet
                assert invoice.total == 0
            raise _Undo
    except _Undo:
        pass
