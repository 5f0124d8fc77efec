"""An OpenTelemetry GenAI span mapped onto a usage event (pure: no Django).

`span_event` turns one span into the event item `POST /api/v1/events` takes (so the
ingest service judges, deduplicates and stores it like any other), None for a span that
carries no usage to bill, or raises `SpanRefused` naming the attribute at fault.

The counts follow the GenAI semantic conventions, whose totals include their parts:
``gen_ai.usage.input_tokens`` is the whole input, cache reads and writes included, and
``gen_ai.usage.output_tokens`` includes reasoning. tokentill's canonical metrics keep the
parts apart (`metering.providers`), so the uncached input is the total less the cached
parts. Instrumentations that copy a provider's own count where it leaves the cached
parts out (Anthropic's ``input_tokens``) are named by provider in
``uncached_input_providers``, and their input is taken as it is. Older spellings of the
counts, from earlier conventions and from instrumentations that named them before the
conventions did, are read too; two spellings of one count must agree.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .providers import MAX_COUNT, json_kind

# Each count's attribute names, the conventions' current name first.
INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
)
CACHE_CREATION = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)
REASONING = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.output_tokens.reasoning",
)
USAGE_ATTRIBUTES = frozenset(INPUT + OUTPUT + CACHE_READ + CACHE_CREATION + REASONING)
MODEL = ("gen_ai.response.model", "gen_ai.request.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
OPERATION = "gen_ai.operation.name"
PROVIDER_PROPERTY = "gen_ai.provider.name"
EVENT_ID_PREFIX = "otel"


class SpanRefused(ValueError):
    """A span with usage that cannot become an event: `attribute` is the attribute (or
    span field) at fault, `message` says what is wrong with it."""

    def __init__(self, attribute: str, message: str):
        super().__init__(f"{attribute}: {message}")
        self.attribute = attribute
        self.message = message


@dataclass(frozen=True)
class SpanRules:
    """Where a span's customer, feature and properties are read, and which totals leave
    the cached input out (settings, `TOKENTILL_OTLP_*`)."""

    customer_attribute: str
    feature_attribute: str = ""
    property_attributes: tuple[str, ...] = ()
    uncached_input_providers: frozenset[str] = frozenset()
    ignored_operations: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Span:
    """A span as decoded from OTLP: ids as bytes, attribute values as Python values."""

    trace_id: bytes
    span_id: bytes
    name: str
    end_unix_nano: int
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]

    @property
    def label(self) -> str:
        """How an answer names the span: its ids in hex, as OTLP/JSON writes them."""
        return f"span {self.trace_id.hex()}/{self.span_id.hex()} ({self.name[:60]!r})"


def span_carries_usage(span: Span, *, rules: SpanRules) -> bool:
    """True for a span whose usage is billed: it has a usage count, and its operation is
    not one that sums its children's (an agent's invocation, by default)."""
    if not USAGE_ATTRIBUTES & span.attributes.keys():
        return False
    return span.attributes.get(OPERATION) not in rules.ignored_operations


def event_id(trace_id: bytes, span_id: bytes) -> str:
    """The event id of a span, the same whichever encoding carried its ids."""
    return f"{EVENT_ID_PREFIX}-{trace_id.hex()}-{span_id.hex()}"


def span_event(span: Span, *, rules: SpanRules) -> dict[str, Any] | None:
    """The event item of a span that carries usage; None for one that carries none."""
    if not span_carries_usage(span, rules=rules):
        return None
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise SpanRefused("trace_id", "must be 16 bytes, not all zero")
    if len(span.span_id) != 8 or not any(span.span_id):
        raise SpanRefused("span_id", "must be 8 bytes, not all zero")
    if span.end_unix_nano <= 0:
        raise SpanRefused("end_time_unix_nano", "is missing: the event's time is the span's end")

    provider = _first_text(span, PROVIDER)
    item: dict[str, Any] = {
        "event_id": event_id(span.trace_id, span.span_id),
        "customer_id": _attribute_text(span, rules.customer_attribute, required=True),
        "timestamp": _instant(span.end_unix_nano),
        "model": _required_model(span),
        "metrics": _metrics(span, provider=provider, rules=rules),
    }
    if rules.feature_attribute and (
        feature := _attribute_text(span, rules.feature_attribute, required=False)
    ):
        item["feature"] = feature
    properties = {
        name: value for name in rules.property_attributes if (value := _property_text(span, name))
    }
    if provider:
        properties[PROVIDER_PROPERTY] = provider
    if properties:
        item["properties"] = properties
    return item


def _metrics(span: Span, *, provider: str, rules: SpanRules) -> dict[str, int]:
    given_input, input_name = _count(span, INPUT)
    output, output_name = _count(span, OUTPUT)
    if given_input is None and output is None:
        raise SpanRefused(INPUT[0], f"is missing, and so is {OUTPUT[0]}: nothing to bill")
    cache_read, read_name = _count(span, CACHE_READ)
    cache_creation, creation_name = _count(span, CACHE_CREATION)
    reasoning, reasoning_name = _count(span, REASONING)
    given_input, output = given_input or 0, output or 0
    cache_read, cache_creation, reasoning = cache_read or 0, cache_creation or 0, reasoning or 0

    uncached = given_input
    if provider not in rules.uncached_input_providers:
        uncached = given_input - cache_read - cache_creation
        if uncached < 0:
            raise SpanRefused(
                input_name,
                f"({given_input}) is less than {read_name} ({cache_read}) plus "
                f"{creation_name} ({cache_creation}), which the GenAI conventions count "
                "inside it; if this provider's instrumentation reports input without its "
                "cached tokens, name the provider in TOKENTILL_OTLP_UNCACHED_INPUT_PROVIDERS",
            )
    if reasoning > output:
        raise SpanRefused(
            reasoning_name, f"({reasoning}) exceeds {output_name} ({output}), which includes it"
        )
    return {
        "input_tokens": uncached,
        "cached_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
    }


def _count(span: Span, names: tuple[str, ...]) -> tuple[int | None, str]:
    """The count under whichever of its names was sent (None when none was), and the name
    it was read under; two names with different counts are refused."""
    found: list[tuple[str, int]] = []
    for name in names:
        if name in span.attributes:
            found.append((name, _integer(name, span.attributes[name])))
    if not found:
        return None, names[0]
    first_name, first = found[0]
    for other_name, other in found[1:]:
        if other != first:
            raise SpanRefused(
                other_name, f"({other}) is another name of {first_name} ({first}); they differ"
            )
    return first, first_name


def _integer(name: str, value: Any) -> int:
    """An integer count; a whole double is one too (JavaScript's SDK sends numbers so)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpanRefused(name, f"must be an integer attribute, not {_kind(value)}")
    if not 0 <= value <= MAX_COUNT:
        raise SpanRefused(name, f"must be from 0 to {MAX_COUNT:,}, not {value:,}")
    return value


def _required_model(span: Span) -> str:
    model = _first_text(span, MODEL)
    if not model:
        raise SpanRefused(MODEL[0], f"is missing, and so is {MODEL[1]}")
    return model


def _first_text(span: Span, names: tuple[str, ...]) -> str:
    for name in names:
        if text := _attribute_text(span, name, required=False):
            return text
    return ""


def _attribute_text(span: Span, name: str, *, required: bool) -> str:
    """A string (or integer) attribute of the span, else of its resource."""
    value = span.attributes.get(name, span.resource.get(name))
    if value is None or value == "":
        if required:
            raise SpanRefused(name, "is missing from the span and from its resource")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise SpanRefused(name, f"must be a string attribute, not {_kind(value)}")
    return value


def _property_text(span: Span, name: str) -> str:
    """A scalar attribute of the span, else of its resource, as text (a property is a
    string): `true`, `0.7`, `42` as OpenTelemetry's own exporters write them."""
    value = span.attributes.get(name, span.resource.get(name))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None or isinstance(value, str):
        return value or ""
    raise SpanRefused(name, f"must be a string, number or boolean attribute, not {_kind(value)}")


def _instant(unix_nano: int) -> str:
    """RFC 3339 in UTC to the microsecond (the log keeps microseconds). A fixed64 of
    nanoseconds ends in 2554, well inside `datetime`."""
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    return moment.isoformat()


def _kind(value: Any) -> str:
    """What an attribute value is, as `json_kind` says it; OTLP has bytes values too."""
    return "bytes" if isinstance(value, bytes) else json_kind(value)
