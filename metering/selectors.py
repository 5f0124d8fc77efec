"""Reads of the usage event log: listing for the API and admin, and verifying the seals."""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from .canonical import GENESIS_HASH, event_content_hash, seal_hash
from .models import EventArchive, EventSeal, UsageEvent, UsageEventKey
from .partitions import month_bounds


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
    events = _events_in_seal_order(chunk_size)
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
            row = dict(zip((*_HASHED_FIELDS, "archived"), pending, strict=True))
            event_count += 1
            recomputed = row["content_hash"] if row["archived"] else _row_hash(row)
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
    unsealed = UsageEvent.objects.count() + _archived_keys().count() - event_count
    if unsealed:
        return LogVerification(
            seal_count, event_count, f"{unsealed} stored events are covered by no seal"
        )
    return LogVerification(seal_count, event_count)


def _events_in_seal_order(chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Every sealed event as (*_HASHED_FIELDS, archived), in (seal, id) order: the stored
    ones, and in their places those of archived months, whose rows are gone from the
    database: for these only the key table's content hash is left to chain."""
    stored = (
        (row[0], (*row[1:], False))
        for row in UsageEvent.objects.order_by("seal__sequence", "pk")
        .values_list("seal__sequence", *_HASHED_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    blanks = (None,) * (len(_HASHED_FIELDS) - 6)
    archived = (
        (sequence, (pk, seal_id, customer_id, event_id, timestamp, *blanks, content_hash, True))
        for sequence, pk, seal_id, customer_id, event_id, timestamp, content_hash in (
            _archived_keys()
            .annotate(
                seal_sequence=Subquery(
                    EventSeal.objects.filter(id=OuterRef("seal_id")).values("sequence")
                )
            )
            .filter(seal_sequence__isnull=False)
            .order_by("seal_sequence", "event_pk")
            .values_list(
                "seal_sequence",
                "event_pk",
                "seal_id",
                "customer_id",
                "event_id",
                "timestamp",
                "content_hash",
            )
            .iterator(chunk_size=chunk_size)
        )
    )
    for _, row in heapq.merge(stored, archived, key=lambda item: (item[0], item[1][0])):
        yield row


def _archived_keys() -> QuerySet[UsageEventKey]:
    """The keys of the events of archived (dropped) months."""
    months = EventArchive.objects.filter(dropped=True).values_list("month", flat=True)
    if not months:
        return UsageEventKey.objects.none()
    within = Q()
    for month in months:
        start, end = month_bounds(month)
        within |= Q(timestamp__gte=start, timestamp__lt=end)
    return UsageEventKey.objects.filter(within)


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
