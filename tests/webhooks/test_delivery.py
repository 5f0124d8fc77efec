"""Billing webhooks delivered: signed so a receiver can check them with its secret, retried
with backoff on errors and timeouts, never sent twice for one successful attempt, replayed
as a new delivery of the same event."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest

from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import (
    delivery_replay,
    endpoint_create,
    endpoint_disable,
    endpoint_update,
    event_emit,
    webhook_deliveries_retry,
    webhook_delivery_send,
)
from webhooks.signing import webhook_signature

from .conftest import FINALIZED, T, finalized


def verified(headers: dict, body: bytes, secret: str) -> bool:
    """What a receiver does with `Tokentill-Signature: t=...,v1=...`, by hand."""
    parts = dict(part.split("=", 1) for part in headers["Tokentill-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    fresh = abs(int(parts["t"]) - time.time()) < 300
    return fresh and hmac.compare_digest(parts["v1"], expected.hexdigest())


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"a":1}'
    assert webhook_signature("whsec_test", 1700000000, body) == (
        hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    )
    assert webhook_signature("whsec_test", 1700000001, body) != webhook_signature(
        "whsec_test", 1700000000, body
    )


def test_an_event_is_posted_signed_with_the_endpoints_secret(endpoint, clock, receiver, sent):
    with sent():
        event = finalized()

    ((headers, body),) = receiver.requests
    delivery = WebhookDelivery.objects.get()
    assert json.loads(body) == {
        "id": event.event_id,
        "type": "invoice.finalized",
        "created_at": "2026-12-02T00:05:00Z",
        "data": FINALIZED,
    }
    assert event.event_id.startswith("evt_") and len(event.event_id) == 28
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "tokentill-webhooks"
    assert headers["Tokentill-Delivery"] == str(delivery.pk)
    assert verified(headers, body, endpoint.secret)
    assert not verified(headers, body, endpoint_create(url=receiver.url).secret)
    assert not verified(headers, body.replace(b"59.00", b"5.00"), endpoint.secret)
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) == 54
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.delivered_at == T
    assert delivery.history == [
        {"at": "2026-12-02T00:05:00+00:00", "response_status": 200, "error": "",
         "next_attempt_at": None},
    ]  # fmt: skip


def test_each_enabled_endpoint_that_takes_the_type_gets_a_delivery(db, receiver, clock, sent):
    everything = endpoint_create(url=receiver.url)
    invoices = endpoint_create(url=receiver.url, event_types=["invoice.finalized"])
    endpoint_create(url=receiver.url, event_types=["grant.created"])
    endpoint_disable(endpoint=endpoint_create(url=receiver.url))

    with sent():
        finalized()
        event_emit(event_type="grant.expired", data={"customer_id": "acme"})

    assert sorted(
        WebhookDelivery.objects.values_list("event__type", "endpoint_id", "status")
    ) == sorted(
        [
            ("invoice.finalized", everything.pk, "delivered"),
            ("invoice.finalized", invoices.pk, "delivered"),
            ("grant.expired", everything.pk, "delivered"),
        ]
    )
    assert len(receiver.requests) == 3


def test_an_event_is_stored_without_endpoints_and_nothing_is_sent(db, receiver, sent):
    with sent():
        event = finalized()

    assert (WebhookEvent.objects.get(), WebhookDelivery.objects.count()) == (event, 0)
    assert receiver.requests == []


def test_an_unknown_event_type_is_a_programming_error(db):
    with pytest.raises(ValueError, match=r"Unknown webhook event type 'invoice\.lost'"):
        event_emit(event_type="invoice.lost", data={})
    assert WebhookEvent.objects.count() == 0


def test_a_500_is_retried_after_a_minute_and_each_attempt_recorded(endpoint, clock, receiver, sent):
    receiver.statuses = [500, 200]
    with sent():
        finalized()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        "pending", 1, 500, "HTTP 500",
    )  # fmt: skip
    assert delivery.next_attempt_at == T + timedelta(minutes=1)

    # not due yet: nothing is sent
    assert webhook_deliveries_retry(now=T + timedelta(seconds=59)) == 0
    assert len(receiver.requests) == 1

    # due: sent again, the same body and delivery id, delivered
    assert webhook_deliveries_retry(now=T + timedelta(minutes=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        "delivered", 2, 200, "",
    )  # fmt: skip
    assert delivery.history == [
        {"at": "2026-12-02T00:05:00+00:00", "response_status": 500, "error": "HTTP 500",
         "next_attempt_at": "2026-12-02T00:06:00+00:00"},
        {"at": "2026-12-02T00:06:00+00:00", "response_status": 200, "error": "",
         "next_attempt_at": None},
    ]  # fmt: skip
    (first_headers, first_body), (second_headers, second_body) = receiver.requests
    assert first_body == second_body
    assert first_headers["Tokentill-Delivery"] == second_headers["Tokentill-Delivery"]

    # and never again
    assert webhook_deliveries_retry(now=T + timedelta(days=1)) == 0
    assert len(receiver.requests) == 2


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    endpoint, clock, receiver, sent, settings
):
    settings.TOKENTILL_WEBHOOK_TIMEOUT_SECONDS = 0.2
    receiver.delay = 1
    with sent():
        finalized()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.last_error == "TimeoutError: timed out"
    assert delivery.next_attempt_at == T + timedelta(minutes=1)


def test_a_delivery_that_keeps_failing_fails_after_the_backoff(endpoint, clock, receiver, sent):
    receiver.statuses = [503]
    with sent():
        finalized()

    # attempts 2 to 6, each when due: 1 min, 5 min, 30 min, 2 h, 12 h after the last
    at = T
    for wait in (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                 timedelta(hours=2), timedelta(hours=12)):  # fmt: skip
        at += wait
        assert WebhookDelivery.objects.get().next_attempt_at == at
        assert webhook_deliveries_retry(now=at - timedelta(seconds=1)) == 0
        assert webhook_deliveries_retry(now=at) == 0
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 6, None)
    assert [attempt["response_status"] for attempt in delivery.history] == [503] * 6
    assert [attempt["next_attempt_at"] for attempt in delivery.history] == [
        "2026-12-02T00:06:00+00:00",
        "2026-12-02T00:11:00+00:00",
        "2026-12-02T00:41:00+00:00",
        "2026-12-02T02:41:00+00:00",
        "2026-12-02T14:41:00+00:00",
        None,
    ]
    assert webhook_deliveries_retry(now=at + timedelta(days=30)) == 0
    assert len(receiver.requests) == 6


def test_sending_a_delivered_delivery_again_sends_nothing(endpoint, clock, receiver, sent):
    # given a delivery sent at commit
    with sent():
        finalized()
    delivery = WebhookDelivery.objects.get()

    # when its task runs again (a redelivered message), now and later
    assert webhook_delivery_send(delivery_id=delivery.pk) is None
    assert webhook_delivery_send(delivery_id=delivery.pk, now=T + timedelta(days=1)) is None

    # then the receiver got it once
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_a_delivery_claimed_by_another_worker_is_left_to_it(endpoint, clock, receiver):
    # given a delivery whose task has not run yet (no commit callbacks)
    finalized()
    delivery = WebhookDelivery.objects.get()
    receiver.delay = 0

    # when one worker attempts it, a second finds it claimed until the claim lapses
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=T + timedelta(minutes=5))
    assert webhook_delivery_send(delivery_id=delivery.pk, now=T) is None
    assert receiver.requests == []
    assert webhook_delivery_send(delivery_id=delivery.pk, now=T + timedelta(minutes=5)) == (
        "delivered"
    )
    assert len(receiver.requests) == 1


def test_a_disabled_endpoint_is_sent_nothing_and_its_waiting_deliveries_fail(
    endpoint, clock, receiver, sent
):
    # given a delivery waiting for its retry
    receiver.statuses = [500]
    with sent():
        finalized()

    # when the endpoint is disabled, and then the retry comes due
    endpoint_disable(endpoint=endpoint)
    assert webhook_deliveries_retry(now=T + timedelta(minutes=1)) == 0

    # then nothing more was sent, and the delivery failed saying why
    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error, delivery.next_attempt_at) == (
        "failed", 1, "Not sent: the endpoint is disabled.", None,
    )  # fmt: skip

    # and new events pass it by
    with sent():
        finalized()
    assert WebhookDelivery.objects.count() == 1


def test_a_replay_is_a_new_delivery_of_the_same_event(endpoint, clock, receiver, sent):
    # given an event delivered
    with sent():
        event = finalized()
    first = WebhookDelivery.objects.get()

    # when it is replayed a day later
    clock.at = T + timedelta(days=1)
    with sent():
        replay = delivery_replay(delivery=first)

    # then the receiver got the same event again, under a new delivery id
    (_, first_body), (replay_headers, replay_body) = receiver.requests
    assert replay_body == first_body
    assert json.loads(replay_body)["id"] == event.event_id
    assert replay_headers["Tokentill-Delivery"] == str(replay.pk) != str(first.pk)
    replay.refresh_from_db()
    assert (replay.event_id, replay.endpoint_id, replay.replay_of_id) == (
        event.pk, endpoint.pk, first.pk,
    )  # fmt: skip
    assert (replay.status, replay.attempts, replay.delivered_at) == (
        "delivered", 1, T + timedelta(days=1),
    )  # fmt: skip
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("delivered", 1)


def test_a_changed_url_is_used_by_the_next_attempt(endpoint, clock, receiver, sent):
    # given an endpoint whose URL is wrong
    endpoint_update(endpoint=endpoint, url=receiver.url.replace("/hooks/", "/nowhere/"))
    receiver.statuses = [404, 200]
    with sent():
        finalized()

    # when it is fixed before the retry
    endpoint_update(endpoint=endpoint, url=receiver.url)
    assert webhook_deliveries_retry(now=T + timedelta(minutes=1)) == 1

    assert WebhookDelivery.objects.get().attempts == 2
    assert receiver.paths == ["/nowhere/tokentill", "/hooks/tokentill"]
