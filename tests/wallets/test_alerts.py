"""Alerts on credit shares, low balances and budgets; their email and signed webhook
deliveries, retried with backoff; settings refused when wrong."""

import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from contracts.services import customer_create, customer_update
from wallets.alerts import (
    alert_deliveries_retry,
    alert_delivery_retry,
    alert_settings_update,
    alerts_check_usage,
)
from wallets.models import Alert, AlertDelivery, AlertSettings, CreditGrant
from wallets.services import credit_grant, grants_expire, wallet_draw_down

T = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
PURCHASED = CreditGrant.Source.PURCHASED


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(T)
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """A block whose alerts are delivered when it commits, as in production."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def alerts() -> list[tuple]:
    return list(
        Alert.objects.order_by("pk").values_list("kind", "key", "share", "threshold", "amount")
    )


def test_credit_shares_alert_once_each_per_grant(acme, clock, mailoutbox, sent):
    # given a grant of 200.00 and the default shares (50, 75, 90, 100 %)
    grant = credit_grant(customer=acme, amount="200", source=PURCHASED)
    wallet = grant.wallet

    # when usage draws it down, past 100 % and on
    with sent():
        for amount in ("60", "39.99", "0.01", "60", "40", "10"):
            wallet_draw_down(wallet=wallet, amount=amount)

    # then each share fired once, with the credits used when it was crossed
    key = f"credits grant {grant.pk}"
    assert alerts() == [
        ("credits", f"{key} 50%", 50, Decimal(200), Decimal(100)),
        ("credits", f"{key} 75%", 75, Decimal(200), Decimal(160)),
        ("credits", f"{key} 90%", 90, Decimal(200), Decimal(200)),
        ("credits", f"{key} 100%", 100, Decimal(200), Decimal(200)),
    ]
    assert [(mail.to, mail.subject) for mail in mailoutbox] == [
        (["billing@acme.example"], f"acme: {share} % of your 200.00 USD purchased credits used")
        for share in (50, 75, 90, 100)
    ]
    assert mailoutbox[1].body == (
        "Acme Corp: 160.00 USD of the 200.00 USD granted on 2026-11-15 are used; 40.00 USD "
        "are left.\n\nEach alert is sent once."
    )
    assert set(AlertDelivery.objects.values_list("channel", "status", "attempts")) == {
        ("email", "delivered", 1)
    }

    # and a new grant has shares of its own
    second = credit_grant(customer=acme, amount="10", source="promotional")
    with sent():
        wallet_draw_down(wallet=wallet, amount="5")
    assert alerts()[4:] == [
        ("credits", f"credits grant {second.pk} 50%", 50, Decimal(10), Decimal(5))
    ]
    assert mailoutbox[4].subject == "acme: 50 % of your 10.00 USD promotional credits used"


def test_credits_that_expire_are_not_counted_as_used(acme, clock):
    credit_grant(customer=acme, amount="100", source=PURCHASED, expires_at=T + timedelta(days=1))
    wallet = acme.wallets.get()
    wallet_draw_down(wallet=wallet, amount="40")

    clock.at = T + timedelta(days=2)
    assert grants_expire() == 1

    assert alerts() == []


def test_the_low_balance_alerts_once_a_fall_and_again_after_it_recovered(acme, clock):
    # given an alert under 20.00 (credit shares off)
    alert_settings_update(customer=acme, balance_below=Decimal("20"), credit_shares=[])
    wallet = credit_grant(customer=acme, amount="50", source=PURCHASED).wallet

    # when the balance falls to 15, then 10
    wallet_draw_down(wallet=wallet, amount="35")
    wallet_draw_down(wallet=wallet, amount="5")

    # then it alerted once, at 15
    first = f"balance wallet {wallet.pk} #1"
    assert alerts() == [("balance", first, None, Decimal(20), Decimal(15))]
    message = "acme: your credit balance of 15.00 USD is below 20.00 USD"
    assert Alert.objects.get().message == message

    # when a grant lifts it to 40 and usage takes it to 15 again
    clock.at = T + timedelta(hours=1)
    credit_grant(customer=acme, amount="30", source=PURCHASED)
    wallet_draw_down(wallet=wallet, amount="25")

    # then the first episode ended with the grant, and the second alerted
    assert alerts() == [
        ("balance", first, None, Decimal(20), Decimal(15)),
        ("balance", f"balance wallet {wallet.pk} #2", None, Decimal(20), Decimal(15)),
    ]
    assert list(Alert.objects.order_by("pk").values_list("cleared_at", flat=True)) == [
        T + timedelta(hours=1),
        None,
    ]


def test_budget_shares_fire_once_each_per_period(acme, clock):
    alert_settings_update(customer=acme, budget=Decimal("100"))
    november, december = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)

    def check(start, usage: str) -> list[int]:
        fired = alerts_check_usage(customer=acme, period_start=start, usage=Decimal(usage))
        return [alert.share for alert in fired]

    assert check(november, "49.999999999999") == []
    assert check(november, "50") == [50]
    assert check(november, "50") == []
    assert check(november, "95") == [75, 90]
    assert check(november, "120") == [100]
    assert check(december, "60") == [50]
    assert Alert.objects.filter(kind="budget").count() == 5
    assert Alert.objects.get(key="budget 2026-12-01T00:00:00Z 50%").period_start == december


def test_an_alert_with_nowhere_to_go_is_recorded_without_deliveries(db, clock, mailoutbox, sent):
    quiet = customer_create(external_id="quiet", name="Quiet Ltd", currency="EUR")
    grant = credit_grant(customer=quiet, amount="10", source=PURCHASED)

    with sent():
        wallet_draw_down(wallet=grant.wallet, amount="5")

    assert [alert[1] for alert in alerts()] == [f"credits grant {grant.pk} 50%"]
    assert (AlertDelivery.objects.count(), mailoutbox) == (0, [])


def test_the_webhook_is_posted_signed_with_the_customers_secret(acme, clock, receiver, sent):
    # given a webhook and two addresses of the customer's own
    settings = alert_settings_update(
        customer=acme,
        webhook_url=receiver.url,
        emails="ops@acme.example, cfo@acme.example",
        credit_shares=[50],
    )
    grant = credit_grant(customer=acme, amount="10", source=PURCHASED)

    # when an alert fires
    with sent():
        wallet_draw_down(wallet=grant.wallet, amount="5")

    # then the receiver got it once, with a signature it can check
    alert = Alert.objects.get()
    webhook = alert.deliveries.get(channel="webhook")
    ((headers, body),) = receiver.requests
    assert json.loads(body) == {
        "type": "alert.credits",
        "alert_id": alert.pk,
        "customer_id": "acme",
        "kind": "credits",
        "share": 50,
        "threshold": "10.000000000000",
        "amount": "5.000000000000",
        "currency": "USD",
        "period_start": None,
        "grant_id": grant.pk,
        "fired_at": "2026-11-15T12:00:00Z",
        "message": "acme: 50 % of your 10.00 USD purchased credits used",
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["Tokentill-Delivery"] == str(webhook.pk)
    stamp, signature = (part.split("=", 1)[1] for part in headers["Tokentill-Signature"].split(","))
    expected = hmac.new(settings.webhook_secret.encode(), f"{stamp}.".encode() + body, "sha256")
    assert hmac.compare_digest(signature, expected.hexdigest())
    assert abs(int(stamp) - time.time()) < 60
    assert settings.webhook_secret.startswith("whsec_") and len(settings.webhook_secret) == 54
    assert (webhook.status, webhook.attempts, webhook.response_status) == ("delivered", 1, 200)
    assert webhook.delivered_at == T

    email = alert.deliveries.get(channel="email")
    assert (email.target, email.status) == ("ops@acme.example, cfo@acme.example", "delivered")


@pytest.fixture
def webhook_only(acme, receiver):
    """Alerts go to the receiver only (no email), at 50 % of a grant of 10.00."""
    customer_update(customer=acme, email="")
    alert_settings_update(customer=acme, webhook_url=receiver.url, credit_shares=[50])
    return credit_grant(customer=acme, amount="10", source=PURCHASED).wallet


def test_a_500_is_retried_after_a_minute_and_both_attempts_recorded(
    webhook_only, clock, receiver, sent
):
    receiver.statuses = [500, 200]
    with sent():
        wallet_draw_down(wallet=webhook_only, amount="5")

    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        "pending", 1, 500, "HTTP 500",
    )  # fmt: skip
    assert delivery.next_attempt_at == T + timedelta(minutes=1)

    # not due yet: nothing is sent
    assert alert_deliveries_retry(now=T + timedelta(seconds=59)) == 0
    assert len(receiver.requests) == 1

    # due: sent again, delivered
    assert alert_deliveries_retry(now=T + timedelta(minutes=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        "delivered", 2, 200, "",
    )  # fmt: skip
    assert delivery.history == [
        {"at": "2026-11-15T12:00:00+00:00", "response_status": 500, "error": "HTTP 500",
         "next_attempt_at": "2026-11-15T12:01:00+00:00"},
        {"at": "2026-11-15T12:01:00+00:00", "response_status": 200, "error": "",
         "next_attempt_at": None},
    ]  # fmt: skip
    (first_headers, first_body), (second_headers, second_body) = receiver.requests
    assert first_body == second_body
    assert first_headers["Tokentill-Delivery"] == second_headers["Tokentill-Delivery"]

    # and never again
    assert alert_deliveries_retry(now=T + timedelta(days=1)) == 0
    assert len(receiver.requests) == 2


@pytest.mark.parametrize(("status", "error"), [(404, "HTTP 404"), (302, "HTTP 302")])
def test_answers_other_than_2xx_are_not_delivered(
    webhook_only, clock, receiver, sent, status, error
):
    receiver.statuses = [status]
    with sent():
        wallet_draw_down(wallet=webhook_only, amount="5")

    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.response_status, delivery.last_error) == (
        "pending", status, error,
    )  # fmt: skip


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    webhook_only, clock, receiver, sent, settings
):
    settings.TOKENTILL_WEBHOOK_TIMEOUT_SECONDS = 0.2
    receiver.delay = 1
    with sent():
        wallet_draw_down(wallet=webhook_only, amount="5")

    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.last_error == "TimeoutError: timed out"


def test_a_delivery_that_keeps_failing_fails_after_the_backoff_and_can_be_retried(
    webhook_only, clock, receiver, sent
):
    receiver.statuses = [503]
    with sent():
        wallet_draw_down(wallet=webhook_only, amount="5")

    # attempts 2 to 6, each when due: 1 min, 5 min, 30 min, 2 h, 12 h after the last
    at = T
    for wait in (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                 timedelta(hours=2), timedelta(hours=12)):  # fmt: skip
        at += wait
        assert AlertDelivery.objects.get().next_attempt_at == at
        assert alert_deliveries_retry(now=at) == 0
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 6, None)
    assert [attempt["response_status"] for attempt in delivery.history] == [503] * 6
    assert alert_deliveries_retry(now=at + timedelta(days=30)) == 0
    assert len(receiver.requests) == 6

    # retried by hand: one more attempt, delivered this time
    receiver.statuses = [200]
    clock.at = at + timedelta(days=1)
    with sent():
        assert alert_delivery_retry(delivery=delivery) is True
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == (
        "delivered", 7, at + timedelta(days=1),
    )  # fmt: skip
    assert alert_delivery_retry(delivery=delivery) is False
    assert len(receiver.requests) == 7


def test_an_email_that_cannot_be_sent_is_retried(acme, clock, sent, monkeypatch):
    def refuse(**kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("wallets.alerts.send_mail", refuse)
    grant = credit_grant(customer=acme, amount="10", source=PURCHASED)
    with sent():
        wallet_draw_down(wallet=grant.wallet, amount="5")

    delivery = AlertDelivery.objects.get()
    assert (delivery.channel, delivery.status, delivery.attempts) == ("email", "pending", 1)
    assert delivery.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"


SHARES = (
    "Give a list of whole percentages from 1 to {most}, e.g. [50, 75, 90, 100]; an empty "
    "list [] turns these alerts off."
)
TOP_UP_HALF = "Set both the top-up threshold and amount, or neither."


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"budget_shares": [50, 50]}, "budget_shares", "Each percentage once."),
        ({"credit_shares": [50, 150]}, "credit_shares", SHARES.format(most=100)),
        ({"budget_shares": "50"}, "budget_shares", SHARES.format(most=1000)),
        ({"budget": Decimal("0")}, "budget", "Must be greater than 0."),
        ({"topup_below": Decimal("10")}, "topup_amount", TOP_UP_HALF),
        ({"emails": "ops@acme.example, nobody"}, "emails", "Enter a valid email address."),
        ({"webhook_url": "ftp://acme.example/hook"}, "webhook_url", "Enter a valid URL."),
    ],
)
def test_wrong_settings_are_refused_and_nothing_is_stored(acme, fields, field, message):
    with pytest.raises(ValidationError) as refused:
        alert_settings_update(customer=acme, **fields)

    assert refused.value.message_dict == {field: [message]}
    assert AlertSettings.objects.count() == 0


def test_the_webhook_secret_is_not_set_from_outside(acme):
    with pytest.raises(ValueError, match="webhook_secret cannot be set"):
        alert_settings_update(customer=acme, webhook_secret="whsec_chosen")

    assert AlertSettings.objects.count() == 0
