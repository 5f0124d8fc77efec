"""Celery tasks for metering: thin wrappers that call selectors and services.

`event_log_verify` is scheduled daily by django-celery-beat (the "Verify the event log"
periodic task, editable in the admin). It only reads, so running it twice is harmless.
"""

import logging

from celery import shared_task

from metering import selectors

logger = logging.getLogger(__name__)


@shared_task(name="metering.tasks.event_log_verify")
def event_log_verify() -> dict:
    """Walk the seal chain; log an ERROR naming the first problem when the log is broken."""
    result = selectors.event_log_verify()
    if result.ok:
        logger.info("Event log intact: %s seals, %s events verified.", result.seals, result.events)
    else:
        logger.error(
            "Event log verification FAILED after %s seals and %s events: %s",
            result.seals,
            result.events,
            result.problem,
        )
    return {
        "ok": result.ok,
        "seals": result.seals,
        "events": result.events,
        "problem": result.problem,
    }
