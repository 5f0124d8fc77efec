"""``Tokentill``: record usage events, which a background thread sends in batches; count
tokens; hold credits before a call (``authorize``)."""

from __future__ import annotations

import atexit
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any

from . import __version__
from ._http import Backoff, Http
from ._sender import Sender, log_failure
from .authorization import Authorization
from .errors import ApiError, AuthorizationRefused, DeliveryFailure
from .providers import PROVIDERS, read_stream, usage_from_response

Metric = int | str | Decimal


class Tokentill:
    """A tokentill client: one per process is enough, shared by every thread.

    ``record`` and its helpers queue an event and return at once; a background thread
    sends queued events in batches of up to ``batch_size``, at most ``flush_interval``
    seconds after each was recorded. A batch that fails (no answer in ``timeout``
    seconds, a 5xx, a 429) is sent again after a pause that doubles from ``backoff`` up
    to ``max_backoff`` seconds (with jitter, and never shorter than ``Retry-After``), for
    as long as the client is open: each event's id is fixed when it is recorded, so a
    copy tokentill already stored is answered as a duplicate, never stored twice.

    Events tokentill refuses, and events still unconfirmed when the client closes, go to
    ``on_error`` (by default: logged as errors by the ``tokentill_client`` logger).

    The queue holds ``max_queue_size`` events. When it is full, ``record`` waits up to
    ``full_timeout`` seconds for room (None: as long as it takes), then raises
    ``QueueFull`` with the event: an event is never dropped without the caller knowing.

    At interpreter exit the client is closed: what is queued is sent, for up to
    ``close_timeout`` seconds. Requests the caller waits for (``authorize``,
    ``count_tokens``, holds) are tried ``request_attempts`` times.

    ``api_key`` and ``base_url`` default to ``TOKENTILL_API_KEY`` and ``TOKENTILL_URL``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue_size: int = 10_000,
        full_timeout: float | None = 1.0,
        timeout: float = 10.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        request_attempts: int = 4,
        close_timeout: float = 10.0,
        on_error: Callable[[DeliveryFailure], None] | None = None,
    ):
        api_key = api_key or os.environ.get("TOKENTILL_API_KEY")
        base_url = base_url or os.environ.get("TOKENTILL_URL")
        if not api_key:
            raise ValueError("give api_key (or set TOKENTILL_API_KEY)")
        if not base_url:
            raise ValueError("give base_url, e.g. https://billing.example.com (or TOKENTILL_URL)")
        if request_attempts < 1:
            raise ValueError("request_attempts must be at least 1")
        self._http = Http(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            user_agent=f"tokentill-client-python/{__version__}",
        )
        self._backoff = Backoff(first=backoff, most=max_backoff)
        self._attempts = request_attempts
        self._close_timeout = close_timeout
        self._sender = Sender(
            self._http,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue_size=max_queue_size,
            full_timeout=full_timeout,
            backoff=self._backoff,
            on_error=on_error or log_failure,
        )
        self._closed = False
        self._response_times: OrderedDict[str, datetime] = OrderedDict()
        self._response_times_lock = threading.Lock()
        atexit.register(self._close_at_exit)

    # --- recording --------------------------------------------------------------------

    def record(
        self,
        *,
        customer_id: str,
        model: str,
        metrics: Mapping[str, Metric] | None = None,
        usage: Mapping[str, Any] | None = None,
        provider: str | None = None,
        input_text: str | None = None,
        output_text: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """Queue one usage event and return its ``event_id`` (a new UUID unless given).

        Give exactly one source of counts: ``metrics`` (metric name to a whole number, a
        decimal string or a Decimal); a provider's ``usage`` object with its
        ``provider`` (``openai``, ``anthropic``, ``google``), which tokentill maps; or
        text for tokentill to count: ``input_text`` and/or ``output_text``, or chat
        ``messages`` with the reply as ``output_text``. Counts reported by the provider
        are what billing should rest on: send text only when there are none.
        """
        event: dict[str, Any] = {
            "event_id": event_id or str(uuid.uuid4()),
            "customer_id": _required_text("customer_id", customer_id),
            "timestamp": _instant(timestamp),
            "model": _required_text("model", model),
        }
        if feature:
            event["feature"] = feature
        if properties:
            event["properties"] = _properties(properties)
        event.update(_source(metrics, usage, provider, input_text, output_text, messages))
        self._sender.put(event)
        return str(event["event_id"])

    def record_response(
        self,
        response: Any,
        *,
        customer_id: str,
        model: str | None = None,
        provider: str | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """Record the usage of a whole response: an OpenAI chat completion or response,
        an Anthropic message or a Gemini ``generateContent`` answer (the SDK's object or
        its dict). The provider's usage object is sent as it is, for tokentill to map.
        The model defaults to the one the response names, the event id to the
        response's id and the timestamp to its creation time when it gives one (OpenAI),
        else to when this client first recorded that id, so a response recorded twice is
        stored once: the second copy is a duplicate. (Recorded again by another process,
        a response with no time of its own differs in its timestamp: a ``conflict`` for
        ``on_error``, and still stored once.)"""
        found = usage_from_response(response, provider=provider)
        return self.record(
            customer_id=customer_id,
            model=_required_text("model", model or found.model or ""),
            usage=found.usage,
            provider=found.provider,
            feature=feature,
            properties=properties,
            timestamp=timestamp or found.created or self._first_recorded(found.response_id),
            event_id=event_id or found.response_id,
        )

    #: Response ids whose first recording time a client remembers, the newest kept.
    RESPONSE_TIMES_KEPT = 10_000

    def _first_recorded(self, response_id: str | None) -> datetime | None:
        """When this client first recorded a response that carries no time of its own
        (Anthropic, Gemini), so that recording it again sends the same event."""
        if not response_id:
            return None
        with self._response_times_lock:
            moment = self._response_times.setdefault(response_id, datetime.now(timezone.utc))
            self._response_times.move_to_end(response_id)
            while len(self._response_times) > self.RESPONSE_TIMES_KEPT:
                self._response_times.popitem(last=False)
            return moment

    def record_stream(
        self,
        chunks: Iterable[Any],
        *,
        customer_id: str,
        model: str | None = None,
        provider: str | None = None,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """Record a finished stream from its chunks (or events), in the order received.

        When the stream carried its final usage (OpenAI with ``stream_options=
        {"include_usage": True}``, the Responses API, Anthropic, Gemini), that is sent as
        ``record_response`` would. Otherwise tokentill counts the text: the streamed
        reply, and the request's ``prompt`` or chat ``messages``, one of which is then
        required (without it the input would count as nothing).
        """
        reading = read_stream(chunks, provider=provider)
        name = _required_text("model", model or reading.model or "")
        event_id = event_id or reading.response_id
        common: dict[str, Any] = {
            "customer_id": customer_id,
            "model": name,
            "feature": feature,
            "properties": properties,
            "timestamp": timestamp or reading.created or self._first_recorded(event_id),
            "event_id": event_id,
        }
        if reading.usage is not None:
            usage = reading.usage
            return self.record(usage=usage.usage, provider=usage.provider, **common)
        if prompt is None and messages is None:
            raise ValueError(
                "the stream carried no usage: give prompt= or messages= so that tokentill "
                "can count its input (or ask the provider for usage in the stream)"
            )
        if messages is not None:
            return self.record(messages=messages, output_text=reading.text, **common)
        return self.record(input_text=prompt, output_text=reading.text, **common)

    # --- requests the caller waits for ------------------------------------------------

    def authorize(
        self,
        *,
        customer_id: str,
        model: str,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        max_output_tokens: int | None = None,
        estimate: Mapping[str, int] | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
        reference: str | None = None,
        raise_on_refusal: bool = True,
    ) -> Authorization:
        """Ask tokentill before a model call: it prices the call's worst case (the
        ``prompt`` or chat ``messages`` plus ``max_output_tokens``, or an ``estimate`` by
        metric) and holds that much of the customer's credits.

        Use it as a context manager, and record the call's usage through it: the event
        carries the hold's id, and rating it settles the hold at the call's real cost.
        A block that raises before recording releases the hold at once::

            with client.authorize(customer_id="acme", model="gpt-4o",
                                  messages=messages, max_output_tokens=800) as auth:
                response = openai.chat.completions.create(...)
                auth.record_response(response)

        A refusal (no credits left, no contract, no price...) raises
        ``AuthorizationRefused`` with tokentill's ``reason`` and ``message``, unless
        ``raise_on_refusal`` is False (then check ``allowed``).
        """
        body: dict[str, Any] = {"customer_id": customer_id, "model": model}
        for name, value in (
            ("prompt", prompt),
            ("messages", None if messages is None else [dict(m) for m in messages]),
            ("max_output_tokens", max_output_tokens),
            ("estimate", None if estimate is None else dict(estimate)),
            ("feature", feature),
            ("properties", None if properties is None else _properties(properties)),
            ("reference", reference),
        ):
            if value is not None:
                body[name] = value
        answer = self.request(
            "POST", "/api/v1/authorizations", body, idempotency_key=str(uuid.uuid4())
        )
        authorization = Authorization(
            self,
            answer,
            customer_id=customer_id,
            model=model,
            feature=feature,
            properties=dict(properties or {}),
        )
        if raise_on_refusal and not authorization.allowed:
            raise AuthorizationRefused(authorization.reason or "", authorization.message, answer)
        return authorization

    def release_hold(self, hold_id: str) -> dict[str, Any]:
        """Give a hold's credits back at once (the call was not made); the hold as it is
        then. Releasing a hold that is no longer active changes nothing."""
        return self.request("POST", f"/api/v1/holds/{hold_id}/release", None)

    def hold(self, hold_id: str) -> dict[str, Any]:
        """A hold: ``active``, ``settled`` (with ``settled_cost``), ``released`` or
        ``expired``."""
        return self.request("GET", f"/api/v1/holds/{hold_id}", None)

    def count_tokens(
        self,
        *,
        model: str,
        text: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
    ) -> int:
        """Tokens of ``text``, or of chat ``messages`` with their formatting overhead, as
        tokentill counts them for ``model``."""
        if (text is None) == (messages is None):
            raise ValueError("give exactly one of text or messages")
        body: dict[str, Any] = {"model": model}
        if text is not None:
            body["text"] = text
        else:
            body["messages"] = [dict(message) for message in messages or ()]
        return int(self.request("POST", "/api/v1/tokens/count", body)["tokens"])

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One API call under ``/api/v1`` (``path`` starts with it), tried again after a
        network error, a 5xx or a 429; its JSON answer, or ApiError."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        data = None if body is None else json.dumps(body).encode()
        answer = self._http.send_with_retries(
            method, path, data, attempts=self._attempts, backoff=self._backoff, headers=headers
        )
        if not 200 <= answer.status < 300 or not isinstance(answer.body, dict):
            raise ApiError(answer.status, answer.detail(), answer.body)
        return answer.body

    # --- the queue --------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send every event recorded so far now, and wait until tokentill has answered
        for each (stored, a duplicate, or refused and given to ``on_error``). False when
        ``timeout`` seconds passed first."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Send what is queued and stop; ``record`` refuses events afterwards. Events
        tokentill has not confirmed after ``timeout`` seconds (by default
        ``close_timeout``) go to ``on_error`` as ``unsent``. True when all were sent."""
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self._close_at_exit)
        return self._sender.close(self._close_timeout if timeout is None else timeout)

    def counts(self) -> dict[str, int]:
        """Events so far: ``accepted``, ``duplicates`` (already stored: resends),
        ``failed`` (given to ``on_error``) and ``queued`` (not yet answered)."""
        return {**self._sender.counts, "queued": self._sender.queued()}

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self) -> Tokentill:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _required_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _instant(moment: datetime | None) -> str:
    if moment is None:
        return datetime.now(timezone.utc).isoformat()
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return moment.isoformat()


def _properties(properties: Mapping[str, str]) -> dict[str, str]:
    for key, value in properties.items():
        if not isinstance(value, str):
            raise TypeError(f"properties[{key!r}] must be a string, not {type(value).__name__}")
    return dict(properties)


def _source(
    metrics: Mapping[str, Metric] | None,
    usage: Mapping[str, Any] | None,
    provider: str | None,
    input_text: str | None,
    output_text: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The event's one source of counts, in the API's fields."""
    if messages is not None and input_text is not None:
        raise ValueError("give the prompt as messages or as input_text, not both")
    text = input_text is not None or output_text is not None
    given = [
        name
        for name, present in (
            ("metrics", metrics is not None),
            ("usage", usage is not None),
            ("messages", messages is not None),
            ("input_text/output_text", text and messages is None),
        )
        if present
    ]
    if len(given) != 1:
        raise ValueError(
            "give exactly one of metrics, usage (with provider), input_text/output_text or "
            f"messages (given: {', '.join(given) or 'none'})"
        )
    if (provider is not None) != (usage is not None):
        raise ValueError(f"usage and provider go together; provider is one of {PROVIDERS}")
    if metrics is not None:
        return {"metrics": {name: _metric(name, value) for name, value in metrics.items()}}
    if usage is not None:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
        return {"provider": provider, "usage": dict(usage)}
    source: dict[str, Any] = {}
    if messages is not None:
        source["messages"] = [dict(message) for message in messages]
    counted = {"input": input_text, "output": output_text}
    if text:
        source["text"] = {name: value for name, value in counted.items() if value is not None}
    return source


def _metric(name: str, value: Metric) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise TypeError(
            f"metrics[{name!r}] must be an int, a Decimal or a decimal string, not "
            f"{type(value).__name__} (floats are inexact)"
        )
    if isinstance(value, Decimal):
        return format(value, "f")
    return value
