"""Budget alerts fire as usage is rated: each share of the period's budget once."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.models import UsageDrawDown
from billing.rating.rerating import period_rerate
from contracts.services import contract_amend
from wallets.alerts import alert_settings_update
from wallets.models import Alert, AlertDelivery, CreditGrant, Wallet
from wallets.services import credit_grant

from .conftest import NOVEMBER, NOW, rate, send

BIG = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's rates


@pytest.fixture
def delivered(django_capture_on_commit_callbacks):
    """Rating whose alerts are delivered when its transactions commit, as in production."""

    def rate_and_deliver() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            rate()

    return rate_and_deliver


def budget_alerts() -> list[tuple]:
    return list(
        Alert.objects.filter(kind="budget")
        .order_by("pk")
        .values_list("key", "share", "threshold", "amount", "period_start")
    )


def test_alerts_at_50_75_90_percent_arrive_once_each(contract, mailoutbox, delivered):
    # given a budget of 100.00 a period, and no credits
    acme = contract.customer
    alert_settings_update(customer=acme, budget=Decimal("100"))
    minutes = iter(range(100, 0, -1))

    def use(calls: int) -> None:
        send(*[(f"e{next(minutes)}", 0, "gpt-4o", BIG) for _ in range(calls)])
        delivered()

    # when usage is rated: 40, 50, 70, 80, 90, then 95
    for calls in (4, 1, 2, 1, 1):
        use(calls)
    send(("half", 1, "gpt-4o", {"output_tokens": 500_000}))
    delivered()

    # then 50, 75 and 90 % fired once each, with the usage that crossed them
    def alert(share: int, usage: int) -> tuple:
        key = f"budget 2026-11-01T00:00:00Z {share}%"
        return (key, share, Decimal(100), Decimal(usage), NOVEMBER)

    assert budget_alerts() == [alert(50, 50), alert(75, 80), alert(90, 90)]
    assert [(mail.to, mail.subject) for mail in mailoutbox] == [
        (["billing@acme.example"], f"acme: {share} % of your 100.00 USD budget used")
        for share in (50, 75, 90)
    ]
    assert mailoutbox[2].body == (
        "Acme Corp: Usage in the billing period from 2026-11-01 is 90.00 USD: 90 % of your "
        "budget of 100.00 USD.\n\nEach alert is sent once."
    )

    # and re-rating the whole period sends nothing again
    period_rerate(customer=acme, at=NOW, apply=True)
    delivered()
    assert len(budget_alerts()) == 3
    assert len(mailoutbox) == 3
    assert AlertDelivery.objects.filter(status="delivered").count() == 3
    # a customer without credits is still not drawn
    assert Wallet.objects.count() == 0
    assert UsageDrawDown.objects.get().drawn == Decimal(0)


def test_the_budget_counts_usage_after_discount_and_shares_crossed_together(contract):
    # given a 10 % discount from just after the period starts, and credits
    acme = contract.customer
    contract_amend(
        contract=contract,
        effective_from=NOVEMBER + timedelta(seconds=1),
        discount_percent=Decimal("10"),
    )
    credit_grant(customer=acme, amount="1000", source=CreditGrant.Source.PURCHASED)
    alert_settings_update(customer=acme, budget=Decimal("50"), credit_shares=[])

    # when 60.00 of usage is rated in one batch: 54.00 after discount
    send(*[(f"e{n}", n + 1, "gpt-4o", BIG) for n in range(6)])
    rate()

    # then every share up to 100 % fired in that batch, with 54.00
    assert [(key[-4:], amount) for key, _, _, amount, _ in budget_alerts()] == [
        (" 50%", Decimal(54)),
        (" 75%", Decimal(54)),
        (" 90%", Decimal(54)),
        ("100%", Decimal(54)),
    ]
    assert Wallet.objects.get().balance == Decimal(1000 - 54)


def test_without_a_budget_usage_fires_nothing(contract):
    send(*[(f"e{n}", n + 1, "gpt-4o", BIG) for n in range(20)])
    rate()

    assert (Alert.objects.count(), UsageDrawDown.objects.count()) == (0, 0)
