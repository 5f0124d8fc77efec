"""What services read back: tokenized events, the event list, token counts, the schema."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from contracts.services import customer_create
from metering.models import UsageEvent
from metering.sealing import events_seal
from tests.metering.test_ingest_api import an_event, iso, post

PROMPT = "Summarise this support ticket: the customer cannot log in since Tuesday's update."
REPLY = "The customer is locked out after the update; reset their session and 2FA."


def cookbook_message_tokens(encoding, messages) -> int:
    """OpenAI's published rule: 3 per message, 1 per name, 3 to prime the reply."""
    total = 3
    for message in messages:
        total += 3 + sum(len(encoding.encode(value)) for value in message.values())
        total += 1 if "name" in message else 0
    return total


def test_text_is_counted_with_the_models_encoding(api, acme, o200k, cl100k):
    post(api, an_event(event_id="t1", metrics=..., text={"input": PROMPT, "output": REPLY}))
    post(api, an_event(event_id="t2", model="gpt-4", metrics=..., text={"input": PROMPT}))

    t1, t2 = UsageEvent.objects.order_by("event_id")
    assert t1.metrics == {
        "input_tokens": len(o200k.encode(PROMPT)),
        "output_tokens": len(o200k.encode(REPLY)),
    }
    assert t2.metrics == {"input_tokens": len(cl100k.encode(PROMPT)), "output_tokens": 0}
    assert (t1.counting, t2.counting) == ("tokenized", "tokenized")


def test_chat_messages_are_counted_with_formatting_overhead(api, acme, o200k):
    messages = [
        {"role": "system", "content": "You are a helpful support agent."},
        {"role": "user", "name": "dana", "content": PROMPT},
    ]

    response = post(api, an_event(metrics=..., messages=messages, text={"output": REPLY}))

    assert response.status_code == 202
    assert UsageEvent.objects.get().metrics == {
        "input_tokens": cookbook_message_tokens(o200k, messages),
        "output_tokens": len(o200k.encode(REPLY)),
    }


def test_an_unknown_model_is_counted_with_the_default_encoding(api, acme, o200k):

    post(api, an_event(model="claude-sonnet-4-5", metrics=..., text={"input": PROMPT}))

    assert UsageEvent.objects.get().metrics["input_tokens"] == len(o200k.encode(PROMPT))


def test_messages_and_text_input_together_are_refused(api, acme):
    messages = [{"role": "user", "content": PROMPT}]

    response = post(api, an_event(metrics=..., messages=messages, text={"input": PROMPT}))

    assert response.status_code == 422
    assert response.json()["items"][0]["errors"] == [
        {
            "field": "text.input",
            "code": "invalid",
            "message": "send the prompt either as messages or as text.input",
        }
    ]
    assert UsageEvent.objects.count() == 0


def test_the_token_count_endpoint_matches_tiktoken(api, o200k):
    messages = [{"role": "user", "content": PROMPT}]

    url = "/api/v1/tokens/count"
    text = api.post(url, {"model": "gpt-4o", "text": PROMPT}, format="json")
    chat = api.post(url, {"model": "gpt-4o", "messages": messages}, format="json")

    assert text.status_code == 200
    assert text.json() == {
        "model": "gpt-4o",
        "tokenizer": "o200k_base",
        "encoding": "o200k_base",
        "estimated": False,
        "tokens": len(o200k.encode(PROMPT)),
    }
    assert chat.json()["tokens"] == cookbook_message_tokens(o200k, messages)


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"model": "gpt-4o"}, {"non_field_errors": ["send exactly one of text or messages"]}),
        ({"text": "hi"}, {"model": ["This field is required."]}),
        ({"model": "gpt-4o", "text": "hi", "colour": "red"}, {"colour": ["unknown field"]}),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image"}]}]},
            {"messages[0].content[0]": ["only text parts can be counted"]},
        ),
    ],
)
def test_the_token_count_endpoint_refuses_bad_input(api, body, answer, o200k):
    response = api.post("/api/v1/tokens/count", body, format="json")

    assert response.status_code == 400
    assert response.json().keys() == answer.keys()


@pytest.fixture
def some_events(api, acme):
    customer_create(external_id="globex", name="Globex", currency="EUR")
    start = datetime.now(UTC) - timedelta(days=3)
    events = [
        an_event(event_id="a", timestamp=iso(start), model="gpt-4o"),
        an_event(event_id="b", timestamp=iso(start + timedelta(hours=1)), model="gpt-4o-mini"),
        an_event(event_id="c", timestamp=iso(start + timedelta(hours=2)), feature="code-review"),
        an_event(event_id="d", timestamp=iso(start + timedelta(hours=3)), customer_id="globex"),
    ]
    assert post(api, {"events": events}).json()["accepted"] == 4
    return start


def listed(api, query: str = "") -> list[str]:
    response = api.get(f"/api/v1/events{query}")
    assert response.status_code == 200
    return [event["event_id"] for event in response.json()["results"]]


def test_events_are_listed_newest_first_with_what_tokentill_made_of_them(api, some_events):
    awaiting = api.get("/api/v1/events?limit=1&customer_id=acme").json()["results"]
    events_seal()
    response = api.get("/api/v1/events?limit=1&customer_id=acme")

    assert awaiting[0]["event_id"] == "c"
    assert awaiting[0]["seal"] is None  # listed before the sealer chained its batch
    assert response.json()["results"] == [
        {
            "event_id": "c",
            "customer_id": "acme",
            "timestamp": iso(some_events + timedelta(hours=2)),
            "model": "gpt-4o",
            "feature": "code-review",
            "metrics": {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 1000},
            "properties": {"environment": "production", "inference": "batch"},
            "counting": "reported",
            "provider": "",
            "tokenizer": "",
            "estimated": False,
            "received_at": response.json()["results"][0]["received_at"],
            "seal": 1,
        }
    ]
    next_page = api.get(response.json()["next"]).json()["results"]
    assert [event["event_id"] for event in next_page] == ["b"]


def test_events_are_filtered(api, some_events):
    start = some_events
    assert listed(api) == ["d", "c", "b", "a"]
    assert listed(api, "?customer_id=globex") == ["d"]
    assert listed(api, "?event_id=b") == ["b"]
    assert listed(api, "?model=gpt-4o-mini") == ["b"]
    assert listed(api, "?feature=code-review") == ["c"]
    window = f"?from={iso(start + timedelta(hours=1))}&to={iso(start + timedelta(hours=3))}"
    assert listed(api, window) == ["c", "b"]


def test_a_bad_time_filter_is_a_400(api, some_events):
    response = api.get("/api/v1/events?from=last-tuesday")

    assert response.status_code == 400
    assert response.json() == {"from": ["'last-tuesday' is not an RFC 3339 timestamp with offset"]}


def test_the_openapi_schema_describes_the_api(api):
    schema = APIClient().get("/api/schema/?format=json")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/events", "/api/v1/tokens/count", "/api/v1/customers"} <= paths.keys()
    examples = paths["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert {"Batch", "SingleEvent", "ProviderUsage"} <= examples["examples"].keys()
    assert APIClient().get("/api/docs/").status_code == 200
