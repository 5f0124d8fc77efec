"""Metering's Prometheus figures (common/metrics.py; docs/operations/metrics.md).

Counted where the answer is made (the ingest view calls `ingest_count` with the batch's
result, the OTLP view `otlp_count` with its spans'), so the ingest service stays free of
metrics; read at scrape time: the rating queue and the seal lag (the sealer's queue, by
its primary key: one index probe).
"""

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import Metric

from common.metrics import gauge, metrics_collector_register

from .models import UnratedEvent, UsageEvent
from .selectors import seal_lag
from .services import ACCEPTED, DUPLICATE, REJECTED, IngestResult
from .traces import TracesResult

INGESTED = Counter(
    "tokentill_ingest_events",
    "Events judged by POST /api/v1/events, by outcome: accepted (stored), duplicate (a "
    "resend, nothing changed) or rejected.",
    ["outcome"],
)
REJECTIONS = Counter(
    "tokentill_ingest_rejections",
    "Rejected events by reason (the error code: invalid, required, unknown_field, future, "
    "too_late, out_of_range, not_found, conflict...). An event refused for two reasons "
    'counts under each; tokentill_ingest_events_total{outcome="rejected"} counts events.',
    ["reason"],
)


def ingest_count(*, result: IngestResult) -> None:
    """Count a judged batch: its events by outcome, its rejected events by reason."""
    for outcome in (ACCEPTED, DUPLICATE, REJECTED):
        if found := result.count(outcome):
            INGESTED.labels(outcome=outcome).inc(found)
    reasons: dict[str, int] = {}
    for item in result.items:
        for code in {error.code for error in item.errors}:
            reasons[code] = reasons.get(code, 0) + 1
    for code, found in reasons.items():
        REJECTIONS.labels(reason=code).inc(found)


OTLP_SPANS = Counter(
    "tokentill_otlp_spans",
    "Spans received by POST /v1/traces, by outcome: accepted (stored as an event), "
    "duplicate (exported before, nothing changed), rejected (named in the answer's "
    "partial success, nothing stored) or ignored (no GenAI usage to bill).",
    ["outcome"],
)


def otlp_count(*, result: TracesResult) -> None:
    """Count an export's spans by outcome."""
    outcomes = {
        ACCEPTED: result.accepted,
        DUPLICATE: result.duplicates,
        REJECTED: result.rejected,
        "ignored": result.ignored,
    }
    for outcome, found in outcomes.items():
        if found:
            OTLP_SPANS.labels(outcome=outcome).inc(found)


def now() -> datetime:
    return timezone.now()  # a function of its own, so tests can name the instant of a scrape


#: The rating queue is counted up to this many events: past it, the count would cost a
#: scrape more than it tells (the lag says how far behind rating is).
COUNT_CAP = 1_000_000


def rating_queue_oldest() -> tuple[int, datetime | None]:
    """How many events wait to be rated (at most COUNT_CAP), and when the oldest of them
    was received.

    The oldest is the queue's smallest event id (event ids follow receipt): the first
    entry of the queue's primary key, then that event's row by its own, two index probes
    whatever the log and the queue hold. One join would let the planner walk the whole
    log's primary key looking for a queued id, which a billion rated events make slow.
    The count reads the queue: about 50 ms per 500,000 events waiting on PostgreSQL,
    nothing when rating keeps up.
    """
    first = UnratedEvent.objects.order_by("event_id").values_list("event_id", flat=True).first()
    if first is None:
        return 0, None
    waiting = UnratedEvent.objects.all()[:COUNT_CAP].count()
    received = UsageEvent.objects.filter(pk=first).values_list("received_at", flat=True).first()
    return waiting, received


def rating_collect() -> Iterable[Metric]:
    waiting, oldest = rating_queue_oldest()
    lag = max(0.0, (now() - oldest).total_seconds()) if oldest else 0.0
    yield gauge(
        "tokentill_rating_queue_events",
        "Events stored and not yet rated (the rating queue, re-ratings included), counted "
        "up to 1,000,000.",
        waiting,
    )
    yield gauge(
        "tokentill_rating_lag_seconds",
        "Age of the oldest event waiting to be rated, from when it was received; 0 when "
        "the queue is empty. A re-rated event counts from when it was first received.",
        lag,
    )
    yield gauge(
        "tokentill_seal_lag_seconds",
        "Age of the oldest stored batch not yet sealed into the chain; 0 when none.",
        seal_lag(now=now()).total_seconds(),
    )


metrics_collector_register("metering", rating_collect)
