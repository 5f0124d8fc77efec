"""Billing webhook events of wallets: grants made and expired, a low balance, and the
usage alerts (a share of a budget, a share of a grant); one per change, none for a change
that rolled back or was refused."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from wallets.alerts import alert_settings_update, alerts_check_usage
from wallets.models import Alert, CreditGrant
from wallets.services import (
    credit_grant,
    grants_credit_effective,
    grants_expire,
    wallet_draw_down,
)
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import endpoint_create

T = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
PURCHASED = CreditGrant.Source.PURCHASED


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: T)


def emitted(prefix: str = "") -> list[tuple[str, dict]]:
    events = WebhookEvent.objects.filter(type__startswith=prefix).order_by("pk")
    return [(event.type, event.data) for event in events]


def test_a_grant_emits_grant_created(acme, clock):
    grant = credit_grant(
        customer=acme, amount="120.5", source=PURCHASED, priority=2,
        expires_at=T + timedelta(days=30), reason="PO 42",
    )  # fmt: skip

    assert emitted() == [
        (
            "grant.created",
            {
                "customer_id": "acme",
                "grant_id": grant.pk,
                "source": "purchased",
                "amount": "120.500000000000",
                "currency": "USD",
                "priority": 2,
                "effective_at": "2026-11-15T12:00:00Z",
                "expires_at": "2026-12-15T12:00:00Z",
                "reason": "PO 42",
            },
        )
    ]


def test_what_is_left_of_a_grant_expiring_emits_grant_expired_once(acme, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: T)
    grant = credit_grant(
        customer=acme, amount="100", source=PURCHASED, expires_at=T + timedelta(days=1)
    )
    alert_settings_update(customer=acme, credit_shares=[])
    wallet_draw_down(wallet=grant.wallet, amount="40.25")

    later = T + timedelta(days=2)
    assert grants_expire(now=later) == 1
    assert grants_expire(now=later) == 0

    (expired,) = emitted("grant.expired")
    assert expired[1] == {
        **emitted("grant.created")[0][1],
        "expired": "59.750000000000",
    }


def test_a_low_balance_emits_wallet_low_balance_once_a_fall(acme, clock):
    alert_settings_update(customer=acme, balance_below=Decimal("20"), credit_shares=[])
    wallet = credit_grant(customer=acme, amount="50", source=PURCHASED).wallet

    wallet_draw_down(wallet=wallet, amount="35")
    wallet_draw_down(wallet=wallet, amount="5")

    alert = Alert.objects.get()
    assert emitted("wallet.") == [
        (
            "wallet.low_balance",
            {
                "alert_id": alert.pk,
                "customer_id": "acme",
                "kind": "balance",
                "share": None,
                "threshold": "20.000000000000",
                "amount": "15.000000000000",
                "currency": "USD",
                "period_start": None,
                "grant_id": None,
                "fired_at": "2026-11-15T12:00:00Z",
                "message": "acme: your credit balance of 15.00 USD is below 20.00 USD",
            },
        )
    ]


def test_usage_alerts_emit_their_events(acme, clock):
    alert_settings_update(customer=acme, budget=Decimal("100"), credit_shares=[50])
    november = datetime(2026, 11, 1, tzinfo=UTC)
    grant = credit_grant(customer=acme, amount="10", source=PURCHASED)

    alerts_check_usage(customer=acme, period_start=november, usage=Decimal("95"))
    wallet_draw_down(wallet=grant.wallet, amount="5")

    budget = [data for kind, data in emitted() if kind == "usage.budget_share_reached"]
    assert [(data["share"], data["amount"], data["period_start"]) for data in budget] == [
        (50, "95.000000000000", "2026-11-01T00:00:00Z"),
        (75, "95.000000000000", "2026-11-01T00:00:00Z"),
        (90, "95.000000000000", "2026-11-01T00:00:00Z"),
    ]
    ((_, used),) = emitted("grant.share_used")
    assert (used["share"], used["grant_id"], used["threshold"], used["amount"]) == (
        50, grant.pk, "10.000000000000", "5.000000000000",
    )  # fmt: skip
    assert used["message"] == "acme: 50 % of your 10.00 USD purchased credits used"


def test_a_grant_that_rolls_back_emits_nothing_and_sends_nothing(
    acme, clock, receiver, django_capture_on_commit_callbacks
):
    endpoint_create(url=receiver.url)

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        credit_grant(customer=acme, amount="10", source=PURCHASED)
        raise RuntimeError("the caller fails after")

    assert (CreditGrant.objects.count(), WebhookEvent.objects.count()) == (0, 0)
    assert (WebhookDelivery.objects.count(), receiver.requests) == (0, [])


def test_a_refused_grant_emits_nothing(acme, clock):
    with pytest.raises(ValidationError):
        credit_grant(customer=acme, amount="10", source="stolen")

    assert WebhookEvent.objects.count() == 0


def test_credits_granted_for_later_emit_grant_created_once_when_granted(acme, clock):
    later = T + timedelta(days=3)
    grant = credit_grant(customer=acme, amount="50", source=PURCHASED, effective_at=later)

    assert grants_credit_effective(now=later) == 1  # credited then: no second event

    ((kind, data),) = emitted()
    assert (kind, data["grant_id"], data["effective_at"], data["amount"]) == (
        "grant.created", grant.pk, "2026-11-18T12:00:00Z", "50.000000000000",
    )  # fmt: skip
