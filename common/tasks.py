"""Celery tasks sent by name: how one app asks for work that another app does.

An app never imports another app's tasks (metering would then import billing, against
the layers): it sends the task by the name it is registered under, listed here once,
after the current transaction commits, so a task never looks for rows that are not
committed yet and a write that rolls back sends nothing. Each app's `AppConfig.ready`
imports its own tasks module, so every process (web ones included) knows every task by
name. Without a broker (tests, the quickstart) Celery runs a sent task in-process, at once.
"""

import functools
import logging
import time

from celery import current_app, shared_task
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

RATE_PENDING_USAGE = "billing.rate_pending_usage"
PUSH_INVOICE = "billing.push_invoice"
EMAIL_INVOICE = "billing.email_invoice"
DELIVER_ALERT = "wallets.deliver_alert"
DELIVER_WEBHOOK = "webhooks.deliver"


def task_send(name: str, *args) -> None:
    """Send the task named `name` now. A broker that cannot take it is logged, never
    raised: the work waits in the database for the task's periodic run."""
    try:
        current_app.tasks[name].delay(*args)
    except Exception:
        logger.exception("could not send %s; its periodic run will do the work", name)


def task_send_on_commit(name: str, *args) -> None:
    """Send the task named `name` once the current transaction commits (at once outside
    one)."""
    transaction.on_commit(functools.partial(task_send, name, *args))


_last_nudge = float("-inf")


def rating_nudge() -> None:
    """Ask the rater to run, at most once per TOKENTILL_RATING_NUDGE_SECONDS per process:
    it drains the queue and runs again after that delay while it finds work, so an event
    queued after it looked is still rated within about that delay. Called after commit
    (new events, new credits, a re-rating); the periodic run rates whatever it missed."""
    global _last_nudge
    now = time.monotonic()
    if now - _last_nudge < settings.TOKENTILL_RATING_NUDGE_SECONDS:
        return
    _last_nudge = now
    task_send(RATE_PENDING_USAGE)


@shared_task(name="common.forget_idempotency_keys", ignore_result=True)
def forget_idempotency_keys() -> int:
    """Beat: forget Idempotency-Keys past their retention (common.idempotency)."""
    from .idempotency import idempotency_keys_forget

    return idempotency_keys_forget()
