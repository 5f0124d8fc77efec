"""Celery tasks for metering: thin wrappers that call selectors and services.

`seal_events` is asked for after each ingest commit (at most every
TOKENTILL_SEAL_NUDGE_SECONDS per process) and runs every 2 seconds from beat ("Seal the
event log"); any number of copies may run at once (metering.sealing).
`event_log_verify` is scheduled daily by django-celery-beat (the "Verify the event log"
periodic task, editable in the admin). It only reads, so running it twice is harmless.
`create_event_partitions` runs daily too ("Create the event log's partitions"): it
creates only what is missing, so running it twice (or in two workers) is harmless.
"""

import logging

from celery import shared_task
from django.conf import settings

from common.tasks import CREATE_EVENT_PARTITIONS
from metering import partitions, selectors
from metering.checkpoint import CheckpointError, checkpoint_read
from metering.sealing import events_seal

logger = logging.getLogger(__name__)


@shared_task(name="metering.seal_events", ignore_result=True)
def seal_events() -> int:
    """Seal every stored batch into the chain; how many were sealed."""
    return events_seal()


@shared_task(name="metering.tasks.event_log_verify")
def event_log_verify() -> dict:
    """Walk the seal chain (and check the checkpoint file, when one is set); log an ERROR
    naming the first problem when the log is broken."""
    path = settings.TOKENTILL_SEAL_CHECKPOINT_FILE
    try:
        checkpoint = checkpoint_read(path) if path else None
    except CheckpointError as error:
        logger.error("Event log verification FAILED: %s", error)
        return {"ok": False, "seals": 0, "events": 0, "problem": str(error)}
    result = selectors.event_log_verify(checkpoint=checkpoint)
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


@shared_task(name=CREATE_EVENT_PARTITIONS)
def create_event_partitions() -> list[str]:
    """Keep the event log's monthly partitions created ahead (PostgreSQL)."""
    created = partitions.partitions_create_ahead()
    if created:
        logger.info("Event log partitions created: %s", ", ".join(f"{m:%Y-%m}" for m in created))
    return [f"{month:%Y-%m}" for month in created]
