"""POST /api/v1/events: items judged one by one, nothing refused is stored."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from metering.models import UnsealedBatch, UsageEvent
from metering.selectors import event_log_verify

URL = "/api/v1/events"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def an_event(**overrides) -> dict:
    event = {
        "event_id": "req_8f2c",
        "customer_id": "acme",
        "timestamp": iso(datetime.now(UTC) - timedelta(hours=1)),
        "model": "gpt-4o",
        "feature": "support-bot",
        "metrics": {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 1000},
        "properties": {"environment": "production", "inference": "batch"},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def post(api, body, **extra):
    return api.post(URL, data=orjson.dumps(body), content_type="application/json", **extra)


def queued_for_seal() -> list[list[str]]:
    """The batches waiting for the sealer, each as its events' content hashes."""
    return [batch.hashes for batch in UnsealedBatch.objects.order_by("id")]


def stored() -> list[tuple]:
    return list(UsageEvent.objects.order_by("pk").values_list("customer__external_id", "event_id"))


def test_a_single_event_is_accepted_and_stored_with_canonical_metrics(api, acme):
    event = an_event()

    response = post(api, event)

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "items": [{"index": 0, "event_id": "req_8f2c", "status": "accepted"}],
    }
    row = UsageEvent.objects.get()
    assert (row.customer, row.event_id, row.model, row.feature) == (
        acme,
        "req_8f2c",
        "gpt-4o",
        "support-bot",
    )
    assert row.timestamp == datetime.fromisoformat(event["timestamp"])
    assert row.metrics == {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 1000}
    assert row.properties == {"environment": "production", "inference": "batch"}
    assert row.counting == "reported"
    assert queued_for_seal() == [[row.content_hash]]


def test_an_event_sent_alone_is_stored_as_it_would_be_in_a_batch(api, acme):
    # On PostgreSQL one event is bound value by value and a batch travels as JSON.
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=999999)
    fields = {
        "metrics": {"input_tokens": 999_999_999_999, "output_tokens": 0, "gpu_seconds": "0.125"},
        "properties": {"région": "eu-west", "note": 'it\'s "quoted" \\ and %(s)s'},
        "timestamp": iso(moment),
    }
    compared = ("customer_id", "timestamp", "model", "feature", "metrics", "properties")

    alone = post(api, an_event(event_id="alone", **fields))
    batch = post(api, {"events": [an_event(event_id="in-batch", **fields), an_event()]})

    assert (alone.status_code, batch.status_code) == (202, 202)
    rows = {row["event_id"]: row for row in UsageEvent.objects.values("event_id", *compared)}
    assert {name: rows["alone"][name] for name in compared} == {
        name: rows["in-batch"][name] for name in compared
    }
    assert rows["alone"]["metrics"] == {
        "input_tokens": 999_999_999_999,
        "output_tokens": 0,
        "gpu_seconds": "0.125",
    }
    assert rows["alone"]["timestamp"] == moment
    assert event_log_verify().ok


def test_decimal_metric_strings_are_kept_exactly(api, acme):
    response = post(api, an_event(metrics={"gpu_seconds": "12.500", "images": "3.0"}))

    assert response.status_code == 202
    assert UsageEvent.objects.get().metrics == {"gpu_seconds": "12.5", "images": 3}


def test_a_batch_is_judged_item_by_item(api, acme):
    good = an_event(event_id="ok-1")
    bad = an_event(event_id="bad-1", metrics={"input_tokens": -5})
    also_good = an_event(event_id="ok-2")

    response = post(api, {"events": [good, bad, also_good]})

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": 1,
        "items": [
            {"index": 0, "event_id": "ok-1", "status": "accepted"},
            {
                "index": 1,
                "event_id": "bad-1",
                "status": "rejected",
                "errors": [
                    {
                        "field": "metrics.input_tokens",
                        "code": "invalid",
                        "message": "must not be negative",
                    }
                ],
            },
            {"index": 2, "event_id": "ok-2", "status": "accepted"},
        ],
    }
    assert stored() == [("acme", "ok-1"), ("acme", "ok-2")]
    assert queued_for_seal() == [
        list(UsageEvent.objects.order_by("pk").values_list("content_hash", flat=True))
    ]


def test_a_resend_is_a_duplicate_and_changes_nothing(api, acme):
    event = an_event()
    post(api, event)
    queued_before = list(UnsealedBatch.objects.values_list("seal_id", "content_hashes"))

    # Same content, keys in another order and numbers spelled differently.
    resend = dict(reversed(list(event.items())))
    resend["metrics"] = {"cached_input_tokens": "1000", "output_tokens": 350, "input_tokens": 1200}
    resend["timestamp"] = event["timestamp"].replace("Z", "+00:00")
    response = post(api, resend)

    assert response.status_code == 202
    assert response.json()["items"] == [{"index": 0, "event_id": "req_8f2c", "status": "duplicate"}]
    assert stored() == [("acme", "req_8f2c")]
    assert list(UnsealedBatch.objects.values_list("seal_id", "content_hashes")) == queued_before


def test_the_same_event_id_with_other_content_is_a_conflict(api, acme):
    post(api, an_event())
    before = list(UsageEvent.objects.values_list("pk", "metrics"))

    response = post(api, an_event(metrics={"input_tokens": 1201}))

    assert response.status_code == 422
    assert response.json()["items"] == [
        {
            "index": 0,
            "event_id": "req_8f2c",
            "status": "rejected",
            "errors": [
                {
                    "field": "event_id",
                    "code": "conflict",
                    "message": "event_id 'req_8f2c' was already used for this customer "
                    "with different content",
                }
            ],
        }
    ]
    assert list(UsageEvent.objects.values_list("pk", "metrics")) == before


def test_repeats_within_one_batch(api, acme):
    first = an_event(event_id="e1")
    conflicting = an_event(event_id="e1", model="gpt-4o-mini")

    response = post(api, {"events": [first, first, conflicting]})

    assert [item["status"] for item in response.json()["items"]] == [
        "accepted",
        "duplicate",
        "rejected",
    ]
    assert response.json()["items"][2]["errors"][0]["code"] == "conflict"
    assert stored() == [("acme", "e1")]


def test_a_repeat_of_a_conflicting_event_is_refused_like_its_first_copy(api, acme):
    post(api, an_event(event_id="e1"))
    conflicting = an_event(event_id="e1", model="gpt-4o-mini")

    response = post(api, {"events": [conflicting, conflicting]})

    assert response.status_code == 422
    assert [item["errors"][0]["code"] for item in response.json()["items"]] == [
        "conflict",
        "conflict",
    ]


def test_the_same_event_id_for_two_customers_is_two_events(api, acme):
    from contracts.services import customer_create

    customer_create(external_id="globex", name="Globex", currency="EUR")

    response = post(api, {"events": [an_event(), an_event(customer_id="globex")]})

    assert response.json()["accepted"] == 2
    assert stored() == [("acme", "req_8f2c"), ("globex", "req_8f2c")]


NOW = datetime.now(UTC)
REFUSALS = [
    # (what the item changes, field, code, message)
    ({"surprise": 1}, "surprise", "unknown_field", "unknown field 'surprise'"),
    ({"event_id": ...}, "event_id", "required", "this field is required"),
    ({"event_id": ""}, "event_id", "invalid", "must be a non-empty string"),
    ({"event_id": "x" * 256}, "event_id", "invalid", "must be at most 255 characters"),
    ({"event_id": "a\nb"}, "event_id", "invalid", "must not contain control characters"),
    ({"customer_id": ...}, "customer_id", "required", "this field is required"),
    ({"customer_id": "nobody"}, "customer_id", "not_found", "unknown customer 'nobody'"),
    ({"model": 42}, "model", "invalid", "must be a non-empty string"),
    ({"timestamp": ...}, "timestamp", "required", "this field is required"),
    (
        {"timestamp": "yesterday"},
        "timestamp",
        "invalid",
        "'yesterday' is not an RFC 3339 timestamp",
    ),
    (
        {"timestamp": "2026-11-02T10:15:00"},
        "timestamp",
        "invalid",
        "must include a UTC offset or 'Z'",
    ),
    (
        {"timestamp": iso(NOW + timedelta(days=1))},  # future however long the suite runs
        "timestamp",
        "future",
        "is more than 5 minutes in the future",
    ),
    (
        {"timestamp": iso(NOW - timedelta(days=36))},
        "timestamp",
        "too_late",
        "is older than the lateness window of 35 days",
    ),
    (
        {"metrics": ...},
        "metrics",
        "required",
        "send exactly one of metrics, usage (with provider), text or messages (found: none)",
    ),
    (
        {"metrics": {}},
        "metrics",
        "invalid",
        "must be a non-empty object of metric names to values",
    ),
    (
        {"metrics": {"Input-Tokens": 1}},
        "metrics.Input-Tokens",
        "invalid",
        "metric names are lowercase identifiers such as input_tokens",
    ),
    ({"metrics": {"input_tokens": -1}}, "metrics.input_tokens", "invalid", "must not be negative"),
    (
        {"metrics": {"input_tokens": 1.5}},
        "metrics.input_tokens",
        "invalid",
        'must be a non-negative integer or a decimal string such as "12.5"',
    ),
    (
        {"metrics": {"input_tokens": True}},
        "metrics.input_tokens",
        "invalid",
        'must be a non-negative integer or a decimal string such as "12.5"',
    ),
    (
        {"metrics": {"input_tokens": "NaN"}},
        "metrics.input_tokens",
        "invalid",
        "'NaN' is not a non-negative decimal string with up to 12 places",
    ),
    (
        {"metrics": {"input_tokens": "-3"}},
        "metrics.input_tokens",
        "invalid",
        "'-3' is not a non-negative decimal string with up to 12 places",
    ),
    (
        {"metrics": {"input_tokens": 10**12 + 1}},
        "metrics.input_tokens",
        "invalid",
        "must be at most 1,000,000,000,000",
    ),
    (
        {"provider": "openai"},
        "provider",
        "invalid",
        "provider goes with usage",
    ),
    (
        {"metrics": ..., "usage": {"prompt_tokens": 3}},
        "provider",
        "invalid",
        "usage needs provider, one of: openai, anthropic, google",
    ),
    (
        {"text": {"input": "hello"}},
        "metrics",
        "invalid",
        "send exactly one of metrics, usage (with provider), text or messages "
        "(found: metrics, text)",
    ),
    (
        {"properties": {"environment": 1}},
        "properties.environment",
        "invalid",
        "must be a string (properties are a flat string map)",
    ),
    (
        {"properties": {"nested": {"a": "b"}}},
        "properties.nested",
        "invalid",
        "must be a string (properties are a flat string map)",
    ),
    (
        {"properties": ["a"]},
        "properties",
        "invalid",
        "must be an object of string keys to string values",
    ),
    (
        {"properties": {f"k{i}": "v" for i in range(51)}},
        "properties",
        "invalid",
        "must have at most 50 keys",
    ),
    (
        {"properties": {"big": "x" * 513}},
        "properties.big",
        "invalid",
        "must be at most 512 characters",
    ),
]


@pytest.mark.parametrize(("change", "field", "code", "message"), REFUSALS)
def test_each_refusal_says_what_and_where_and_stores_nothing(
    api, acme, change, field, code, message
):
    response = post(api, an_event(**change))

    assert response.status_code == 422
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, 1)
    assert {"field": field, "code": code, "message": message} in body["items"][0]["errors"]
    assert UsageEvent.objects.count() == 0
    assert UnsealedBatch.objects.count() == 0


def test_a_number_too_large_for_json_integers_is_refused(api, acme):
    without_metrics = orjson.dumps(an_event(metrics=...))
    body = without_metrics[:-1] + b', "metrics": {"input_tokens": 1' + b"0" * 30 + b"}}"

    response = api.post(URL, data=body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["items"][0]["errors"] == [
        {
            "field": "metrics.input_tokens",
            "code": "invalid",
            "message": 'must be a non-negative integer or a decimal string such as "12.5"',
        }
    ]
    assert UsageEvent.objects.count() == 0


def test_an_item_that_is_not_an_object_is_refused(api, acme):
    response = post(api, {"events": [an_event(), "oops"]})

    assert response.status_code == 202
    assert response.json()["items"][1] == {
        "index": 1,
        "event_id": None,
        "status": "rejected",
        "errors": [{"field": "", "code": "invalid", "message": "an event must be a JSON object"}],
    }
    assert stored() == [("acme", "req_8f2c")]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b'{"metrics": {"input_tokens": NaN}}', "the body is not valid JSON"),
        (b'{"metrics": {"input_tokens": Infinity}, "x": 1e400}', "the body is not valid JSON"),
        (b'{"event_id": "\\ud800", "x": 1e400}', "the body is not valid JSON"),
        (b"[1, 2]", 'the body must be one event object or {"events": [...]}'),
        (b'{"events": {}}', 'a batch is {"events": [...]} with no other fields'),
        (b'{"events": [], "extra": 1}', 'a batch is {"events": [...]} with no other fields'),
        (b'{"events": []}', "events is empty"),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_400(api, acme, body, detail):
    response = api.post(URL, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert UsageEvent.objects.count() == 0


def test_a_batch_over_the_limit_is_a_413(api, acme, settings):
    settings.TOKENTILL_INGEST_MAX_BATCH = 3
    events = [an_event(event_id=f"e{i}") for i in range(4)]

    response = post(api, {"events": events})

    assert response.status_code == 413
    assert response.json() == {"detail": "a batch holds at most 3 events (4 sent)"}
    assert UsageEvent.objects.count() == 0


def test_a_body_over_the_size_limit_is_a_413(api, acme, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.TOKENTILL_INGEST_MAX_BODY_BYTES = 1000

    response = post(api, {"events": [an_event(event_id=f"e{i}") for i in range(10)]})

    assert response.status_code == 413
    assert response.json() == {"detail": "the body is over 1,000 bytes"}
    assert UsageEvent.objects.count() == 0


def test_provider_usage_is_mapped_to_canonical_metrics(api, acme):
    event = an_event(
        metrics=...,
        provider="openai",
        usage={
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 128},
        },
    )

    response = post(api, event)

    assert response.status_code == 202
    row = UsageEvent.objects.get()
    assert (row.metrics["input_tokens"], row.metrics["cached_input_tokens"]) == (86, 1920)
    assert (row.metrics["output_tokens"], row.metrics["reasoning_tokens"]) == (300, 128)
    assert (row.provider, row.counting) == ("openai", "reported")


def test_provider_usage_errors_name_the_path(api, acme):
    event = an_event(
        metrics=...,
        provider="openai",
        usage={
            "prompt_tokens": 100,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 200},
        },
    )

    response = post(api, event)

    assert response.status_code == 422
    assert response.json()["items"][0]["errors"][0]["field"] == (
        "usage.prompt_tokens_details.cached_tokens"
    )
    assert UsageEvent.objects.count() == 0


def with_raw_metric(event: dict, raw: bytes) -> bytes:
    """The event as JSON with metrics {"input_tokens": <raw>}: a number orjson cannot write."""
    return orjson.dumps(event | {"metrics": {"input_tokens": 0}}).replace(
        b'"input_tokens":0', b'"input_tokens":' + raw
    )


def test_a_number_past_a_doubles_range_refuses_its_item_and_no_other(api, acme):
    good = orjson.dumps(an_event(event_id="ok-1"))
    huge = with_raw_metric(an_event(event_id="huge-1"), b"1e400")
    also_good = orjson.dumps(an_event(event_id="ok-2"))
    body = b'{"events": [' + b", ".join([good, huge, also_good]) + b"]}"

    response = api.post(URL, data=body, content_type="application/json")

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": 1,
        "items": [
            {"index": 0, "event_id": "ok-1", "status": "accepted"},
            {
                "index": 1,
                "event_id": "huge-1",
                "status": "rejected",
                "errors": [
                    {
                        "field": "metrics.input_tokens",
                        "code": "out_of_range",
                        "message": "1e400 is too large to read as a number",
                    }
                ],
            },
            {"index": 2, "event_id": "ok-2", "status": "accepted"},
        ],
    }
    assert stored() == [("acme", "ok-1"), ("acme", "ok-2")]
    assert queued_for_seal() == [
        list(UsageEvent.objects.order_by("pk").values_list("content_hash", flat=True))
    ]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"-1e400", "metrics.input_tokens"),
        (b"1" + b"0" * 400, "metrics.input_tokens"),  # an integer of 401 digits
    ],
)
def test_a_single_event_with_a_number_past_range_is_a_422_naming_the_field(api, acme, raw, field):
    response = api.post(URL, data=with_raw_metric(an_event(), raw), content_type="application/json")

    assert response.status_code == 422
    [error] = response.json()["items"][0]["errors"]
    assert (error["field"], error["code"]) == (field, "out_of_range")
    assert error["message"] == f"{raw.decode()[:40]} is too large to read as a number"
    assert UsageEvent.objects.count() == 0
    assert UnsealedBatch.objects.count() == 0


def test_a_number_past_range_in_provider_usage_names_its_path(api, acme):
    event = an_event(metrics=..., provider="anthropic", usage={"input_tokens": 0})
    body = orjson.dumps(event).replace(b'"input_tokens":0', b'"input_tokens":2e308')

    response = api.post(URL, data=body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["items"][0]["errors"] == [
        {
            "field": "usage.input_tokens",
            "code": "out_of_range",
            "message": "2e308 is too large to read as a number",
        }
    ]
    assert UsageEvent.objects.count() == 0


def test_events_keep_the_batchs_order_though_they_are_written_in_key_order(api, acme):
    # On PostgreSQL the rows go in as evt-a, evt-b, evt-c (key order, for the locks), with
    # ids drawn in the order they were sent: the log lists them as sent.
    batch = [an_event(event_id=name) for name in ("evt-c", "evt-a", "evt-b")]

    response = post(api, {"events": batch})

    assert response.status_code == 202
    assert stored() == [("acme", "evt-c"), ("acme", "evt-a"), ("acme", "evt-b")]
    assert event_log_verify().ok
