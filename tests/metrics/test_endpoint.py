"""GET /metrics: refused without the token, absent without the setting, and after known work
its figures are exactly that work's (docs/operations/metrics.md)."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.test import Client

from billing import metrics as billing_metrics
from billing.models import DrawDownDue
from billing.rating.store import draw_downs_queue
from common import metrics as common_metrics
from metering import metrics as metering_metrics
from metering.models import UsageEvent
from metering.sealing import events_seal
from webhooks.models import WebhookDelivery
from webhooks.services import (
    endpoint_create,
    endpoint_disable,
    event_emit,
    webhook_deliveries_retry,
)

from .support import TOKEN, change, figure, parse, scrape


@pytest.fixture
def token(settings):
    settings.TOKENTILL_METRICS_TOKEN = TOKEN


#: An hour ago, to the second: a resend of an event carries the same instant.
AN_HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()


def an_event(event_id: str, **overrides) -> dict:
    event = {
        "event_id": event_id,
        "customer_id": "acme",
        "timestamp": AN_HOUR_AGO,
        "model": "gpt-4o",
        "metrics": {"input_tokens": 1200, "output_tokens": 350},
    }
    event.update(overrides)
    return {name: value for name, value in event.items() if value is not ...}


def post_events(api, events: list[dict]):
    body = orjson.dumps({"events": events})
    return api.post("/api/v1/events", data=body, content_type="application/json")


# --- who may scrape -------------------------------------------------------------------------


def test_without_the_setting_the_endpoint_does_not_exist(db, settings):
    settings.TOKENTILL_METRICS_TOKEN = ""

    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_a_missing_or_wrong_token_is_refused_with_nothing_of_the_figures(db, token, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = Client().get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"tokentill_" not in response.content


def test_the_token_opens_it_and_only_get_is_answered(db, token):
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --- the figures after known work -----------------------------------------------------------


def test_ingest_counts_each_outcome_and_each_reason(api, acme, token):
    # given an event stored before
    assert post_events(api, [an_event("e-0")]).status_code == 202
    before = scrape()

    # when a batch brings 3 new events, a resend of e-0, and 2 refused: one with a negative
    # count (invalid), one with an unknown field and no model (unknown_field and required)
    response = post_events(
        api,
        [
            an_event("e-1"),
            an_event("e-0"),
            an_event("e-2", metrics={"input_tokens": -5}),
            an_event("e-3"),
            an_event("e-4", model=..., colour="red"),
            an_event("e-5"),
        ],
    )
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 1, 2)
    after = scrape()

    # then the counters moved by exactly that
    events, rejections = "tokentill_ingest_events_total", "tokentill_ingest_rejections_total"
    assert change(before, after, events, outcome="accepted") == 3
    assert change(before, after, events, outcome="duplicate") == 1
    assert change(before, after, events, outcome="rejected") == 2
    moved = {
        labels: after[(name, labels)] - before.get((name, labels), 0.0)
        for (name, labels) in after
        if name == rejections and after[(name, labels)] != before.get((name, labels), 0.0)
    }
    assert moved == {
        (("reason", "invalid"),): 1,
        (("reason", "unknown_field"),): 1,
        (("reason", "required"),): 1,
    }


def test_a_batch_refused_whole_counts_its_events_rejected(api, acme, token):
    before = scrape()

    response = post_events(api, [an_event("x-1", customer_id="nobody")])

    assert response.status_code == 422
    after = scrape()
    assert change(before, after, "tokentill_ingest_events_total", outcome="rejected") == 1
    assert change(before, after, "tokentill_ingest_events_total", outcome="accepted") == 0
    assert change(before, after, "tokentill_ingest_rejections_total", reason="not_found") == 1


def test_the_rating_queue_and_its_lag(api, acme, token, monkeypatch):
    # given nothing waiting: no lag
    figures = scrape()
    assert figure(figures, "tokentill_rating_queue_events") == 0
    assert figure(figures, "tokentill_rating_lag_seconds") == 0
    assert figure(figures, "tokentill_seal_lag_seconds") == 0

    # given three events stored in two requests and neither rated nor sealed yet (the
    # test's transaction never commits, so the runs its commit asks for never come)
    assert post_events(api, [an_event("r-1")]).status_code == 202
    assert post_events(api, [an_event("r-2"), an_event("r-3")]).status_code == 202
    first = UsageEvent.objects.get(event_id="r-1").received_at

    # when scraped 95.25 s after the first was received
    monkeypatch.setattr(metering_metrics, "now", lambda: first + timedelta(seconds=95.25))
    figures = scrape()

    # then three wait, the oldest for 95.25 s, in batches that await their seal as long
    assert figure(figures, "tokentill_rating_queue_events") == 3
    assert figure(figures, "tokentill_rating_lag_seconds") == 95.25
    assert figure(figures, "tokentill_seal_lag_seconds") == 95.25
    events_seal()
    assert figure(scrape(), "tokentill_seal_lag_seconds") == 0


def test_the_draw_down_queue_and_its_lag(acme, token, monkeypatch):
    # given two rating batches that queued acme's November and December
    november = datetime(2026, 11, 1, tzinfo=UTC)
    draw_downs_queue([(acme.pk, november)])
    draw_downs_queue([(acme.pk, november), (acme.pk, november + timedelta(days=30))])
    oldest = DrawDownDue.objects.order_by("id").first().queued_at
    assert oldest is not None

    # when scraped 4.5 s after the first was queued
    monkeypatch.setattr(billing_metrics, "now", lambda: oldest + timedelta(seconds=4.5))
    figures = scrape()

    # then three entries wait, the oldest for 4.5 s
    assert figure(figures, "tokentill_draw_down_queue_entries") == 3
    assert figure(figures, "tokentill_draw_down_lag_seconds") == 4.5


def test_a_webhook_delivery_that_fails_is_retrying_then_failed(
    db, token, receiver, django_capture_on_commit_callbacks
):
    empty = scrape()
    assert figure(empty, "tokentill_deliveries_failed", kind="webhook") == 0
    assert figure(empty, "tokentill_deliveries_retrying", kind="webhook") == 0

    # given a receiver that answers 500: the first attempt, at commit, fails
    receiver.statuses = [500]
    endpoint = endpoint_create(url=receiver.url, description="ERP")
    with django_capture_on_commit_callbacks(execute=True):
        event_emit(event_type="invoice.voided", data={"invoice_number": "INV-000001"})
    figures = scrape()
    assert figure(figures, "tokentill_deliveries_retrying", kind="webhook") == 1
    assert figure(figures, "tokentill_deliveries_failed", kind="webhook") == 0

    # when the endpoint is disabled and the retry comes due, the delivery fails for good
    endpoint_disable(endpoint=endpoint)
    webhook_deliveries_retry(now=WebhookDelivery.objects.get().next_attempt_at)
    assert WebhookDelivery.objects.get().status == "failed"

    # then it is counted failed, and nothing of the alerts' deliveries moved
    figures = scrape()
    assert figure(figures, "tokentill_deliveries_failed", kind="webhook") == 1
    assert figure(figures, "tokentill_deliveries_retrying", kind="webhook") == 0
    assert figure(figures, "tokentill_deliveries_failed", kind="alert") == 0
    assert figure(figures, "tokentill_deliveries_retrying", kind="alert") == 0


def test_without_a_broker_no_queue_depth_is_exported(db, token, settings):
    settings.CELERY_BROKER_URL = ""

    figures = scrape()

    assert not [key for key in figures if key[0] == "tokentill_celery_queue_messages"]
    assert figure(figures, "tokentill_metrics_collector_up", collector="celery") == 1


def test_every_collector_answers(db, token):
    figures = scrape()

    assert {
        dict(labels)["collector"]: value
        for (name, labels), value in figures.items()
        if name == "tokentill_metrics_collector_up"
    } == {"billing": 1, "celery": 1, "metering": 1, "wallets": 1, "webhooks": 1}


def test_a_collector_that_fails_is_reported_and_the_rest_still_answer(db, token, monkeypatch):
    def broken():
        raise RuntimeError("the database is gone")

    monkeypatch.setitem(common_metrics._collectors, "billing", broken)

    figures = scrape()

    assert figure(figures, "tokentill_metrics_collector_up", collector="billing") == 0
    assert figure(figures, "tokentill_metrics_collector_up", collector="metering") == 1
    assert figure(figures, "tokentill_rating_queue_events") == 0
    assert figure(figures, "tokentill_draw_down_queue_entries") is None


# --- request latencies ----------------------------------------------------------------------


def test_requests_are_timed_by_view_method_and_status_class(api, acme, token):
    name = "tokentill_http_request_duration_seconds_count"
    before = scrape()

    assert post_events(api, [an_event("l-1")]).status_code == 202
    assert post_events(api, [an_event("l-2", customer_id="nobody")]).status_code == 422
    assert api.get("/api/v1/events").status_code == 200
    assert api.get("/no/such/page").status_code == 404
    after = scrape()

    moved = {
        labels: after[(sample, labels)] - before.get((sample, labels), 0.0)
        for (sample, labels) in after
        if sample == name and after[(sample, labels)] != before.get((sample, labels), 0.0)
    }
    # the first scrape is timed too, once it has answered
    assert moved == {
        (("method", "POST"), ("status", "2xx"), ("view", "events")): 1,
        (("method", "POST"), ("status", "4xx"), ("view", "events")): 1,
        (("method", "GET"), ("status", "2xx"), ("view", "events")): 1,
        (("method", "GET"), ("status", "4xx"), ("view", "unmatched")): 1,
        (("method", "GET"), ("status", "2xx"), ("view", "metrics")): 1,
    }


def test_the_exposition_parses_as_prometheus_text(db, token):
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]

    assert len(families) == len(set(families)), "a family is declared once"
    assert parse(text)
