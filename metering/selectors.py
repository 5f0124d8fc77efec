"""Reads of the usage event log: listing for the API and admin, and verifying the seals."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from .canonical import GENESIS_HASH, event_content_hash, seal_hash
from .models import EventSeal, UsageEvent


def events_list(
    *,
    customer_external_id: str | None = None,
    event_id: str | None = None,
    model: str | None = None,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[UsageEvent]:
    """Stored events, newest first; `since` is inclusive and `until` exclusive."""
    events = UsageEvent.objects.select_related("customer").order_by("-timestamp", "-id")
    if customer_external_id is not None:
        events = events.filter(customer__external_id=customer_external_id)
    if event_id is not None:
        events = events.filter(event_id=event_id)
    if model is not None:
        events = events.filter(model=model)
    if feature is not None:
        events = events.filter(feature=feature)
    if since is not None:
        events = events.filter(timestamp__gte=since)
    if until is not None:
        events = events.filter(timestamp__lt=until)
    return events


@dataclass(frozen=True)
class LogVerification:
    seals: int
    events: int
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


_HASHED_FIELDS = (
    "pk",
    "seal_id",
    "customer_id",
    "event_id",
    "timestamp",
    "model",
    "feature",
    "metrics",
    "properties",
    "counting",
    "provider",
    "content_hash",
)


def event_log_verify(*, chunk_size: int = 5000) -> LogVerification:
    """Walk the seal chain in order and recompute every hash from the stored rows.

    Events are streamed in seal order beside the seals, so memory stays flat however long
    the log is. Returns the first event or seal that no longer matches.
    """
    seals = EventSeal.objects.order_by("sequence").iterator(chunk_size=chunk_size)
    events = (
        UsageEvent.objects.order_by("seal__sequence", "pk")
        .values_list(*_HASHED_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    pending = next(events, None)
    previous_hash, seal_count, event_count = GENESIS_HASH, 0, 0
    for expected_sequence, seal in enumerate(seals, start=1):
        seal_count += 1
        if seal.sequence != expected_sequence:
            return LogVerification(seal_count, event_count, f"seal #{expected_sequence} is missing")
        if seal.previous_hash != previous_hash:
            return LogVerification(
                seal_count, event_count, f"{seal} does not chain to the seal before it"
            )
        hashes = []
        while pending is not None and pending[1] == seal.id:
            row = dict(zip(_HASHED_FIELDS, pending, strict=True))
            event_count += 1
            recomputed = _row_hash(row)
            if recomputed != row["content_hash"]:
                return LogVerification(
                    seal_count,
                    event_count,
                    f"event {row['pk']} (event_id '{row['event_id']}') no longer matches "
                    f"its content hash: it was changed after it was stored",
                )
            hashes.append(recomputed)
            pending = next(events, None)
        if len(hashes) != seal.event_count:
            return LogVerification(
                seal_count,
                event_count,
                f"{seal} covers {seal.event_count} events but {len(hashes)} are stored",
            )
        recomputed_seal = seal_hash(
            previous_hash=previous_hash, sequence=seal.sequence, content_hashes=hashes
        )
        if recomputed_seal != seal.hash:
            return LogVerification(seal_count, event_count, f"{seal} no longer matches its events")
        previous_hash = seal.hash
    if pending is not None:
        return LogVerification(seal_count, event_count, f"event {pending[0]} has no valid seal")
    unsealed = UsageEvent.objects.count() - event_count
    if unsealed:
        return LogVerification(
            seal_count, event_count, f"{unsealed} stored events are covered by no seal"
        )
    return LogVerification(seal_count, event_count)


def _row_hash(row: dict[str, Any]) -> str:
    return event_content_hash(
        customer_pk=row["customer_id"],
        event_id=row["event_id"],
        timestamp=row["timestamp"],
        model=row["model"],
        feature=row["feature"],
        metrics=row["metrics"],
        properties=row["properties"],
        counting=row["counting"],
        provider=row["provider"],
    )
