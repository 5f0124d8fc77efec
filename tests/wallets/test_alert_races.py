"""Alerts under concurrency, on PostgreSQL with real threads: shares crossed by racing
draw-downs fire once each; two workers retrying at once send each delivery once."""

import json
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from wallets.alerts import alert_deliveries_retry, alert_settings_update
from wallets.models import Alert, AlertDelivery, CreditGrant
from wallets.services import credit_grant, wallet_draw_down

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")


@pytest.fixture
def held(monkeypatch):
    """Deliveries wait for the retry task instead of being sent at commit."""
    monkeypatch.setattr("wallets.alerts._deliver_later", lambda delivery_id: None)


def run_at_once(count: int, work) -> None:
    barrier = threading.Barrier(count)

    def run(number: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(number)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def test_racing_draw_downs_fire_each_share_once(acme, held):
    wallet = credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED).wallet

    # 20 threads draw 5.00 each from 100.00, all at once
    run_at_once(20, lambda n: wallet_draw_down(wallet=wallet, amount="5", reference=str(n)))

    assert sorted(Alert.objects.values_list("share", "amount")) == [
        (50, Decimal(50)),
        (75, Decimal(75)),
        (90, Decimal(90)),
        (100, Decimal(100)),
    ]
    assert AlertDelivery.objects.filter(channel="email").count() == 4


def test_two_workers_retrying_at_once_send_each_delivery_once(acme, held, receiver, mailoutbox):
    # given 4 alerts waiting to go out by email and webhook, and a slow receiver
    alert_settings_update(customer=acme, webhook_url=receiver.url)
    wallet = credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED).wallet
    for amount in ("50", "25", "15", "10"):
        wallet_draw_down(wallet=wallet, amount=amount)
    assert AlertDelivery.objects.filter(status="pending").count() == 8
    receiver.delay = 0.1

    # when two workers run the retry task at the same moment
    run_at_once(2, lambda n: alert_deliveries_retry())

    # then each delivery went out once
    ids = sorted(int(headers["Tokentill-Delivery"]) for headers, _ in receiver.requests)
    webhooks = AlertDelivery.objects.filter(channel="webhook")
    assert ids == sorted(webhooks.values_list("pk", flat=True))
    assert sorted(json.loads(body)["share"] for _, body in receiver.requests) == [50, 75, 90, 100]
    assert len(mailoutbox) == 4
    assert set(AlertDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}
