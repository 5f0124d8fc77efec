"""An authorization: credits held before a model call, settled by the call's usage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol

logger = logging.getLogger("tokentill_client")


class _Client(Protocol):
    """What an authorization needs of the client (``Tokentill``)."""

    @property
    def record(self) -> Callable[..., str]: ...
    @property
    def record_response(self) -> Callable[..., str]: ...
    @property
    def record_stream(self) -> Callable[..., str]: ...
    def release_hold(self, hold_id: str) -> dict[str, Any]: ...


class Authorization:
    """tokentill's answer to ``Tokentill.authorize``, and the way to record the call.

    The ``record`` methods queue the call's usage event with the authorization's
    customer, model, feature and properties (so it is priced as the hold was), plus the
    hold's id as its ``hold_id`` property: rating that event settles the hold at the
    call's real cost, and gives back the rest of what was held.

    As a context manager, it releases the hold when the block ends without recording
    usage: at once if the block raised (the call failed), and also when it simply
    recorded nothing (no call was made). The exception goes on.
    """

    def __init__(
        self,
        client: _Client,
        answer: dict[str, Any],
        *,
        customer_id: str,
        model: str,
        feature: str | None,
        properties: dict[str, str],
    ):
        self._client = client
        self.answer = answer
        self.customer_id = customer_id
        self.model = model
        self.feature = feature
        self.properties = properties
        self.recorded: list[str] = []  # the ids of the events recorded through it
        self.released = False

    @property
    def allowed(self) -> bool:
        return bool(self.answer.get("allowed"))

    @property
    def reason(self) -> str | None:
        return self.answer.get("reason")

    @property
    def message(self) -> str:
        return str(self.answer.get("message") or "")

    @property
    def hold_id(self) -> str | None:
        """The hold's id; None when nothing is held (refused, or nothing to hold)."""
        hold = self.answer.get("hold")
        return str(hold["id"]) if hold else None

    def record(self, **event: Any) -> str:
        """``Tokentill.record`` for this call (customer and model may be left out)."""
        return self._record(self._client.record, None, event)

    def record_response(self, response: Any, **event: Any) -> str:
        """``Tokentill.record_response`` for this call."""
        return self._record(self._client.record_response, response, event)

    def record_stream(self, chunks: Iterable[Any], **event: Any) -> str:
        """``Tokentill.record_stream`` for this call."""
        return self._record(self._client.record_stream, chunks, event)

    def release(self) -> None:
        """Give the held credits back now (the call was not made). Once only."""
        if self.hold_id is None or self.released:
            return
        self._client.release_hold(self.hold_id)
        self.released = True

    def _record(self, method: Callable[..., str], given: Any, event: dict[str, Any]) -> str:
        properties: Mapping[str, str] = {**self.properties, **(event.pop("properties", None) or {})}
        if self.hold_id is not None:
            properties = {**properties, "hold_id": self.hold_id}
        event.setdefault("customer_id", self.customer_id)
        event.setdefault("model", self.model)
        if self.feature is not None:
            event.setdefault("feature", self.feature)
        args = () if given is None else (given,)
        event_id = str(method(*args, properties=properties or None, **event))
        self.recorded.append(event_id)
        return event_id

    def __enter__(self) -> Authorization:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.recorded or self.hold_id is None:
            return
        try:
            self.release()
        except Exception:
            if exc is None:
                raise
            # The block's own error matters more; the hold expires by itself.
            logger.exception("could not release hold %s", self.hold_id)
