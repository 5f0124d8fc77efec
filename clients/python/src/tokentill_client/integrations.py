"""What LangChain and LiteLLM report of a model call, recorded as a usage event.

Neither library is imported here: ``tokentill_client.langchain`` and
``tokentill_client.litellm`` join these recorders to the libraries' base classes, and
only those modules need the libraries (``pip install tokentill-client[langchain]``).

The customer (and feature) of a call come from the recorder's defaults, or per call from
the metadata the caller gives the library, under ``tokentill_customer_id`` and
``tokentill_feature``. A call without a customer, or without usage, is logged and not
recorded.

Usage is sent as the provider's own object whenever the library passes it on (LangChain's
OpenAI and Anthropic chat models keep it in ``llm_output``; LiteLLM keeps the provider's
raw answer as ``original_response``), so that tokentill maps it as it maps any provider
response. Otherwise:

- LangChain's ``usage_metadata`` (the same shape for every provider) is mapped here, by
  its documented rule: ``input_tokens`` is the whole input, of which
  ``input_token_details.cache_read`` and ``cache_creation`` are parts; ``output_tokens``
  the whole output, of which ``output_token_details.reasoning`` is a part;
- LiteLLM's ``usage`` is OpenAI's Chat Completions shape, whatever the provider, and is
  sent as such.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from .providers import Usage, as_dict, usage_from_response

logger = logging.getLogger("tokentill_client")

CUSTOMER_KEY = "tokentill_customer_id"
FEATURE_KEY = "tokentill_feature"

Record = Callable[..., str]  # Tokentill.record


class _Recorder:
    def __init__(
        self,
        record: Record,
        *,
        customer_id: str | None,
        feature: str | None,
        properties: Mapping[str, str] | None,
    ):
        self._record = record
        self.customer_id = customer_id
        self.feature = feature
        self.properties = dict(properties or {})

    def _send(
        self,
        *,
        what: str,
        metadata: Mapping[str, Any],
        event_id: str | None,
        usage: dict[str, Any] | None,
        timestamp: datetime | None = None,
    ) -> str | None:
        customer_id = metadata.get(CUSTOMER_KEY) or self.customer_id
        if not customer_id:
            logger.warning(
                "%s: no customer (set %s in its metadata); not recorded", what, CUSTOMER_KEY
            )
            return None
        if usage is None or not usage.get("model"):
            logger.warning("%s: no usage or no model reported; not recorded", what)
            return None
        return self._record(
            customer_id=customer_id,
            feature=metadata.get(FEATURE_KEY) or self.feature,
            properties=self.properties or None,
            event_id=event_id,
            timestamp=timestamp,
            **usage,
        )


class LangChainRecorder(_Recorder):
    """LangChain's callbacks for chat models and LLMs: one event per call, whose id is
    the call's ``run_id`` (a callback that runs twice records it once)."""

    def __init__(
        self,
        record: Record,
        *,
        customer_id: str | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
    ):
        super().__init__(record, customer_id=customer_id, feature=feature, properties=properties)
        self._runs: dict[UUID, tuple[dict[str, Any], str | None]] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: Any,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata, kwargs)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            metadata, model = self._runs.pop(run_id, ({}, None))
        usage = langchain_usage(response)
        if usage is not None and not usage.get("model"):
            usage["model"] = model
        self._send(
            what=f"LangChain run {run_id}", metadata=metadata, event_id=str(run_id), usage=usage
        )

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def _start(self, run_id: UUID, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        metadata = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
        with self._lock:
            self._runs[run_id] = (metadata, model)


def langchain_usage(result: Any) -> dict[str, Any] | None:
    """``record`` arguments (model, and provider usage or metrics) from an ``LLMResult``;
    None when it reports no usage."""
    llm_output = dict(getattr(result, "llm_output", None) or {})
    messages = [
        getattr(generation, "message", None)
        for generations in getattr(result, "generations", None) or []
        for generation in generations
    ]
    first = dict(getattr(messages[0], "response_metadata", None) or {}) if messages else {}
    model = _first_text(llm_output, first, keys=("model_name", "model"))
    for source in (llm_output, first):
        raw = source.get("token_usage") or source.get("usage")
        if isinstance(raw, Mapping):
            found = _provider_usage({"usage": dict(raw)})
            if found is not None:
                return {"model": model, "provider": found.provider, "usage": found.usage}
    reported = [
        dict(usage)
        for message in messages
        if (usage := getattr(message, "usage_metadata", None)) is not None
    ]
    if not reported:
        return None
    return {"model": model, "metrics": _usage_metadata_metrics(reported)}


def _usage_metadata_metrics(reported: list[dict[str, Any]]) -> dict[str, int]:
    """LangChain's ``usage_metadata`` of each generation, summed, as tokentill's metrics."""
    metrics = dict.fromkeys(
        (
            "input_tokens",
            "cached_input_tokens",
            "cache_creation_input_tokens",
            "output_tokens",
            "reasoning_tokens",
        ),
        0,
    )
    for usage in reported:
        given = dict(usage.get("input_token_details") or {})
        made = dict(usage.get("output_token_details") or {})
        read, written = given.get("cache_read") or 0, given.get("cache_creation") or 0
        metrics["input_tokens"] += int(usage.get("input_tokens") or 0) - read - written
        metrics["cached_input_tokens"] += read
        metrics["cache_creation_input_tokens"] += written
        metrics["output_tokens"] += int(usage.get("output_tokens") or 0)
        metrics["reasoning_tokens"] += made.get("reasoning") or 0
    if metrics["input_tokens"] < 0:
        raise ValueError(f"usage_metadata's cache counts exceed its input_tokens: {reported}")
    return metrics


class LiteLLMRecorder(_Recorder):
    """LiteLLM's success callbacks (sync and async): one event per call, whose id is
    LiteLLM's ``litellm_call_id``."""

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        params = kwargs.get("litellm_params") or {}
        metadata = params.get("metadata") or kwargs.get("metadata") or {}
        call_id = str(kwargs.get("litellm_call_id") or "")
        usage = litellm_usage(kwargs, response_obj)
        ended = end_time.astimezone(timezone.utc) if isinstance(end_time, datetime) else None
        self._send(
            what=f"LiteLLM call {call_id}",
            metadata=metadata,
            event_id=call_id or None,  # None: a new id
            usage=usage,
            timestamp=ended,
        )

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.log_success_event(kwargs, response_obj, start_time, end_time)


def litellm_usage(kwargs: Mapping[str, Any], response_obj: Any) -> dict[str, Any] | None:
    """``record`` arguments from a LiteLLM call: the provider's own usage when its raw
    answer is there and readable, else LiteLLM's (OpenAI-shaped) usage."""
    original = kwargs.get("original_response")
    if isinstance(original, str):
        try:
            original = json.loads(original)
        except ValueError:
            original = None
    found = _provider_usage(original) if isinstance(original, Mapping) else None
    response = as_dict(response_obj) if response_obj is not None else {}
    model = found.model if found else None
    model = model or response.get("model") or kwargs.get("model")
    if found is not None:
        return {"model": model, "provider": found.provider, "usage": found.usage}
    usage = response.get("usage")
    if not isinstance(usage, Mapping) or "prompt_tokens" not in usage:
        return None
    found = usage_from_response({"usage": usage}, provider="openai")
    return {"model": model, "provider": "openai", "usage": found.usage}


_REQUIRED: dict[str, list[tuple[str, ...]]] = {  # the counts each mapping requires
    "openai": [("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")],
    "anthropic": [("input_tokens", "output_tokens")],
    "google": [("promptTokenCount",), ("prompt_token_count",)],
}


def _provider_usage(response: Mapping[str, Any]) -> Usage | None:
    """The provider usage in ``response`` when it has the counts tokentill requires."""
    try:
        found = usage_from_response(response)
    except (ValueError, TypeError):
        return None
    usage = found.usage
    needs = _REQUIRED[found.provider]
    if any(all(isinstance(usage.get(key), int) for key in keys) for keys in needs):
        return found
    return None


def _first_text(*sources: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for source in sources:
        for key in keys:
            if isinstance(source.get(key), str) and source[key]:
                return str(source[key])
    return None
