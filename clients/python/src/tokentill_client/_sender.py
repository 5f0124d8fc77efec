"""The queue of recorded events and the thread that sends them in batches.

One batch is in flight at a time, in the order events were recorded. A batch that gets
no answer, a 5xx or a 429 is sent again, whole and unchanged, until tokentill answers it:
every event carries the id it was given when recorded, so a copy tokentill already
stored comes back as a ``duplicate`` and nothing is stored twice. Events tokentill
refuses are handed to ``on_error`` once and never sent again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._http import Backoff, Http, NetworkError
from .errors import DeliveryFailure, QueueFull, TokentillError

logger = logging.getLogger("tokentill_client")

EVENTS_PATH = "/api/v1/events"
#: tokentill refuses a body over 16 MiB (TOKENTILL_INGEST_MAX_BODY_BYTES by default); a
#: batch stops well short of that, and a 413 splits it anyway.
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BATCH_SIZE = 1000

OnError = Callable[[DeliveryFailure], None]


@dataclass(frozen=True)
class _Item:
    event: dict[str, Any]
    data: bytes  # the event's JSON, made once when recorded: every resend is the same
    queued_at: float  # time.monotonic()
    seq: int  # 1, 2, 3... in the order recorded


def log_failure(failure: DeliveryFailure) -> None:
    """The default ``on_error``: log it, with what is needed to find the event again."""
    logger.error(
        "tokentill did not store event %r (%s%s): %s%s",
        failure.event_id,
        failure.reason,
        f", status {failure.status}" if failure.status else "",
        failure.message,
        f" {failure.errors}" if failure.errors else "",
    )


class Sender:
    def __init__(
        self,
        http: Http,
        *,
        batch_size: int,
        flush_interval: float,
        max_queue_size: int,
        full_timeout: float | None,
        backoff: Backoff,
        on_error: OnError,
    ):
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
        if max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        self.http = http
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue_size = max_queue_size
        self.full_timeout = full_timeout
        self.backoff = backoff
        self.on_error = on_error
        self._fresh_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _fresh_state(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._recorded = 0  # events queued so far (the seq of the latest)
        self._settled = 0  # of them, those answered or failed (always the oldest ones)
        self._flush_upto = 0  # send events up to this seq without waiting for the interval
        self._closing = False
        self._abort = threading.Event()  # close() ran out of time: stop trying
        self._thread: threading.Thread | None = None
        self.counts = {"accepted": 0, "duplicates": 0, "failed": 0}

    # --- the caller's side ------------------------------------------------------------

    def put(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        with self._cond:
            if self._closing:
                raise TokentillError("the client is closed; events can no longer be recorded")
            self._ensure_thread()
            if not self._cond.wait_for(
                lambda: len(self._queue) < self.max_queue_size, self.full_timeout
            ):
                raise QueueFull(event)
            self._recorded += 1
            self._queue.append(_Item(event, data, time.monotonic(), self._recorded))
            if len(self._queue) in (1, self.batch_size):
                self._cond.notify_all()  # a new deadline, or a full batch

    def flush(self, timeout: float | None) -> bool:
        """Send what is queued now, and wait until tokentill answered it (or it failed)."""
        with self._cond:
            target = self._recorded
            self._flush_upto = max(self._flush_upto, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._settled >= target, timeout)

    def close(self, timeout: float | None) -> bool:
        """Send everything queued, then stop. What tokentill has not confirmed after
        ``timeout`` seconds goes to ``on_error`` as ``unsent``. True when all was sent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            done = self._cond.wait_for(lambda: self._settled >= self._recorded, timeout)
            thread = self._thread
        if not done:
            self._abort.set()
        if thread is not None:
            thread.join()
        self.http.close()
        return done

    def queued(self) -> int:
        with self._cond:
            return self._recorded - self._settled

    # --- the sending thread -----------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tokentill-sender", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if self._abort.is_set():
                self._fail(batch, "unsent", "the client was closed before it was sent")
                continue
            try:
                self._deliver(batch)
            except Exception as error:  # a bug here must not stop the thread, nor hide
                logger.exception("the sending thread failed on a batch")
                self._fail(batch, "unsent", f"the client failed while sending: {error!r}")

    def _next_batch(self) -> list[_Item] | None:
        """The next batch once it is due: full, flushed, closing, or its oldest event has
        waited ``flush_interval``. None once closed and empty."""
        with self._cond:
            while True:
                if self._queue:
                    head = self._queue[0]
                    wait = head.queued_at + self.flush_interval - time.monotonic()
                    due = len(self._queue) >= self.batch_size or head.seq <= self._flush_upto
                    if due or self._closing or wait <= 0:
                        batch = self._take()
                        self._cond.notify_all()  # room for callers waiting on a full queue
                        return batch
                    self._cond.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _take(self) -> list[_Item]:
        batch = [self._queue.popleft()]
        size = len(batch[0].data)
        while self._queue and len(batch) < self.batch_size:
            size += len(self._queue[0].data) + 1
            if size > MAX_BATCH_BYTES:
                break
            batch.append(self._queue.popleft())
        return batch

    def _deliver(self, batch: list[_Item]) -> None:
        body = b'{"events":[' + b",".join(item.data for item in batch) + b"]}"
        attempt = 0
        while True:
            retry_after = None
            try:
                answer = self.http.send("POST", EVENTS_PATH, body)
            except NetworkError as error:
                problem = str(error)
            else:
                if answer.status in (202, 422) and _is_ingest_answer(answer.body, len(batch)):
                    self._settle(batch, answer.body["items"])
                    return
                if answer.status == 413 and len(batch) > 1:
                    half = len(batch) // 2
                    self._deliver(batch[:half])
                    self._deliver(batch[half:])
                    return
                if not answer.retryable:
                    self._fail(batch, "refused", answer.detail(), answer.status)
                    return
                problem = f"{answer.status} {answer.detail()}".strip()
                retry_after = answer.retry_after
            pause = self.backoff.pause(attempt, retry_after)
            attempt += 1
            logger.warning(
                "could not send %d events to tokentill (%s); trying again in %.2f s",
                len(batch),
                problem,
                pause,
            )
            if self._abort.wait(pause):
                self._fail(batch, "unsent", f"the client was closed while retrying ({problem})")
                return

    def _settle(self, batch: list[_Item], results: list[dict[str, Any]]) -> None:
        for result in results:
            status = result["status"]
            if status == "accepted":
                self.counts["accepted"] += 1
            elif status == "duplicate":
                self.counts["duplicates"] += 1
            else:
                errors = result.get("errors") or []
                message = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
                self._report(
                    DeliveryFailure("rejected", batch[result["index"]].event, message, 202, errors)
                )
        self._done(len(batch))

    def _fail(
        self,
        batch: list[_Item],
        reason: Literal["refused", "unsent"],
        message: str,
        status: int | None = None,
    ) -> None:
        for item in batch:
            self._report(DeliveryFailure(reason, item.event, message, status))
        self._done(len(batch))

    def _report(self, failure: DeliveryFailure) -> None:
        self.counts["failed"] += 1
        try:
            self.on_error(failure)
        except Exception:
            logger.exception("on_error raised for event %r", failure.event_id)

    def _done(self, count: int) -> None:
        with self._cond:
            self._settled += count
            self._cond.notify_all()


def _is_ingest_answer(body: Any, count: int) -> bool:
    """tokentill's ingest answer for ``count`` events (not some proxy's page)."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return False
    items = body["items"]
    return len(items) == count and all(
        isinstance(item, dict)
        and item.get("index") in range(count)
        and item.get("status") in ("accepted", "duplicate", "rejected")
        for item in items
    )


def _after_fork(ref: weakref.ReferenceType[Sender]) -> None:
    """In a forked child: a queue, lock and thread of its own, and new connections. The
    parent's queued events stay the parent's to send."""
    sender = ref()
    if sender is not None:
        sender._fresh_state()
        sender.http.reset()
