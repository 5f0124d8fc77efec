"""One JSON request to tokentill, and when to try it again.

A request is tried again after a network error, a timeout, a 5xx or a 429: those may
pass, and every request the client sends is safe to repeat (events carry their ids,
authorizations an ``Idempotency-Key``). Pauses grow exponentially with jitter, so many
clients that failed together do not come back together, and are never shorter than the
server's ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import urllib3

from .errors import TokentillError


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status, its ``Retry-After`` in seconds (when sent) and its body
    read as JSON (None when it is not JSON)."""

    status: int
    body: Any
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500

    def detail(self) -> str:
        if isinstance(self.body, dict) and "detail" in self.body:
            return str(self.body["detail"])
        return json.dumps(self.body)[:500] if self.body is not None else ""


class NetworkError(TokentillError):
    """No answer: the connection failed or the answer did not come in time."""


@dataclass(frozen=True)
class Backoff:
    """Pauses between tries: ``first`` seconds, doubling up to ``most``, each drawn from
    the upper half of its range (jitter that keeps a floor), and at least what the
    server's ``Retry-After`` asks."""

    first: float = 0.5
    most: float = 30.0

    def pause(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.most, self.first * 2 ** min(attempt, 30))
        pause = random.uniform(ceiling / 2, ceiling)
        return max(pause, retry_after or 0.0)


class Http:
    """JSON over one connection pool to ``base_url``, with the API key on every request."""

    def __init__(self, *, base_url: str, api_key: str, timeout: float, user_agent: str):
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._timeout = timeout
        self._pool = self._new_pool()

    def _new_pool(self) -> urllib3.PoolManager:
        return urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout),
            retries=False,  # retries are ours: they must know what is safe to repeat
            maxsize=4,
        )

    def reset(self) -> None:
        """New connections (in a forked child, whose inherited ones are the parent's)."""
        self._pool = self._new_pool()

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One try. Raises NetworkError when no answer came."""
        try:
            response = self._pool.request(
                method,
                f"{self.base_url}{path}",
                body=body,
                headers={**self._headers, **(headers or {})},
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise NetworkError(f"{method} {path}: {error}") from error
        try:
            data = json.loads(response.data) if response.data else None
        except ValueError:
            data = None
        return Answer(
            response.status, data, retry_after_seconds(response.headers.get("Retry-After"))
        )

    def send_with_retries(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        attempts: int,
        backoff: Backoff,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Up to ``attempts`` tries while the failure may pass; the last answer, or the
        last NetworkError raised."""
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                answer = self.send(method, path, body, headers)
            except NetworkError:
                if last:
                    raise
                time.sleep(backoff.pause(attempt))
                continue
            if not answer.retryable or last:
                return answer
            time.sleep(backoff.pause(attempt, answer.retry_after))
        raise AssertionError("unreachable: the last try returns or raises")

    def close(self) -> None:
        self._pool.clear()


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds, or an HTTP date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
