"""What can go wrong, as exceptions (raised to the caller) and as delivery failures (given
to ``on_error`` from the sending thread)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


class TokentillError(Exception):
    """Every error this package raises."""


class ApiError(TokentillError):
    """tokentill answered a request with an error status (after any retries)."""

    def __init__(self, status: int, message: str, body: Any = None):
        super().__init__(f"tokentill answered {status}: {message}")
        self.status = status
        self.body = body


class QueueFull(TokentillError):
    """The queue stayed full for ``full_timeout`` seconds: the event was not queued.

    It is here, whole, as ``event`` (with its ``event_id``): keep it and record it again
    later, or write it elsewhere. The queue fills only while tokentill cannot take events
    as fast as they are recorded (it is down, or refuses the key).
    """

    def __init__(self, event: dict[str, Any]):
        super().__init__(f"the event queue is full; event {event['event_id']!r} was not queued")
        self.event = event


@dataclass(frozen=True)
class DeliveryFailure:
    """An event tokentill did not store, given to ``on_error``.

    ``reason``:

    - ``rejected``: tokentill refused the event itself; ``errors`` lists each field at
      fault (``{"field": ..., "code": ..., "message": ...}``). Sending it again would be
      refused again, so it is not retried.
    - ``refused``: tokentill refused the whole request with a status no retry can change
      (401 a wrong or revoked key, 403, 400, 413 for one event over the size limit);
      ``status`` and ``message`` say which.
    - ``unsent``: the client was closed before tokentill confirmed the event (it may have
      been stored: record it again with the same ``event_id`` and a copy is a duplicate).
    """

    reason: Literal["rejected", "refused", "unsent"]
    event: dict[str, Any]
    message: str
    status: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return str(self.event["event_id"])


class AuthorizationRefused(TokentillError):
    """tokentill refused the call: ``reason`` is one of ``unknown_customer``,
    ``no_contract``, ``no_price``, ``contract_blocked``, ``insufficient_credits``;
    ``message`` says it in words; ``answer`` is the whole answer."""

    def __init__(self, reason: str, message: str, answer: dict[str, Any]):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.answer = answer
