"""Validation and normalisation of one incoming usage event (pure: no Django).

The ingest path is bulk work, so this is plain code rather than a DRF serializer per item.
`event_parse` turns one JSON item into an `EventDraft` (canonical metrics, UTC timestamp)
or a list of `ItemError`s that say what is wrong and where. Customers are resolved by the
caller, which has the database. `body_load` reads the request's JSON, keeping a number
too large for a double in its place, so it refuses its own item and no other.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, NoReturn

import orjson

from pricing.metrics import METRIC_NAME

from .canonical import metric_value
from .providers import PROVIDERS, UsageError, usage_to_metrics
from .tokens import Counter, TokenCount, TokenizeError, count_messages, count_text

EVENT_FIELDS = frozenset(
    {
        "event_id",
        "customer_id",
        "timestamp",
        "model",
        "feature",
        "metrics",
        "usage",
        "provider",
        "text",
        "messages",
        "properties",
    }
)
DECIMAL_TEXT = re.compile(r"^\d{1,13}(\.\d{1,12})?$")
MAX_METRIC = 10**12
MAX_METRICS = 32
MAX_PROPERTIES = 50
MAX_PROPERTY_KEY = 64
MAX_PROPERTY_VALUE = 512
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class ItemError:
    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class NumberOutOfRange:
    """A JSON number past a double's range (1e400, or an integer of 309 digits), as sent."""

    text: str


def body_load(body: bytes) -> tuple[Any, bool]:
    """The JSON body, with each number past a double's range as a `NumberOutOfRange`, and
    whether it holds any (only then need its items be searched for them).

    orjson reads every body it can; one it refuses is read again by the standard
    library, which calls back on each number, but only to find such numbers: NaN and
    Infinity are not JSON and the body is refused with orjson's error, as is anything
    else orjson would not have read (lone surrogates).
    """
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError as error:
        try:
            data = json.loads(
                body.decode("utf-8"),
                parse_float=_json_float,
                parse_int=_json_int,
                parse_constant=_json_constant,
            )
            orjson.dumps(data, default=lambda number: None)  # what orjson would refuse
        except (ValueError, TypeError, orjson.JSONEncodeError):
            raise error from None
        return data, True


def _json_float(text: str) -> float | NumberOutOfRange:
    number = float(text)
    return number if abs(number) != float("inf") else NumberOutOfRange(text)


def _json_int(text: str) -> int | float | NumberOutOfRange:
    """As orjson reads it: an integer past 64 bits becomes a float."""
    if len(text) > 20:
        return _json_float(text)
    number = int(text)
    return number if -(2**63) <= number < 2**64 else float(number)


def _json_constant(text: str) -> NoReturn:
    raise ValueError(f"{text} is not JSON")


def _out_of_range_numbers(value, path: str, errors: "_Errors") -> None:
    if isinstance(value, NumberOutOfRange):
        errors.add(path, f"{value.text[:40]} is too large to read as a number", "out_of_range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _out_of_range_numbers(item, f"{path}.{key}" if path else key, errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _out_of_range_numbers(item, f"{path}[{index}]", errors)


@dataclass
class EventDraft:
    event_id: str
    customer_id: str
    timestamp: datetime
    model: str
    feature: str
    metrics: dict[str, int | str]  # stored form: see canonical.metric_value
    properties: dict[str, str]
    counting: str  # "reported" or "tokenized"
    provider: str = ""
    tokenizer: str = ""  # a tokenized event's: which tokenizer counted it
    estimated: bool = False  # and whether that count is an estimate


@dataclass(frozen=True)
class IntakeRules:
    """Bounds that depend on the moment of receipt and on settings."""

    now: datetime
    lateness: timedelta
    future_tolerance: timedelta
    counter_for: Callable[[str], Counter]  # the tokenizer table's choice for a model


@dataclass
class _Errors:
    items: list[ItemError] = field(default_factory=list)

    def add(self, path: str, message: str, code: str = "invalid") -> None:
        self.items.append(ItemError(path, message, code))


def event_parse(
    item, *, rules: IntakeRules, out_of_range_possible: bool = True
) -> EventDraft | list[ItemError]:
    """The event, or what is wrong with it. `out_of_range_possible`: whether the item may
    hold a `NumberOutOfRange` (`body_load` says when one cannot)."""
    if not isinstance(item, dict):
        return [ItemError("", "an event must be a JSON object")]
    errors = _Errors()
    if out_of_range_possible:
        _out_of_range_numbers(item, "", errors)
        if errors.items:
            return errors.items  # no rule below expects such a number
    for name in sorted(item.keys() - EVENT_FIELDS):
        errors.add(name, f"unknown field '{name}'", "unknown_field")

    event_id = _text(item, "event_id", errors, MAX_ID_LENGTH, required=True)
    customer_id = _text(item, "customer_id", errors, 100, required=True)
    model = _text(item, "model", errors, MAX_NAME_LENGTH, required=True)
    feature = _text(item, "feature", errors, MAX_NAME_LENGTH, required=False)
    timestamp = _timestamp(item.get("timestamp"), errors, rules)
    properties = _properties(item.get("properties"), errors)
    source = _metrics(item, model, errors, rules)

    if errors.items:
        return errors.items
    assert timestamp is not None  # None only with an error, returned above
    return EventDraft(
        event_id=event_id,
        customer_id=customer_id,
        timestamp=timestamp,
        model=model,
        feature=feature,
        metrics=source.metrics,
        properties=properties,
        counting=source.counting,
        provider=source.provider,
        tokenizer=source.tokenizer,
        estimated=source.estimated,
    )


def _text(item: dict, name: str, errors: _Errors, max_length: int, *, required: bool) -> str:
    value = item.get(name)
    if value is None:
        if required:
            errors.add(name, "this field is required", "required")
        return ""
    if not isinstance(value, str) or not value.strip():
        errors.add(name, "must be a non-empty string")
        return ""
    if len(value) > max_length:
        errors.add(name, f"must be at most {max_length} characters")
    elif not value.isprintable():
        errors.add(name, "must not contain control characters")
    return value


def _timestamp(value, errors: _Errors, rules: IntakeRules) -> datetime | None:
    if value is None:
        errors.add("timestamp", "this field is required", "required")
        return None
    if not isinstance(value, str):
        errors.add("timestamp", "must be an RFC 3339 string such as 2026-11-02T10:15:00Z")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.add("timestamp", f"'{value[:40]}' is not an RFC 3339 timestamp")
        return None
    if moment.tzinfo is None:
        errors.add("timestamp", "must include a UTC offset or 'Z'")
        return None
    if moment > rules.now + rules.future_tolerance:
        minutes = int(rules.future_tolerance.total_seconds() // 60)
        errors.add("timestamp", f"is more than {minutes} minutes in the future", "future")
        return None
    if moment < rules.now - rules.lateness:
        errors.add(
            "timestamp",
            f"is older than the lateness window of {rules.lateness.days} days",
            "too_late",
        )
        return None
    return moment


def _properties(value, errors: _Errors) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("properties", "must be an object of string keys to string values")
        return {}
    if len(value) > MAX_PROPERTIES:
        errors.add("properties", f"must have at most {MAX_PROPERTIES} keys")
        return {}
    for key, text in value.items():
        path = f"properties.{key[:MAX_PROPERTY_KEY]}"
        if not 0 < len(key) <= MAX_PROPERTY_KEY:
            errors.add(path, f"keys must be 1 to {MAX_PROPERTY_KEY} characters")
        elif not isinstance(text, str):
            errors.add(path, "must be a string (properties are a flat string map)")
        elif len(text) > MAX_PROPERTY_VALUE:
            errors.add(path, f"must be at most {MAX_PROPERTY_VALUE} characters")
    return value


class _Source(NamedTuple):
    metrics: dict
    counting: str = ""
    provider: str = ""
    tokenizer: str = ""
    estimated: bool = False


def _metrics(item: dict, model: str, errors: _Errors, rules: IntakeRules) -> _Source:
    """Canonical metrics from exactly one source: metrics, a provider's usage, or text."""
    sources = [name for name in ("metrics", "usage", "text", "messages") if name in item]
    if "messages" in sources and "text" in sources:
        sources.remove("text")  # messages with text.output: one source, checked below
    if len(sources) != 1:
        found = ", ".join(sources) if sources else "none"
        errors.add(
            "metrics",
            "send exactly one of metrics, usage (with provider), text or messages "
            f"(found: {found})",
            "required" if not sources else "invalid",
        )
        return _Source({})
    if "provider" in item and sources != ["usage"]:
        errors.add("provider", "provider goes with usage")

    source = sources[0]
    if source == "metrics":
        return _Source(_reported_metrics(item["metrics"], errors), "reported")
    if source == "usage":
        return _provider_metrics(item, errors)
    if not model:
        return _Source({})  # model is required to choose a tokenizer; already reported
    return _tokenized_metrics(item, model, errors, rules)


def _reported_metrics(value, errors: _Errors) -> dict[str, int | str]:
    if not isinstance(value, dict) or not value:
        errors.add("metrics", "must be a non-empty object of metric names to values")
        return {}
    if len(value) > MAX_METRICS:
        errors.add("metrics", f"must have at most {MAX_METRICS} metrics")
        return {}
    metrics = {}
    for name, raw in value.items():
        path = f"metrics.{name[:64]}"
        if not METRIC_NAME.match(name):
            errors.add(path, "metric names are lowercase identifiers such as input_tokens")
            continue
        number = _metric_value(raw)
        if isinstance(number, str):
            errors.add(path, number)
        else:
            metrics[name] = metric_value(number)
    return metrics


def _metric_value(raw) -> int | Decimal | str:
    """The value as int or Decimal, or the reason it is refused."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return 'must be a non-negative integer or a decimal string such as "12.5"'
    if isinstance(raw, str):
        if not DECIMAL_TEXT.match(raw):
            return f"'{raw[:40]}' is not a non-negative decimal string with up to 12 places"
        raw = Decimal(raw)
    if raw < 0:
        return "must not be negative"
    if raw > MAX_METRIC:
        return f"must be at most {MAX_METRIC:,}"
    return raw


def _provider_metrics(item: dict, errors: _Errors) -> _Source:
    provider = item.get("provider")
    if provider not in PROVIDERS:
        errors.add("provider", f"usage needs provider, one of: {', '.join(PROVIDERS)}")
        return _Source({})
    try:
        return _Source(usage_to_metrics(provider, item["usage"]), "reported", provider)
    except UsageError as error:
        errors.add(f"usage.{error.path}" if error.path else "usage", error.message)
        return _Source({})


def _tokenized_metrics(item: dict, model: str, errors: _Errors, rules: IntakeRules) -> _Source:
    """Input and output counted by the tokenizer the table chose for ``model``; the event
    says which, and that it is estimated when either count is."""
    text = item.get("text", {})
    if (
        not isinstance(text, dict)
        or text.keys() - {"input", "output"}
        or not (text or "messages" in item)
    ):
        errors.add("text", 'must be an object with "input" and/or "output" strings')
        return _Source({})
    if "messages" in item and "input" in text:
        errors.add("text.input", "send the prompt either as messages or as text.input")
        return _Source({})
    prompt = reply = None
    try:
        counter = rules.counter_for(model)
        if "messages" in item:
            prompt = count_messages(counter=counter, messages=item["messages"])
        elif "input" in text:
            prompt = _count(counter, text["input"], "text.input")
        if "output" in text:
            reply = _count(counter, text["output"], "text.output")
    except TokenizeError as error:
        errors.add(error.path, error.message)
        return _Source({})
    metrics = {
        "input_tokens": prompt.tokens if prompt else 0,
        "output_tokens": reply.tokens if reply else 0,
    }
    estimated = any(count.estimated for count in (prompt, reply) if count)
    return _Source(metrics, "tokenized", "", counter.tokenizer, estimated)


def _count(counter: Counter, value, path: str) -> TokenCount:
    try:
        return count_text(counter=counter, text=value)
    except TokenizeError as error:
        raise TokenizeError(path, error.message) from error
