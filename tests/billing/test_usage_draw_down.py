"""Rated usage draws prepaid credits down in the rating transaction, beyond the allowance."""

from datetime import timedelta
from decimal import Decimal

from billing.models import UsageDrawDown
from billing.services import period_rerate
from contracts.services import contract_amend, price_update, rate_card_version_schedule
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant

from .conftest import NOVEMBER, NOW, rate, send

CALL = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}  # 0.01
BIG = {"output_tokens": 1_000_000}  # 10.00


def balance(customer) -> Decimal:
    return Wallet.objects.get(customer=customer).balance


def test_usage_draws_the_wallet_down_as_it_is_rated(contract):
    acme = contract.customer
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)

    send(("e1", 10, "gpt-4o", CALL), ("e2", 9, "gpt-4o", CALL))
    rate()

    assert balance(acme) == Decimal("99.98")
    entry = Wallet.objects.get().entries.get(kind="draw_down")
    assert (entry.amount, entry.reference) == (Decimal("-0.02"), "usage 2026-11-01")
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("0.02"), Decimal(0))

    # rating again draws nothing more
    assert rate() == 0
    assert balance(acme) == Decimal("99.98")


def test_the_allowance_and_discount_come_first_and_the_rest_is_short_when_credits_end(
    contract,
):
    acme = contract.customer
    contract_amend(
        contract=contract,
        effective_from=NOVEMBER + timedelta(seconds=1),
        included_allowance=Decimal("15"),
        discount_percent=Decimal("10"),
    )
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)

    # 3 x 10.00 = 30.00, less 10 % = 27.00, less an allowance of 15 (almost the whole
    # month's worth) = 12.00 billable: 5.00 from credits, 7.00 short
    send(("a", 30, "gpt-4o", BIG), ("b", 20, "gpt-4o", BIG), ("c", 10, "gpt-4o", BIG))
    rate()

    record = UsageDrawDown.objects.get()
    allowance = Decimal("15") * (30 * 86400 - 1) / (30 * 86400)  # prorated from 00:00:01
    billable = Decimal("27") - allowance.quantize(Decimal("1e-12"))
    assert record.drawn == Decimal("5")
    assert record.short == billable - 5
    assert balance(acme) == 0


def test_re_rating_lower_gives_credits_back(contract, rate_card):
    acme = contract.customer
    credit_grant(customer=acme, amount="50", source=CreditGrant.Source.PURCHASED)
    send(("a", 10, "gpt-4o", BIG))
    rate()
    assert balance(acme) == Decimal("40")

    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=NOVEMBER, correction=True
    )
    price = version.prices.get()
    price_update(price=price, rates={**price.rates, "rate_out": {"amount": "4", "per": 10**6}})
    period_rerate(customer=acme, at=NOW, apply=True)
    rate()

    assert balance(acme) == Decimal("46")
    refund = Wallet.objects.get().grants.get(source="refund")
    assert (refund.amount, refund.reason) == (Decimal("6"), "re-rated usage 2026-11-01")
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("4"), Decimal(0))


def test_customers_without_credits_are_not_drawn(contract):
    send(("a", 10, "gpt-4o", CALL))
    rate()

    assert Wallet.objects.count() == 0 and UsageDrawDown.objects.count() == 0
