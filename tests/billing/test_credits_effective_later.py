"""Credits granted for later pay for usage only once effective: usage rated before then is
short (billed in arrears) and paid by them once they are credited, where credits cover
arrears; usage rated after draws them at once."""

from datetime import timedelta
from decimal import Decimal

from billing.models import UsageDrawDown
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant, grants_credit_effective

from .conftest import NOW, rate, send
from .invoice_support import clock_set

BIG = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's 10.00 per 1M output
LATER = NOW + timedelta(hours=1)
D = Decimal


def drawn_short() -> tuple[Decimal, Decimal]:
    record = UsageDrawDown.objects.get()
    return record.drawn, record.short


def test_usage_before_the_credits_are_effective_is_short_and_they_pay_it_once_credited(
    contract, monkeypatch
):
    clock = clock_set(monkeypatch, NOW - timedelta(minutes=1))
    acme = contract.customer
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)
    credit_grant(
        customer=acme, amount="20", source=CreditGrant.Source.PURCHASED, effective_at=LATER
    )

    clock.now = NOW
    send(("a", 30, "gpt-4o", BIG))  # 10.00
    rate()
    assert drawn_short() == (D(5), D(5))  # the 20.00 are not there yet

    clock.now = LATER
    rate()
    assert drawn_short() == (D(5), D(5))  # effective, but nothing has credited them yet

    assert grants_credit_effective() == 1  # beat
    rate()  # the rater's pass offers the shortfall to credits credited since its last draw

    assert drawn_short() == (D(10), D(0))
    assert Wallet.objects.get().balance == D(15)


def test_usage_rated_once_they_are_effective_draws_them_before_beat_credits_them(
    contract, monkeypatch
):
    clock = clock_set(monkeypatch, LATER)
    acme = contract.customer
    credit_grant(
        customer=acme, amount="20", source=CreditGrant.Source.PURCHASED,
        effective_at=LATER + timedelta(minutes=1),
    )  # fmt: skip

    clock.now = LATER + timedelta(minutes=1)
    send(("a", 0, "gpt-4o", BIG))  # 10.00, at NOW
    rate()

    assert drawn_short() == (D(10), D(0))
    assert Wallet.objects.get().balance == D(10)
    assert grants_credit_effective() == 0
