"""What a model call used, read from the provider's response or from its finished stream.

The usage object is sent to tokentill as the provider returned it, with the provider's
name: tokentill maps it onto its metrics (which of the provider's totals include cached,
cache-write and reasoning tokens) in one place, so nothing here counts them again. This
module only finds the usage object, the model and the response id. It accepts the SDKs'
objects (pydantic models, with ``model_dump()``) and plain dicts, and imports no SDK.

Shapes read:

- OpenAI Chat Completions (``object: chat.completion``; streamed ``chat.completion.chunk``,
  whose last chunk carries ``usage`` when the request asked
  ``stream_options={"include_usage": True}``);
- OpenAI Responses (``object: response``; streamed events, the usage in
  ``response.completed``);
- Anthropic Messages (``type: message``; streamed ``message_start`` with the input's
  usage and ``message_delta`` with the final output count);
- Gemini ``generateContent`` (``usageMetadata`` or ``usage_metadata``; streamed chunks,
  the last one with the totals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

PROVIDERS = ("openai", "anthropic", "google")


@dataclass(frozen=True)
class Usage:
    """A provider's usage object, as tokentill's ``provider`` and ``usage`` fields take it."""

    provider: str
    usage: dict[str, Any]
    model: str | None = None
    response_id: str | None = None
    created: datetime | None = None  # when the provider made the response, if it says


@dataclass
class StreamReading:
    """What a finished stream said: its final usage when it carried one, and its text."""

    usage: Usage | None
    text: str
    model: str | None = None
    response_id: str | None = None
    provider: str | None = None
    created: datetime | None = None
    parts: list[str] = field(default_factory=list, repr=False)


def as_dict(value: Any) -> dict[str, Any]:
    """A response or a part of one as a dict: a dict as it is, an SDK's pydantic model
    through ``model_dump`` (v2) or ``dict`` (v1), or the ``to_dict`` of older SDKs."""
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            data = dump(mode="json")
        except TypeError:  # a model_dump that takes no mode
            data = dump()
        return dict(data)
    for name in ("to_dict", "dict"):
        method = getattr(value, name, None)
        if callable(method):
            return dict(method())
    raise TypeError(f"cannot read a {type(value).__name__} as a response: give a dict")


def usage_from_response(response: Any, *, provider: str | None = None) -> Usage:
    """The usage of a whole (not streamed) response. Raises ValueError when it has none."""
    data = as_dict(response)
    google = _first(data, "usageMetadata", "usage_metadata")
    if provider == "google" or (provider is None and google is not None):
        if google is None:
            raise ValueError("the response has no usageMetadata")
        return Usage(
            "google",
            as_dict(google),
            _first(data, "modelVersion", "model_version"),
            _first(data, "responseId", "response_id"),
        )
    usage = data.get("usage")
    if usage is None:
        raise ValueError(
            "the response has no usage (a streamed response? record it with record_stream)"
        )
    usage = as_dict(usage)
    found = provider or _provider_of(data, usage)
    if found not in PROVIDERS:
        raise ValueError(f"unknown provider {found!r}; known: {', '.join(PROVIDERS)}")
    if found == "openai" and "prompt_tokens" in usage and "completion_tokens" not in usage:
        usage["completion_tokens"] = 0  # embeddings: their usage counts the input only
    return Usage(found, usage, data.get("model"), data.get("id"), _created(data))


def _created(data: dict[str, Any]) -> datetime | None:
    """OpenAI's ``created`` (Chat Completions) or ``created_at`` (Responses): Unix time."""
    seconds = data.get("created", data.get("created_at"))
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return datetime.fromtimestamp(seconds, timezone.utc)


def _provider_of(data: dict[str, Any], usage: dict[str, Any]) -> str:
    if data.get("type") == "message" or "cache_read_input_tokens" in usage:
        return "anthropic"
    if data.get("object") in ("chat.completion", "response") or "prompt_tokens" in usage:
        return "openai"
    # Responses API usage has total_tokens and *_details; Anthropic's has neither.
    return "openai" if "total_tokens" in usage else "anthropic"


def read_stream(chunks: Iterable[Any], *, provider: str | None = None) -> StreamReading:
    """The final usage and the text of a finished stream, from its chunks or events in
    the order received (SDK objects or dicts)."""
    reading = StreamReading(usage=None, text="", provider=provider)
    anthropic_usage: dict[str, Any] | None = None
    anthropic_final = False
    for chunk in chunks:
        data = as_dict(chunk)
        kind = data.get("type")
        if _first(data, "usageMetadata", "usage_metadata", "candidates") is not None:
            _gemini_chunk(reading, data)
        elif data.get("object") == "chat.completion.chunk":
            _chat_chunk(reading, data)
        elif isinstance(kind, str) and kind.startswith("response."):
            _responses_event(reading, data)
        elif kind == "message_start":
            message = as_dict(data.get("message") or {})
            reading.provider = reading.provider or "anthropic"
            reading.model, reading.response_id = message.get("model"), message.get("id")
            anthropic_usage = as_dict(message.get("usage") or {})
        elif kind == "content_block_delta":
            delta = as_dict(data.get("delta") or {})
            reading.parts.append(delta.get("text") or delta.get("thinking") or "")
        elif kind == "message_delta" and anthropic_usage is not None:
            # Counts in message_delta are cumulative: they replace message_start's.
            final = {k: v for k, v in as_dict(data.get("usage") or {}).items() if v is not None}
            anthropic_usage.update(final)
            anthropic_final = True
    if anthropic_usage is not None and anthropic_final:
        reading.usage = Usage("anthropic", anthropic_usage, reading.model, reading.response_id)
    reading.text = "".join(reading.parts)
    return reading


def _chat_chunk(reading: StreamReading, data: dict[str, Any]) -> None:
    reading.provider = reading.provider or "openai"
    reading.model = data.get("model") or reading.model
    reading.response_id = data.get("id") or reading.response_id
    reading.created = reading.created or _created(data)
    for choice in data.get("choices") or []:
        delta = as_dict(as_dict(choice).get("delta") or {})
        reading.parts.append(delta.get("content") or "")
    if data.get("usage"):
        reading.usage = Usage(
            "openai", as_dict(data["usage"]), reading.model, reading.response_id, reading.created
        )


def _responses_event(reading: StreamReading, data: dict[str, Any]) -> None:
    reading.provider = reading.provider or "openai"
    kind = data["type"]
    if kind == "response.output_text.delta":
        reading.parts.append(data.get("delta") or "")
    response = data.get("response")
    if response is not None:
        response = as_dict(response)
        reading.model = response.get("model") or reading.model
        reading.response_id = response.get("id") or reading.response_id
        reading.created = reading.created or _created(response)
        if kind in ("response.completed", "response.incomplete") and response.get("usage"):
            reading.usage = Usage(
                "openai",
                as_dict(response["usage"]),
                reading.model,
                reading.response_id,
                reading.created,
            )


def _gemini_chunk(reading: StreamReading, data: dict[str, Any]) -> None:
    reading.provider = reading.provider or "google"
    reading.model = _first(data, "modelVersion", "model_version") or reading.model
    reading.response_id = _first(data, "responseId", "response_id") or reading.response_id
    for candidate in data.get("candidates") or []:
        content = as_dict(as_dict(candidate).get("content") or {})
        for part in content.get("parts") or []:
            reading.parts.append(as_dict(part).get("text") or "")
    usage = _first(data, "usageMetadata", "usage_metadata")
    if usage is not None:
        reading.usage = Usage("google", as_dict(usage), reading.model, reading.response_id)


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None
