"""Reads of the usage event log: listing for the API and admin, and verifying the seals."""

import heapq
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from .canonical import GENESIS_HASH, event_content_hash, seal_hash
from .checkpoint import Checkpoint
from .models import EventArchive, EventSeal, UnsealedBatch, UsageEvent, UsageEventKey
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
    events: int  # sealed events verified
    problem: str = ""
    awaiting_seal: int = 0  # events (checked too) in batches the sealer has not reached yet

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
    "tokenizer",
    "estimated",
    "content_hash",
)


def event_log_verify(
    *, chunk_size: int = 5000, checkpoint: Checkpoint | None = None
) -> LogVerification:
    """Walk the seal chain in order and recompute every hash from the stored rows; then
    check that every event left over belongs to a batch that awaits its seal, and that
    the chain still holds the `checkpoint`'s seal (so its newest seals were not removed).

    Events are streamed in seal order beside the seals, so memory stays flat however long
    the log is; all of it is read in one snapshot, as the sealer goes on. Returns the
    first event or seal that no longer matches.
    """
    with _one_snapshot():
        awaiting = set(UnsealedBatch.objects.values_list("seal_id", flat=True))
        walk = _ChainWalk(chunk_size, checkpoint)
        problem = walk.run(awaiting)
        return LogVerification(walk.seal_count, walk.event_count, problem, walk.awaiting)


class _ChainWalk:
    def __init__(self, chunk_size: int, checkpoint: Checkpoint | None):
        self.seals = EventSeal.objects.order_by("sequence").iterator(chunk_size=chunk_size)
        self.events = _events_in_seal_order(chunk_size)
        self.checkpoint = checkpoint
        self.seal_count = self.event_count = self.awaiting = 0

    def run(self, awaiting: set[uuid.UUID]) -> str:
        pending = next(self.events, None)
        previous_hash, checkpoint_hash = GENESIS_HASH, None
        for expected_sequence, seal in enumerate(self.seals, start=1):
            self.seal_count += 1
            if seal.sequence != expected_sequence:
                return f"seal #{expected_sequence} is missing"
            if seal.previous_hash != previous_hash:
                return f"{seal} does not chain to the seal before it"
            hashes = []
            while pending is not None and pending[1] == seal.id:
                self.event_count += 1
                problem = self._event_check(pending)
                if problem:
                    return problem
                hashes.append(pending[-1])
                pending = next(self.events, None)
            if len(hashes) != seal.event_count:
                return f"{seal} covers {seal.event_count} events but {len(hashes)} are stored"
            recomputed = seal_hash(
                previous_hash=previous_hash, sequence=seal.sequence, content_hashes=hashes
            )
            if recomputed != seal.hash:
                return f"{seal} no longer matches its events"
            if self.checkpoint and seal.sequence == self.checkpoint.sequence:
                checkpoint_hash = seal.hash
            previous_hash = seal.hash
        while pending is not None:
            if pending[1] not in awaiting:
                return f"event {pending[0]} has no valid seal and its batch awaits none"
            problem = self._event_check(pending)
            if problem:
                return problem
            self.awaiting += 1
            pending = next(self.events, None)
        return self._checkpoint_check(checkpoint_hash)

    def _event_check(self, values: tuple[Any, ...]) -> str:
        if isinstance(values, _ArchivedEvent):
            return ""  # its row is in the archive's file; its key keeps the content hash
        row = dict(zip(_HASHED_FIELDS, values, strict=True))
        if _row_hash(row) != row["content_hash"]:
            return (
                f"event {row['pk']} (event_id '{row['event_id']}') no longer matches "
                f"its content hash: it was changed after it was stored"
            )
        return ""

    def _checkpoint_check(self, checkpoint_hash: str | None) -> str:
        checkpoint = self.checkpoint
        if checkpoint is None:
            return ""
        if self.seal_count < checkpoint.sequence:
            return (
                f"the chain ends at seal #{self.seal_count} but the checkpoint written at "
                f"{checkpoint.at} holds seal #{checkpoint.sequence}: the newest seals "
                "and their events were removed"
            )
        if checkpoint_hash != checkpoint.hash:
            return (
                f"seal #{checkpoint.sequence} is not the one the checkpoint written at "
                f"{checkpoint.at} holds: the chain was rewritten from there"
            )
        return ""


class _ArchivedEvent(tuple[Any, ...]):
    """An event of an archived (dropped) month, as its key row tells it: the hashed
    fields it no longer has are None; its content hash is last, as for a stored one."""


def _events_in_seal_order(chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Every event as its `_HASHED_FIELDS`, in (seal, id) order, those in no seal yet
    last: the stored ones, and in their places those of archived months, whose rows are
    gone from the database (for these the key table's content hash is chained)."""
    unsealed = float("inf")
    stored = (
        (unsealed if row[0] is None else row[0], row[1:])
        for row in UsageEvent.objects.order_by(F("seal__sequence").asc(nulls_last=True), "pk")
        .values_list("seal__sequence", *_HASHED_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    blanks = (None,) * (len(_HASHED_FIELDS) - 6)
    archived = (
        (
            sequence,
            _ArchivedEvent((pk, seal_id, customer_id, event_id, timestamp, *blanks, content_hash)),
        )
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


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """A read of the whole log in one snapshot (REPEATABLE READ on PostgreSQL), so the
    sealer's commits during the walk change nothing it sees. Inside a caller's
    transaction, that transaction's snapshot is used."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def seal_lag(*, now: datetime) -> timedelta:
    """The age of the oldest batch that awaits its seal (zero when none does)."""
    oldest = UnsealedBatch.objects.order_by("id").values_list("received_at", flat=True).first()
    return max(now - oldest, timedelta(0)) if oldest else timedelta(0)


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
        tokenizer=row["tokenizer"],
        estimated=bool(row["estimated"]),
    )
