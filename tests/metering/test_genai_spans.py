"""GenAI spans mapped onto usage events: metering.genai_spans (no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metering.genai_spans import Span, SpanRefused, SpanRules, event_id, span_event
from tests.metering.test_providers import metrics

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
END = 1_796_126_400_123_456_789  # 2026-12-01T12:00:00.123456789Z
RULES = SpanRules(
    customer_attribute="tokentill.customer_id",
    feature_attribute="tokentill.feature",
    ignored_operations=frozenset({"invoke_agent"}),
)


def span(attributes: dict, resource: dict | None = None, **fields) -> Span:
    values = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "name": "chat gpt-4o",
        "end_unix_nano": END,
        "attributes": attributes,
        "resource": {"tokentill.customer_id": "acme"} if resource is None else resource,
    }
    return Span(**{**values, **fields})


OPENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1486,
    "gen_ai.usage.cache_read.input_tokens": 1408,
    "gen_ai.usage.output_tokens": 651,
    "gen_ai.usage.reasoning.output_tokens": 512,
}
# Anthropic as the conventions count it: 95 uncached + 1,800 read + 205 written = 2,100.
ANTHROPIC = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 2100,
    "gen_ai.usage.cache_read.input_tokens": 1800,
    "gen_ai.usage.cache_creation.input_tokens": 205,
    "gen_ai.usage.output_tokens": 503,
}


def test_an_openai_span_is_one_event_with_the_conventions_totals_taken_apart():
    assert span_event(span(OPENAI), rules=RULES) == {
        "event_id": "otel-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174",
        "customer_id": "acme",
        "timestamp": "2026-12-01T12:00:00.123456+00:00",
        "model": "gpt-4o-2024-08-06",  # the response's model wins over the request's
        "metrics": metrics(input=78, cached=1408, output=651, reasoning=512),
        "properties": {"gen_ai.provider.name": "openai"},
    }


def test_an_anthropic_span_counted_as_the_conventions_say_leaves_uncached_input():
    item = span_event(span(ANTHROPIC), rules=RULES)

    assert item["metrics"] == metrics(input=95, cached=1800, creation=205, output=503)
    assert item["model"] == "claude-sonnet-4-5"


def test_a_provider_named_uncached_has_its_input_taken_as_it_is():
    rules = SpanRules(
        customer_attribute="tokentill.customer_id",
        uncached_input_providers=frozenset({"anthropic"}),
    )
    copied = {**ANTHROPIC, "gen_ai.usage.input_tokens": 95}  # Anthropic's own input_tokens

    item = span_event(span(copied), rules=rules)

    assert item["metrics"] == metrics(input=95, cached=1800, creation=205, output=503)


def test_cached_parts_larger_than_the_input_they_belong_to_are_refused():
    copied = {**ANTHROPIC, "gen_ai.usage.input_tokens": 95}

    with pytest.raises(SpanRefused) as refused:
        span_event(span(copied), rules=RULES)

    assert refused.value.attribute == "gen_ai.usage.input_tokens"
    assert refused.value.message.startswith(
        "(95) is less than gen_ai.usage.cache_read.input_tokens (1800) plus "
        "gen_ai.usage.cache_creation.input_tokens (205)"
    )
    assert "TOKENTILL_OTLP_UNCACHED_INPUT_PROVIDERS" in refused.value.message


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (  # the conventions before 1.27 and gen_ai.system
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4",
                "gen_ai.usage.prompt_tokens": 42,
                "gen_ai.usage.completion_tokens": 7,
            },
            metrics(input=42, output=7),
        ),
        (  # OpenLLMetry's names before the conventions had cache and reasoning counts
            {
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "claude-3-5-haiku",
                "gen_ai.usage.input_tokens": 300,
                "gen_ai.usage.cache_read_input_tokens": 200,
                "gen_ai.usage.cache_creation_input_tokens": 50,
                "gen_ai.usage.output_tokens": 40,
                "gen_ai.usage.reasoning_tokens": 10,
            },
            metrics(input=50, cached=200, creation=50, output=40, reasoning=10),
        ),
        (  # Sentry's names
            {
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.input_tokens.cached": 40,
                "gen_ai.usage.input_tokens.cache_write": 0,
                "gen_ai.usage.output_tokens": 50,
                "gen_ai.usage.output_tokens.reasoning": 10,
            },
            metrics(input=60, cached=40, output=50, reasoning=10),
        ),
        (  # an embeddings call has input only
            {"gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 8},
            metrics(input=8),
        ),
        (  # two names of one count that agree (an instrumentation sending both)
            {
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.prompt_tokens": 10,
                "gen_ai.usage.output_tokens": 2.0,  # JavaScript's numbers arrive as doubles
            },
            metrics(input=10, output=2),
        ),
    ],
)
def test_older_names_of_the_counts_are_read(attributes, expected):
    assert span_event(span(attributes), rules=RULES)["metrics"] == expected


def test_customer_and_feature_from_the_span_win_over_the_resource_and_properties_are_copied():
    rules = SpanRules(
        customer_attribute="tokentill.customer_id",
        feature_attribute="tokentill.feature",
        property_attributes=(
            "deployment.environment.name",
            "gen_ai.operation.name",
            "gen_ai.request.temperature",
            "gen_ai.request.stream",
            "absent",
        ),
    )
    resource = {
        "tokentill.customer_id": "acme",
        "tokentill.feature": "search",
        "deployment.environment.name": "production",
    }
    attributes = {
        **OPENAI,
        "tokentill.customer_id": "globex",
        "tokentill.feature": "support-bot",
        "gen_ai.request.temperature": 0.7,
        "gen_ai.request.stream": False,
    }

    item = span_event(span(attributes, resource), rules=rules)

    assert (item["customer_id"], item["feature"]) == ("globex", "support-bot")
    assert item["properties"] == {
        "deployment.environment.name": "production",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.temperature": "0.7",
        "gen_ai.request.stream": "false",
        "gen_ai.provider.name": "openai",
    }


def test_a_property_attribute_that_is_an_array_is_refused():
    rules = SpanRules(customer_attribute="tokentill.customer_id", property_attributes=("tags",))

    with pytest.raises(SpanRefused) as refused:
        span_event(span({**OPENAI, "tags": ["a", "b"]}), rules=rules)

    assert (refused.value.attribute, refused.value.message) == (
        "tags",
        "must be a string, number or boolean attribute, not an array",
    )


def test_an_integer_customer_attribute_is_its_decimal_text():
    item = span_event(span(OPENAI, {"tokentill.customer_id": 4217}), rules=RULES)

    assert item["customer_id"] == "4217"


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.request.model": "gpt-4o", "http.method": "POST"},
        {},
        # an agent's invocation sums its children's usage: billing it would bill twice
        {**OPENAI, "gen_ai.operation.name": "invoke_agent"},
    ],
)
def test_a_span_without_usage_to_bill_is_no_event(attributes):
    assert span_event(span(attributes), rules=RULES) is None


@pytest.mark.parametrize(
    ("attributes", "resource", "fields", "attribute", "message"),
    [
        (OPENAI, {}, {}, "tokentill.customer_id", "is missing from the span and from its resource"),
        (
            OPENAI,
            {"tokentill.customer_id": ["acme"]},
            {},
            "tokentill.customer_id",
            "must be a string attribute, not an array",
        ),
        (
            {**OPENAI, "gen_ai.response.model": "", "gen_ai.request.model": ""},
            None,
            {},
            "gen_ai.response.model",
            "is missing, and so is gen_ai.request.model",
        ),
        (
            {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.cache_read.input_tokens": 3},
            None,
            {},
            "gen_ai.usage.input_tokens",
            "is missing, and so is gen_ai.usage.output_tokens: nothing to bill",
        ),
        (
            {**OPENAI, "gen_ai.usage.output_tokens": "651"},
            None,
            {},
            "gen_ai.usage.output_tokens",
            "must be an integer attribute, not a string",
        ),
        (
            {**OPENAI, "gen_ai.usage.output_tokens": 6.5},
            None,
            {},
            "gen_ai.usage.output_tokens",
            "must be an integer attribute, not the number 6.5",
        ),
        (
            {**OPENAI, "gen_ai.usage.output_tokens": -1},
            None,
            {},
            "gen_ai.usage.output_tokens",
            "must be from 0 to 1,000,000,000,000, not -1",
        ),
        (
            {**OPENAI, "gen_ai.usage.output_tokens": True},
            None,
            {},
            "gen_ai.usage.output_tokens",
            "must be an integer attribute, not a boolean",
        ),
        (
            {**OPENAI, "gen_ai.usage.reasoning.output_tokens": 700},
            None,
            {},
            "gen_ai.usage.reasoning.output_tokens",
            "(700) exceeds gen_ai.usage.output_tokens (651), which includes it",
        ),
        (
            {**OPENAI, "gen_ai.usage.prompt_tokens": 1500},
            None,
            {},
            "gen_ai.usage.prompt_tokens",
            "(1500) is another name of gen_ai.usage.input_tokens (1486); they differ",
        ),
        (OPENAI, None, {"trace_id": b""}, "trace_id", "must be 16 bytes, not all zero"),
        (OPENAI, None, {"span_id": bytes(8)}, "span_id", "must be 8 bytes, not all zero"),
        (
            OPENAI,
            None,
            {"end_unix_nano": 0},
            "end_time_unix_nano",
            "is missing: the event's time is the span's end",
        ),
    ],
)
def test_a_span_that_cannot_be_mapped_is_refused_naming_the_attribute(
    attributes, resource, fields, attribute, message
):
    with pytest.raises(SpanRefused) as refused:
        span_event(span(attributes, resource, **fields), rules=RULES)

    assert (refused.value.attribute, refused.value.message) == (attribute, message)


@given(
    st.binary(min_size=16, max_size=16).filter(any), st.binary(min_size=8, max_size=8).filter(any)
)
def test_the_event_id_is_the_ids_in_lowercase_hex(trace_id, span_id):
    assert event_id(trace_id, span_id) == f"otel-{trace_id.hex()}-{span_id.hex()}"


@given(
    total=st.integers(0, 10**6),
    read=st.integers(0, 10**6),
    write=st.integers(0, 10**6),
    output=st.integers(0, 10**6),
)
def test_the_canonical_parts_add_up_to_the_conventions_input_total(total, read, write, output):
    attributes = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": total,
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": write,
        "gen_ai.usage.output_tokens": output,
    }
    try:
        found = span_event(span(attributes), rules=RULES)["metrics"]
    except SpanRefused:
        assert read + write > total  # refused only when the parts exceed the whole
        return
    parts = (
        found["input_tokens"] + found["cached_input_tokens"] + found["cache_creation_input_tokens"]
    )
    assert parts == total
    assert min(found.values()) >= 0
