"""Top-ups: requested once when the balance falls under the threshold, granted once paid."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from wallets.alerts import alert_settings_update
from wallets.models import CreditGrant, TopUpRequest, Wallet
from wallets.services import credit_grant, wallet_draw_down
from wallets.topups import topup_cancel, topup_mark_paid

from .test_wallets import assert_consistent


@pytest.fixture
def wallet(acme) -> Wallet:
    """50.00 of credits; a top-up of 100.00 when the balance falls under 20.00."""
    alert_settings_update(
        customer=acme, topup_below=Decimal("20"), topup_amount=Decimal("100"), credit_shares=[]
    )
    return credit_grant(customer=acme, amount="50", source=CreditGrant.Source.PROMOTIONAL).wallet


def requests() -> list[tuple]:
    return list(TopUpRequest.objects.order_by("pk").values_list("status", "amount", "balance"))


def test_a_top_up_is_requested_once_however_many_draw_downs_follow(wallet):
    # down to 20.00 exactly: not under the threshold
    for _ in range(3):
        wallet_draw_down(wallet=wallet, amount="10")
    assert requests() == []

    # under it, then on to nothing and beyond
    for amount in ("10", "5", "5", "5", "5"):
        wallet_draw_down(wallet=wallet, amount=amount)

    assert requests() == [("requested", Decimal(100), Decimal(10))]


def test_paying_twice_grants_once(wallet):
    wallet_draw_down(wallet=wallet, amount="45")
    request = TopUpRequest.objects.get()

    grant = topup_mark_paid(request=request, created_by="ops", reference="pi_123")
    again = topup_mark_paid(request=request, created_by="ops")

    assert again == grant
    assert (grant.source, grant.amount, grant.reason, grant.created_by) == (
        "purchased", Decimal(100), f"top-up {request.pk} (pi_123)", "ops",
    )  # fmt: skip
    request.refresh_from_db()
    assert (request.status, request.grant, request.closed_by, request.reference) == (
        "paid", grant, "ops", "pi_123",
    )  # fmt: skip
    assert request.paid_at is not None
    wallet.refresh_from_db()
    assert wallet.balance == Decimal(105)
    assert wallet.grants.filter(source="purchased").count() == 1
    assert_consistent(wallet)

    # the next fall under the threshold asks again
    wallet_draw_down(wallet=wallet, amount="90")
    assert requests() == [
        ("paid", Decimal(100), Decimal(5)),
        ("requested", Decimal(100), Decimal(15)),
    ]


def test_a_cancelled_request_cannot_be_paid_and_nothing_changes(wallet):
    wallet_draw_down(wallet=wallet, amount="45")
    request = TopUpRequest.objects.get()
    assert topup_cancel(request=request, created_by="ops") is True
    assert topup_cancel(request=request, created_by="ops") is False

    with pytest.raises(ValidationError) as refused:
        topup_mark_paid(request=request, created_by="ops")

    assert refused.value.messages == ["This top-up is cancelled."]
    assert requests() == [("cancelled", Decimal(100), Decimal(5))]
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.grants.count()) == (Decimal(5), 1)


def test_no_top_up_without_a_threshold(acme):
    wallet = credit_grant(customer=acme, amount="50", source="purchased").wallet

    wallet_draw_down(wallet=wallet, amount="50")

    assert requests() == []
