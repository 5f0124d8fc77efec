"""Delivering at least once, and never twice for one successful attempt: the retry policy
of every delivery tokentill makes (billing webhooks, wallets' alert webhooks and emails).

A delivery is claimed by moving its `next_attempt_at` past the attempt (a conditional
UPDATE: of two workers, or a task run twice, one wins), sent with no transaction open (a
receiver that hangs holds no lock, and on SQLite would otherwise hold the only write
lock), then recorded: each attempt's time, answer status, error and next attempt time in
`history`. Failures are tried again after 1 min, 5 min, 30 min, 2 h and 12 h, then the
delivery is failed (it can be tried again by hand); a worker that dies mid-send leaves it
claimed for a few minutes, then the every-minute retry finds it.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import QuerySet

from .models import Delivery
from .signing import NotDelivered

logger = logging.getLogger(__name__)

#: The wait before attempt 2, 3, ...; a delivery that fails once more is failed.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
#: How long a claimed delivery is left to its worker before another may try it: well
#: beyond TOKENTILL_WEBHOOK_TIMEOUT_SECONDS and EMAIL_TIMEOUT.
CLAIM = timedelta(minutes=5)
_RETRY_BATCH = 500

D = TypeVar("D", bound=Delivery)
PENDING, DELIVERED, FAILED = (
    Delivery.Status.PENDING,
    Delivery.Status.DELIVERED,
    Delivery.Status.FAILED,
)


def delivery_attempt(
    *, deliveries: QuerySet[D], delivery_id: int, now: datetime, send: Callable[[D], int | None]
) -> str | None:
    """One attempt at a delivery that is due: `send` it (read from `deliveries`), record
    the attempt; its status after, or None when it was not due (delivered, failed, waiting,
    or being sent by another worker). `send` answers the receiver's status (None for an
    email) or raises: NotDelivered for an answer that is not 2xx, anything else for an
    error on the way (all retried)."""
    claimed = deliveries.model._default_manager.filter(
        pk=delivery_id, status=PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + CLAIM)
    if not claimed:
        return None
    delivery = deliveries.get(pk=delivery_id)
    response_status: int | None = None
    error = ""
    try:
        response_status = send(delivery)
    except NotDelivered as failure:
        response_status, error = failure.status, str(failure)
    except Exception as failure:  # SMTP and network errors are many kinds: all retried
        error = f"{type(failure).__name__}: {failure}"
    return _attempt_record(delivery, now, response_status, error)


def _attempt_record(
    delivery: Delivery, now: datetime, response_status: int | None, error: str
) -> str:
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {
        "attempts": attempts,
        "response_status": response_status,
        "last_error": error,
    }
    if not error:
        fields.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
    elif attempts <= len(BACKOFF):
        fields.update(next_attempt_at=now + BACKOFF[attempts - 1])
    else:
        fields.update(status=FAILED, next_attempt_at=None)
    next_at = fields["next_attempt_at"]
    fields["history"] = [
        *delivery.history,
        {
            "at": now.isoformat(),
            "response_status": response_status,
            "error": error,
            "next_attempt_at": next_at.isoformat() if next_at else None,
        },
    ]
    type(delivery)._default_manager.filter(pk=delivery.pk).update(**fields)
    if error:
        label = type(delivery)._meta.verbose_name
        logger.warning("%s %s, attempt %s: %s", label, delivery.pk, attempts, error)
    status: str = fields.get("status", PENDING)
    return status


def deliveries_retry(
    *, model: type[Delivery], attempt: Callable[[int, datetime], str | None], now: datetime
) -> int:
    """`attempt` every pending delivery of `model` that is due (beat: every minute); how
    many were delivered. Finds again those whose worker died mid-send, once their claim
    lapses."""
    due = model._default_manager.filter(status=PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at", "pk"
    )
    results = [attempt(pk, now) for pk in due.values_list("pk", flat=True)[:_RETRY_BATCH]]
    return results.count(DELIVERED)


def delivery_retry_failed(
    *, model: type[Delivery], delivery_id: int, now: datetime, send_later: Callable[[int], None]
) -> bool:
    """Try a failed delivery again, now: one more attempt (its count goes on, so failing
    again fails it again), sent after the commit by `send_later`. False when it was not
    failed."""
    with transaction.atomic():
        again = model._default_manager.filter(pk=delivery_id, status=FAILED).update(
            status=PENDING, next_attempt_at=now
        )
        if again:
            transaction.on_commit(partial(send_later, delivery_id), robust=True)
    return bool(again)
