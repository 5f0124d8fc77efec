"""Billing webhooks under concurrency, on PostgreSQL with real threads: a delivery's task run
by two workers at once, and two sweeps at once, send each delivery once."""

import json

import pytest
from django.db import connection

from tests.wallets.test_alert_races import run_at_once
from webhooks.models import WebhookDelivery
from webhooks.services import (
    endpoint_create,
    event_emit,
    webhook_deliveries_retry,
    webhook_delivery_send,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")


@pytest.fixture
def waiting(receiver, monkeypatch) -> list[int]:
    """Four events to a slow receiver, their deliveries waiting for a worker (the tasks
    that would send them at commit are held back)."""
    monkeypatch.setattr("webhooks.services.task_send_on_commit", lambda name, *args: None)
    endpoint_create(url=receiver.url)
    for number in range(4):
        event_emit(event_type="grant.created", data={"grant_id": number})
    receiver.delay = 0.1
    return list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))


def test_a_delivery_task_run_by_two_workers_at_once_sends_once(waiting, receiver):
    first = waiting[0]

    run_at_once(2, lambda n: webhook_delivery_send(delivery_id=first))

    ((headers, body),) = receiver.requests
    assert headers["Tokentill-Delivery"] == str(first)
    assert json.loads(body)["data"] == {"grant_id": 0}
    assert WebhookDelivery.objects.values_list("status", "attempts").get(pk=first) == (
        "delivered", 1,
    )  # fmt: skip


def test_two_sweeps_at_once_send_each_delivery_once(waiting, receiver):
    run_at_once(2, lambda n: webhook_deliveries_retry())

    ids = sorted(int(headers["Tokentill-Delivery"]) for headers, _ in receiver.requests)
    assert ids == waiting
    assert sorted(json.loads(body)["data"]["grant_id"] for _, body in receiver.requests) == [
        0, 1, 2, 3,
    ]  # fmt: skip
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}
