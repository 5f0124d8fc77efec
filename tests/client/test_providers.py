"""The provider helpers: each provider's documented response and stream is recorded with
its usage object as the provider gave it, and tokentill stores the metrics worked out by
hand: cached and reasoning tokens counted once."""

from datetime import UTC, datetime

import pytest

from metering.models import UsageEvent
from tokentill_client import read_stream, usage_from_response

from . import shapes
from .conftest import stored


@pytest.mark.parametrize(
    ("response", "provider", "model", "response_id"),
    [
        (
            shapes.OPENAI_CHAT,
            "openai",
            "o3-mini-2025-01-31",
            "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        ),
        (shapes.OPENAI_RESPONSE, "openai", "o4-mini-2025-04-16", shapes.OPENAI_RESPONSE["id"]),
        (
            shapes.ANTHROPIC_MESSAGE,
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        ),
        (shapes.GEMINI_RESPONSE, "google", "gemini-2.5-flash", "mAitaLmkHPPlz7IPvtfUqQ4"),
        (shapes.GEMINI_SDK_DUMP, "google", "gemini-2.0-flash", "gemini-sdk-1"),
    ],
)
def test_a_response_gives_its_provider_usage_object_model_and_id(
    response, provider, model, response_id
):
    for given in (response, shapes.SdkObject(response)):
        usage = usage_from_response(given)

        key = "usageMetadata" if "usageMetadata" in response else "usage"
        expected = response.get(key) or response["usage_metadata"]
        assert (usage.provider, usage.usage, usage.model, usage.response_id) == (
            provider,
            expected,
            model,
            response_id,
        )


def test_an_anthropic_message_without_cache_fields_is_told_from_the_responses_api_by_its_type():
    message = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-haiku-4-5",
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    bare_responses_usage = {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}

    assert usage_from_response(message).provider == "anthropic"
    assert usage_from_response({"usage": bare_responses_usage}).provider == "openai"


def test_a_response_without_usage_says_so():
    with pytest.raises(ValueError, match="no usage"):
        usage_from_response({"id": "chatcmpl-1", "object": "chat.completion.chunk"})


@pytest.mark.parametrize(
    ("chunks", "provider", "text", "final_usage"),
    [
        (
            shapes.OPENAI_CHAT_STREAM,
            "openai",
            "Hello there!",
            shapes.OPENAI_CHAT_STREAM[-1]["usage"],
        ),
        (shapes.OPENAI_CHAT_STREAM_NO_USAGE, "openai", "Hello there!", None),
        (
            shapes.OPENAI_RESPONSES_STREAM,
            "openai",
            "In a peaceful grove…",
            shapes.OPENAI_RESPONSE["usage"],
        ),
        (
            shapes.ANTHROPIC_STREAM,
            "anthropic",
            "Okay let",
            {
                "input_tokens": 472,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 2048,
                "output_tokens": 89,
            },
        ),
        (shapes.ANTHROPIC_STREAM[:-2], "anthropic", "Okay let", None),  # cut before its last count
        (shapes.GEMINI_STREAM, "google", "The end.", shapes.GEMINI_STREAM[-1]["usageMetadata"]),
    ],
)
def test_a_finished_stream_gives_its_final_usage_when_it_carried_one_and_its_text(
    chunks, provider, text, final_usage
):
    reading = read_stream(shapes.SdkObject(chunk) for chunk in chunks)

    assert (reading.provider, reading.text) == (provider, text)
    assert (reading.usage and reading.usage.usage) == final_usage


@pytest.mark.django_db(transaction=True)
def test_recorded_responses_and_streams_are_stored_with_the_metrics_worked_by_hand(
    make_client, acme, o200k
):
    client = make_client()
    for response in (
        shapes.OPENAI_CHAT,
        shapes.OPENAI_RESPONSE,
        shapes.ANTHROPIC_MESSAGE,
        shapes.GEMINI_RESPONSE,
        shapes.SdkObject(shapes.GEMINI_SDK_DUMP),
    ):
        client.record_response(response, customer_id="acme")
    for stream in (
        shapes.OPENAI_CHAT_STREAM,
        shapes.OPENAI_RESPONSES_STREAM,
        shapes.ANTHROPIC_STREAM,
        shapes.GEMINI_STREAM,
    ):
        client.record_stream(stream, customer_id="acme")
    client.record_stream(
        shapes.OPENAI_CHAT_STREAM_NO_USAGE, customer_id="acme", messages=shapes.SAY_HELLO
    )
    client.record_response(shapes.OPENAI_CHAT, customer_id="acme")  # the same response again
    # Anthropic's messages carry no time: the client sends its first recording's again.
    client.record_response(shapes.ANTHROPIC_MESSAGE, customer_id="acme")
    embedding = client.record_response(shapes.OPENAI_EMBEDDING, customer_id="acme")
    assert client.flush(timeout=10)

    assert stored() == {
        "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG": shapes.OPENAI_CHAT_METRICS,
        shapes.OPENAI_RESPONSE["id"]: shapes.OPENAI_RESPONSE_METRICS,
        "msg_013Zva2CMHLNnXjNJJKqJ2EF": shapes.ANTHROPIC_METRICS,
        "mAitaLmkHPPlz7IPvtfUqQ4": shapes.GEMINI_METRICS,
        "gemini-sdk-1": shapes.GEMINI_SDK_METRICS,
        "chatcmpl-stream-1": shapes.OPENAI_CHAT_STREAM_METRICS,
        "resp_stream_1": shapes.OPENAI_RESPONSE_METRICS,
        "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY": shapes.ANTHROPIC_STREAM_METRICS,
        "gemini-stream-1": shapes.GEMINI_STREAM_METRICS,
        "chatcmpl-stream-2": shapes.TEXT_COUNTED_METRICS,
        embedding: shapes.OPENAI_EMBEDDING_METRICS,
    }
    assert dict(UsageEvent.objects.values_list("event_id", "model"))["chatcmpl-stream-2"] == (
        "gpt-4o-mini-2024-07-18"
    )
    # OpenAI's responses say when they were made: their events are of that instant.
    made = datetime.fromtimestamp(shapes.A_MINUTE_AGO, UTC)
    assert UsageEvent.objects.get(event_id=shapes.OPENAI_CHAT["id"]).timestamp == made
    assert UsageEvent.objects.get(event_id="resp_stream_1").timestamp == made
    counted = UsageEvent.objects.filter(counting="tokenized").values_list("event_id", flat=True)
    assert list(counted) == ["chatcmpl-stream-2"]
    assert client.counts() == {"accepted": 11, "duplicates": 2, "failed": 0, "queued": 0}


def test_a_stream_without_usage_needs_the_prompt_to_count_its_input(operator_key):
    from tokentill_client import Tokentill

    client = Tokentill(operator_key, "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="give prompt= or messages="):
        client.record_stream(shapes.OPENAI_CHAT_STREAM_NO_USAGE, customer_id="acme")
    client.close(timeout=0)
