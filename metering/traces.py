"""OpenTelemetry GenAI spans stored as usage events (`POST /v1/traces`).

Each span that carries usage becomes the event item `metering.genai_spans` maps it to,
and the items go through `events_ingest`, the REST API's own path: the same judgment of
each item, deduplication by event id (a span exported again is a duplicate), sealing and
rating. A span that cannot be mapped, or whose event the ingest refuses, is rejected by
name with its reason, and nothing about it is stored; spans without usage are ignored.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .genai_spans import MODEL, Span, SpanRefused, SpanRules, span_event
from .services import ACCEPTED, DUPLICATE, ItemResult, events_ingest

#: Rejected spans named in one answer; past it, the answer says how many more.
NAMED_REJECTIONS = 50


@dataclass
class TracesResult:
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejections: list[str] = field(default_factory=list)  # "span <ids> (<name>): <reason>"

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def message(self) -> str:
        """The partial success's error message: every rejected span by name, with why."""
        if not self.rejections:
            return ""
        named = "; ".join(self.rejections[:NAMED_REJECTIONS])
        more = self.rejected - NAMED_REJECTIONS
        tail = f"; and {more} more" if more > 0 else ""
        spans = "span" if self.rejected == 1 else "spans"
        return f"{self.rejected} {spans} rejected, nothing of them stored: {named}{tail}"


def span_rules() -> SpanRules:
    return SpanRules(
        customer_attribute=settings.TOKENTILL_OTLP_CUSTOMER_ATTRIBUTE,
        feature_attribute=settings.TOKENTILL_OTLP_FEATURE_ATTRIBUTE,
        property_attributes=tuple(settings.TOKENTILL_OTLP_PROPERTY_ATTRIBUTES),
        uncached_input_providers=frozenset(settings.TOKENTILL_OTLP_UNCACHED_INPUT_PROVIDERS),
        ignored_operations=frozenset(settings.TOKENTILL_OTLP_IGNORED_OPERATIONS),
    )


def traces_ingest(*, spans: Iterable[Span]) -> TracesResult:
    """Store the usage of every span that carries some, in batches of the REST API's size."""
    rules = span_rules()
    result = TracesResult()
    mapped: list[tuple[Span, dict[str, Any]]] = []
    for span in spans:
        try:
            item = span_event(span, rules=rules)
        except SpanRefused as error:
            result.rejections.append(f"{span.label}: {error.attribute} {error.message}")
            continue
        if item is None:
            result.ignored += 1
        else:
            mapped.append((span, item))

    size = settings.TOKENTILL_INGEST_MAX_BATCH
    for start in range(0, len(mapped), size):
        chunk = mapped[start : start + size]
        judged = events_ingest(items=[item for _, item in chunk])
        for (span, _), item_result in zip(chunk, judged.items, strict=True):
            if item_result.status == ACCEPTED:
                result.accepted += 1
            elif item_result.status == DUPLICATE:
                result.duplicates += 1
            else:
                result.rejections.append(f"{span.label}: {_reasons(item_result, rules)}")
    return result


def _reasons(item_result: ItemResult, rules: SpanRules) -> str:
    """The ingest's reasons, each under the span attribute its event field came from."""
    attribute_of = {
        "customer_id": rules.customer_attribute,
        "feature": rules.feature_attribute,
        "model": MODEL[0],
        "timestamp": "end_time_unix_nano",
    }
    reasons = []
    for error in item_result.errors:
        name = error.field
        if name.startswith("properties."):
            name = name.removeprefix("properties.")
        name = attribute_of.get(name, name)
        reasons.append(f"{name} {error.message}" if name else error.message)
    return "; ".join(reasons)
