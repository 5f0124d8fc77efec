"""Provider usage objects mapped onto canonical metrics: metering.providers (no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metering.providers import MAX_COUNT, PROVIDERS, UsageError, usage_to_metrics

CANONICAL = (
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def metrics(*, input=0, cached=0, creation=0, output=0, reasoning=0, **extras) -> dict[str, int]:
    return {
        "input_tokens": input,
        "cached_input_tokens": cached,
        "cache_creation_input_tokens": creation,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
        **extras,
    }


OPENAI_CHAT_CACHED_REASONING = {
    "prompt_tokens": 1486,
    "completion_tokens": 651,
    "total_tokens": 2137,
    "prompt_tokens_details": {"cached_tokens": 1408, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 512,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_CHAT_AUDIO = {
    "prompt_tokens": 2380,
    "completion_tokens": 1210,
    "total_tokens": 3590,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 1300},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 1150},
}
OPENAI_CHAT_NO_DETAILS = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}
OPENAI_CHAT_NULL_DETAILS = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": None,
    "completion_tokens_details": None,
}
OPENAI_RESPONSES = {
    "input_tokens": 5120,
    "input_tokens_details": {"cached_tokens": 4096},
    "output_tokens": 1873,
    "output_tokens_details": {"reasoning_tokens": 1536},
    "total_tokens": 6993,
}
OPENAI_RESPONSES_NO_DETAILS = {"input_tokens": 36, "output_tokens": 87, "total_tokens": 123}
ANTHROPIC_CACHE_READ_AND_WRITE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188,
    "cache_read_input_tokens": 30433,
    "cache_creation": {"ephemeral_5m_input_tokens": 188, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 393,
    "service_tier": "standard",
}
ANTHROPIC_ONE_HOUR_CACHE_AND_SEARCH = {
    "input_tokens": 105,
    "cache_creation_input_tokens": 2600,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 2000},
    "output_tokens": 1120,
    "output_tokens_details": {"thinking_tokens": 640},
    "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 0},
    "service_tier": "standard",
    "inference_geo": "us",
}
ANTHROPIC_NULLS = {
    "input_tokens": 2095,
    "output_tokens": 503,
    "cache_creation_input_tokens": None,
    "cache_read_input_tokens": None,
    "cache_creation": None,
    "server_tool_use": None,
    "output_tokens_details": None,
}
ANTHROPIC_MINIMAL = {"input_tokens": 12, "output_tokens": 6}
GEMINI_CAMEL = {
    "promptTokenCount": 12000,
    "candidatesTokenCount": 198,
    "totalTokenCount": 12951,
    "cachedContentTokenCount": 8192,
    "thoughtsTokenCount": 405,
    "toolUsePromptTokenCount": 348,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12000}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 8192}],
}
GEMINI_SNAKE = {
    "prompt_token_count": 12000,
    "candidates_token_count": 198,
    "total_token_count": 12951,
    "cached_content_token_count": 8192,
    "thoughts_token_count": 405,
    "tool_use_prompt_token_count": 348,
    "traffic_type": "ON_DEMAND",
}
GEMINI_PLAIN = {"promptTokenCount": 11, "candidatesTokenCount": 73, "totalTokenCount": 84}
GEMINI_NO_OUTPUT = {"promptTokenCount": 20, "totalTokenCount": 20}
GEMINI_SNAKE_NULLS = {
    "prompt_token_count": 427,
    "candidates_token_count": 51,
    "total_token_count": 478,
    "cached_content_token_count": None,
    "thoughts_token_count": None,
    "tool_use_prompt_token_count": None,
}
GEMINI_LIVE = {"promptTokenCount": 522, "responseTokenCount": 42, "thoughtsTokenCount": 136}


@pytest.mark.parametrize(
    ("provider", "usage", "expected"),
    [
        pytest.param(
            "openai",
            OPENAI_CHAT_CACHED_REASONING,
            metrics(
                input=78,
                cached=1408,
                output=651,
                reasoning=512,
                audio_input_tokens=0,
                audio_output_tokens=0,
            ),
            id="openai-chat-cached-reasoning",
        ),
        pytest.param(
            "openai",
            OPENAI_CHAT_AUDIO,
            metrics(
                input=1356,
                cached=1024,
                output=1210,
                audio_input_tokens=1300,
                audio_output_tokens=1150,
            ),
            id="openai-chat-audio",
        ),
        pytest.param(
            "openai", OPENAI_CHAT_NO_DETAILS, metrics(input=19, output=10), id="openai-chat-plain"
        ),
        pytest.param(
            "openai",
            OPENAI_CHAT_NULL_DETAILS,
            metrics(input=19, output=10),
            id="openai-chat-null-details",
        ),
        pytest.param(
            "openai",
            OPENAI_RESPONSES,
            metrics(input=1024, cached=4096, output=1873, reasoning=1536),
            id="openai-responses-cached-reasoning",
        ),
        pytest.param(
            "openai",
            OPENAI_RESPONSES_NO_DETAILS,
            metrics(input=36, output=87),
            id="openai-responses-plain",
        ),
        pytest.param(
            "anthropic",
            ANTHROPIC_CACHE_READ_AND_WRITE,
            metrics(
                input=21,
                cached=30433,
                creation=188,
                output=393,
                cache_creation_1h_input_tokens=0,
            ),
            id="anthropic-cache-read-and-write",
        ),
        pytest.param(
            "anthropic",
            ANTHROPIC_ONE_HOUR_CACHE_AND_SEARCH,
            metrics(
                input=105,
                creation=2600,
                output=1120,
                reasoning=640,
                cache_creation_1h_input_tokens=2000,
                web_search_requests=3,
            ),
            id="anthropic-1h-cache-thinking-search",
        ),
        pytest.param(
            "anthropic", ANTHROPIC_NULLS, metrics(input=2095, output=503), id="anthropic-nulls"
        ),
        pytest.param(
            "anthropic", ANTHROPIC_MINIMAL, metrics(input=12, output=6), id="anthropic-minimal"
        ),
        pytest.param(
            "google",
            GEMINI_CAMEL,
            metrics(input=4156, cached=8192, output=603, reasoning=405),
            id="gemini-camel-cached-thoughts-tools",
        ),
        pytest.param(
            "google",
            GEMINI_SNAKE,
            metrics(input=4156, cached=8192, output=603, reasoning=405),
            id="gemini-snake-cached-thoughts-tools",
        ),
        pytest.param("google", GEMINI_PLAIN, metrics(input=11, output=73), id="gemini-plain"),
        pytest.param("google", GEMINI_NO_OUTPUT, metrics(input=20), id="gemini-no-output"),
        pytest.param(
            "google", GEMINI_SNAKE_NULLS, metrics(input=427, output=51), id="gemini-snake-nulls"
        ),
        pytest.param(
            "google",
            GEMINI_LIVE,
            metrics(input=522, output=178, reasoning=136),
            id="gemini-live-response-count",
        ),
    ],
)
def test_usage_maps_to_canonical_metrics(provider, usage, expected):
    # given a real-looking usage object from a provider
    # when it is mapped
    result = usage_to_metrics(provider, usage)

    # then the metrics are exactly the expected ones, canonical five first
    assert result == expected
    assert list(result)[:5] == list(CANONICAL)


def test_mapping_leaves_the_usage_object_unchanged():
    # given a usage object
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 64},
    }
    before = repr(usage)

    # when it is mapped
    usage_to_metrics("openai", usage)

    # then nothing in it changed
    assert repr(usage) == before


def test_unknown_keys_are_ignored():
    # given usage objects with fields the mapping does not know
    chat = {**OPENAI_CHAT_NO_DETAILS, "new_field": "x", "prompt_tokens_details": {"future": 1}}
    gemini = {**GEMINI_PLAIN, "somethingNew": [1, 2]}

    # when they are mapped, then the unknown fields make no difference
    assert usage_to_metrics("openai", chat) == metrics(input=19, output=10)
    assert usage_to_metrics("google", gemini) == metrics(input=11, output=73)


@pytest.mark.parametrize(
    ("provider", "usage", "path", "message"),
    [
        pytest.param("openai", [1, 2], "", "must be an object", id="array"),
        pytest.param("anthropic", "12", "", "must be an object", id="string"),
        pytest.param("google", None, "", "must be an object", id="null"),
        pytest.param(
            "openai",
            {"completion_tokens": 5, "total_tokens": 5},
            "",
            "needs prompt_tokens (Chat Completions) or input_tokens (Responses API)",
            id="openai-neither-shape",
        ),
        pytest.param(
            "openai",
            {"prompt_tokens": 5, "input_tokens": 5, "completion_tokens": 1, "output_tokens": 1},
            "",
            "has both prompt_tokens (Chat Completions) and input_tokens (Responses API); "
            "send the usage object of one call",
            id="openai-both-shapes",
        ),
        pytest.param(
            "openai",
            {"prompt_tokens": 5},
            "completion_tokens",
            "is required",
            id="openai-chat-missing-completion",
        ),
        pytest.param(
            "openai",
            {"prompt_tokens": None, "completion_tokens": 5},
            "prompt_tokens",
            "is required",
            id="openai-chat-null-prompt",
        ),
        pytest.param(
            "openai",
            {"input_tokens": 5},
            "output_tokens",
            "is required",
            id="openai-responses-missing-output",
        ),
        pytest.param(
            "anthropic",
            {"output_tokens": 5},
            "input_tokens",
            "is required",
            id="anthropic-missing-input",
        ),
        pytest.param(
            "anthropic",
            {"input_tokens": 5},
            "output_tokens",
            "is required",
            id="anthropic-missing-output",
        ),
        pytest.param(
            "google",
            {"candidatesTokenCount": 5},
            "promptTokenCount",
            "is required (or prompt_token_count)",
            id="google-missing-prompt",
        ),
        pytest.param(
            "openai",
            {"prompt_tokens": -1, "completion_tokens": 5},
            "prompt_tokens",
            "must be a non-negative integer, not -1",
            id="negative",
        ),
        pytest.param(
            "openai",
            {"prompt_tokens": 10.0, "completion_tokens": 5},
            "prompt_tokens",
            "must be a non-negative integer, not the number 10.0",
            id="float",
        ),
        pytest.param(
            "anthropic",
            {"input_tokens": True, "output_tokens": 5},
            "input_tokens",
            "must be a non-negative integer, not a boolean",
            id="bool",
        ),
        pytest.param(
            "google",
            {"promptTokenCount": "12"},
            "promptTokenCount",
            "must be a non-negative integer, not a string",
            id="string-count",
        ),
        pytest.param(
            "openai",
            {"input_tokens": 10**12 + 1, "output_tokens": 5},
            "input_tokens",
            "must be at most 1,000,000,000,000, not 1,000,000,000,001",
            id="over-limit",
        ),
        pytest.param(
            "openai",
            {
                "prompt_tokens": 1000,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 1200},
            },
            "prompt_tokens_details.cached_tokens",
            "cached_tokens (1200) exceeds prompt_tokens (1000)",
            id="openai-chat-cached-over-prompt",
        ),
        pytest.param(
            "openai",
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "completion_tokens_details": {"reasoning_tokens": 6},
            },
            "completion_tokens_details.reasoning_tokens",
            "reasoning_tokens (6) exceeds completion_tokens (5)",
            id="openai-chat-reasoning-over-completion",
        ),
        pytest.param(
            "openai",
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"audio_tokens": 11},
            },
            "prompt_tokens_details.audio_tokens",
            "audio_tokens (11) exceeds prompt_tokens (10)",
            id="openai-chat-audio-over-prompt",
        ),
        pytest.param(
            "openai",
            {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": 3},
            "prompt_tokens_details",
            "must be an object",
            id="openai-details-not-object",
        ),
        pytest.param(
            "openai",
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": -2},
            },
            "prompt_tokens_details.cached_tokens",
            "must be a non-negative integer, not -2",
            id="openai-cached-negative",
        ),
        pytest.param(
            "openai",
            {
                "input_tokens": 100,
                "output_tokens": 5,
                "input_tokens_details": {"cached_tokens": 101},
            },
            "input_tokens_details.cached_tokens",
            "cached_tokens (101) exceeds input_tokens (100)",
            id="openai-responses-cached-over-input",
        ),
        pytest.param(
            "openai",
            {
                "input_tokens": 100,
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 9},
            },
            "output_tokens_details.reasoning_tokens",
            "reasoning_tokens (9) exceeds output_tokens (5)",
            id="openai-responses-reasoning-over-output",
        ),
        pytest.param(
            "anthropic",
            {"input_tokens": 5, "output_tokens": 5, "cache_read_input_tokens": "100"},
            "cache_read_input_tokens",
            "must be a non-negative integer, not a string",
            id="anthropic-cache-read-string",
        ),
        pytest.param(
            "anthropic",
            {
                "input_tokens": 5,
                "output_tokens": 5,
                "cache_creation_input_tokens": 100,
                "cache_creation": {"ephemeral_1h_input_tokens": 150},
            },
            "cache_creation.ephemeral_1h_input_tokens",
            "ephemeral_1h_input_tokens (150) exceeds cache_creation_input_tokens (100)",
            id="anthropic-1h-over-creation",
        ),
        pytest.param(
            "anthropic",
            {"input_tokens": 5, "output_tokens": 5, "server_tool_use": [3]},
            "server_tool_use",
            "must be an object",
            id="anthropic-server-tool-use-not-object",
        ),
        pytest.param(
            "anthropic",
            {
                "input_tokens": 5,
                "output_tokens": 5,
                "output_tokens_details": {"thinking_tokens": 6},
            },
            "output_tokens_details.thinking_tokens",
            "thinking_tokens (6) exceeds output_tokens (5)",
            id="anthropic-thinking-over-output",
        ),
        pytest.param(
            "google",
            {"promptTokenCount": 1000, "cachedContentTokenCount": 1200},
            "cachedContentTokenCount",
            "cachedContentTokenCount (1200) exceeds promptTokenCount (1000)",
            id="google-cached-over-prompt",
        ),
        pytest.param(
            "google",
            {"prompt_token_count": 1000, "cached_content_token_count": 1200},
            "cached_content_token_count",
            "cached_content_token_count (1200) exceeds prompt_token_count (1000)",
            id="google-snake-cached-over-prompt",
        ),
        pytest.param(
            "google",
            {"promptTokenCount": 10, "prompt_token_count": 10},
            "prompt_token_count",
            "is another spelling of promptTokenCount; send only one",
            id="google-two-spellings",
        ),
        pytest.param(
            "google",
            {"promptTokenCount": 10, "thoughtsTokenCount": 1.5},
            "thoughtsTokenCount",
            "must be a non-negative integer, not the number 1.5",
            id="google-float-thoughts",
        ),
    ],
)
def test_refusals_name_the_path(provider, usage, path, message):
    # given an invalid usage object
    # when it is mapped, then the error says where and what
    with pytest.raises(UsageError) as caught:
        usage_to_metrics(provider, usage)

    assert (caught.value.path, caught.value.message) == (path, message)


def test_unknown_provider_is_refused_with_the_known_ones():
    # given a provider tokentill does not map
    # when its usage is mapped
    with pytest.raises(UsageError) as caught:
        usage_to_metrics("mistral", {"prompt_tokens": 1, "completion_tokens": 1})

    # then the error lists the known providers, for the caller to attach to "provider"
    assert caught.value.path == ""
    assert caught.value.message == "unknown provider 'mistral'; known: openai, anthropic, google"
    assert PROVIDERS == ("openai", "anthropic", "google")


def test_usage_error_is_a_value_error_with_a_readable_text():
    error = UsageError("prompt_tokens", "is required")

    assert isinstance(error, ValueError)
    assert str(error) == "prompt_tokens: is required"
    assert str(UsageError("", "must be an object")) == "must be an object"


counts = st.integers(min_value=0, max_value=MAX_COUNT)


def whole_and_part():
    """A provider total and a part of it (cached <= prompt)."""
    return counts.flatmap(lambda whole: st.tuples(st.just(whole), st.integers(0, whole)))


def assert_sane(result: dict[str, int], full_input: int) -> None:
    assert all(value >= 0 for value in result.values())
    assert (
        result["input_tokens"]
        + result["cached_input_tokens"]
        + result["cache_creation_input_tokens"]
        == full_input
    )


@given(prompt_and_cached=whole_and_part(), completion=counts)
def test_openai_chat_input_adds_up(prompt_and_cached, completion):
    prompt, cached = prompt_and_cached
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }

    result = usage_to_metrics("openai", usage)

    assert_sane(result, full_input=prompt)
    assert result["output_tokens"] == completion


@given(input_and_cached=whole_and_part(), output=counts)
def test_openai_responses_input_adds_up(input_and_cached, output):
    given_input, cached = input_and_cached
    usage = {
        "input_tokens": given_input,
        "output_tokens": output,
        "input_tokens_details": {"cached_tokens": cached},
    }

    result = usage_to_metrics("openai", usage)

    assert_sane(result, full_input=given_input)
    assert result["output_tokens"] == output


@given(given_input=counts, cache_read=counts, cache_write=counts, output=counts)
def test_anthropic_input_adds_up(given_input, cache_read, cache_write, output):
    usage = {
        "input_tokens": given_input,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
        "output_tokens": output,
    }

    result = usage_to_metrics("anthropic", usage)

    assert_sane(result, full_input=given_input + cache_read + cache_write)
    assert result["output_tokens"] == output


@given(
    prompt_and_cached=whole_and_part(),
    tool_prompt=counts,
    candidates=counts,
    thoughts=counts,
    snake=st.booleans(),
)
def test_gemini_input_adds_up(prompt_and_cached, tool_prompt, candidates, thoughts, snake):
    prompt, cached = prompt_and_cached
    usage = {
        "promptTokenCount": prompt,
        "cachedContentTokenCount": cached,
        "toolUsePromptTokenCount": tool_prompt,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": thoughts,
    }
    if snake:
        usage = {
            "prompt_token_count": prompt,
            "cached_content_token_count": cached,
            "tool_use_prompt_token_count": tool_prompt,
            "candidates_token_count": candidates,
            "thoughts_token_count": thoughts,
        }

    result = usage_to_metrics("google", usage)

    assert_sane(result, full_input=prompt + tool_prompt)
    assert result["output_tokens"] == candidates + thoughts
    assert result["reasoning_tokens"] == thoughts
