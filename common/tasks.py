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
import threading
import time

from celery import current_app, shared_task
from django.conf import settings
from django.db import connections, transaction

logger = logging.getLogger(__name__)

RATE_PENDING_USAGE = "billing.rate_pending_usage"
PUSH_INVOICE = "billing.push_invoice"
EMAIL_INVOICE = "billing.email_invoice"
DELIVER_ALERT = "wallets.deliver_alert"
DELIVER_WEBHOOK = "webhooks.deliver"
CREATE_EVENT_PARTITIONS = "metering.create_event_partitions"
SEAL_EVENTS = "metering.seal_events"


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


class Nudge:
    """Ask for the task named `task` at most once per `interval_setting` seconds per
    process. Called after commit (new events, new credits, a re-rating); the task's
    periodic run does whatever a lost nudge left.

    A nudge inside the interval is deferred to its end, never dropped: the task may have
    looked just before this commit and found nothing more to do. At most one deferred
    nudge is owed per process; later ones inside the interval ride on it.
    """

    def __init__(self, task: str, interval_setting: str):
        self.task = task
        self.interval_setting = interval_setting
        self.lock = threading.Lock()
        self.last = float("-inf")  # when the latest nudge was sent, or is due when deferred
        self.deferred: threading.Timer | None = None  # eager mode: the nudge owed, if any

    def __call__(self) -> None:
        with self.lock:
            now = time.monotonic()
            due = self.last + getattr(settings, self.interval_setting)
            if self.deferred is not None or now < self.last:
                return  # a deferred nudge runs after this commit and sees its work
            self.last = max(now, due)
        # Sent outside the lock: a slow broker holds up this request only.
        if now < due:
            self.defer(due - now)
        else:
            task_send(self.task)

    def defer(self, delay: float) -> None:
        """Send the nudge `delay` seconds from now. A broker keeps it that long
        (countdown); without one a sent task runs at once in-process, so a timer thread
        waits instead."""
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            try:
                current_app.tasks[self.task].apply_async(countdown=delay)
            except Exception:
                logger.exception("could not defer %s; its periodic run will do the work", self.task)
            return
        timer = threading.Timer(delay, self._deferred_run)
        timer.daemon = True  # a process that exits does not wait; beat does the work
        with self.lock:
            self.deferred = timer
        timer.start()

    def _deferred_run(self) -> None:
        with self.lock:
            self.deferred = None
            self.last = time.monotonic()  # when it really looks, should the timer be early
        try:
            task_send(self.task)
        finally:
            connections.close_all()  # this thread's own connections


# The rater drains its queue and runs again after the interval while it finds work, so
# an event queued after it looked is still rated within about that delay.
rating_nudge = Nudge(RATE_PENDING_USAGE, "TOKENTILL_RATING_NUDGE_SECONDS")
# The sealer seals every batch committed before it looked (metering.sealing).
sealing_nudge = Nudge(SEAL_EVENTS, "TOKENTILL_SEAL_NUDGE_SECONDS")


@shared_task(name="common.forget_idempotency_keys", ignore_result=True)
def forget_idempotency_keys() -> int:
    """Beat: forget Idempotency-Keys past their retention (common.idempotency)."""
    from .idempotency import idempotency_keys_forget

    return idempotency_keys_forget()
