"""The sealer: chains stored batches into the event log's seal chain, after ingest.

Ingest never waits for the chain: it stores a batch's events and queues the batch
(`UnsealedBatch`, with the events' content hashes) in its own transaction. The sealer,
asked for after each ingest commit (`common.tasks.sealing_nudge`) and run by beat every
few seconds, takes the queued batches in queue order and, in one transaction per chunk,
inserts their seals (each chained to the one before) and deletes them from the queue.

Safe in any number of copies: a sealer holds the chain's lock until it commits, and a
copy that finds the lock taken leaves (the holder seals what is queued; the next run
what comes after). A sealer killed mid-way commits nothing, and the next run seals the
same batches. A batch is sealed exactly once: its queue row goes in the transaction
that writes its seal, and the seal's id is the batch's (unique).
"""

import logging
import uuid
from datetime import datetime
from typing import TypeAlias

from django.db import connection, transaction
from django.utils import timezone

from .canonical import GENESIS_HASH, seal_hash
from .checkpoint import checkpoint_write
from .models import EventSeal, UnsealedBatch

SEAL_CHAIN_LOCK = 7_401_002  # pg_advisory_xact_lock key held by the one sealer at work
SEAL_CHUNK = 500  # batches per transaction
Batch: TypeAlias = tuple[int, uuid.UUID, str]  # a queued batch: id, seal id, content hashes
Seal: TypeAlias = tuple[uuid.UUID, int, str, str, int]  # id, sequence, previous, hash, events
logger = logging.getLogger(__name__)


def events_seal(*, chunk: int = SEAL_CHUNK) -> int:
    """Seal every batch queued when the run began or during it; the batches sealed.

    Returns 0 at once when another sealer holds the chain."""
    sealed, head = 0, None
    while True:
        with transaction.atomic():
            if not _chain_lock_try():
                break
            batches = list(
                UnsealedBatch.objects.order_by("id").values_list("id", "seal_id", "content_hashes")[
                    :chunk
                ]
            )
            if not batches:
                break
            head = _seal_batches(batches, sealed_at=timezone.now())
        sealed += len(batches)
        if len(batches) < chunk:
            break
    if head is not None:
        checkpoint_write(sequence=head[0], seal_hash=head[1], at=timezone.now())
    return sealed


def _chain_lock_try() -> bool:
    """The chain's lock until commit; on SQLite the IMMEDIATE transaction already holds
    the only write lock."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_CHAIN_LOCK])
        taken: bool = cursor.fetchone()[0]
        return taken


def _seal_batches(batches: list[Batch], *, sealed_at: datetime) -> tuple[int, str]:
    """Chain the batches, in order, after the newest seal; return the new head."""
    last = EventSeal.objects.order_by("-sequence").values_list("sequence", "hash").first()
    sequence, previous_hash = last if last else (0, GENESIS_HASH)
    seals: list[Seal] = []
    for _, seal_id, content_hashes in batches:
        sequence += 1
        # The digest of the hashes one after another is that of them all as one string.
        current = seal_hash(
            previous_hash=previous_hash, sequence=sequence, content_hashes=[content_hashes]
        )
        seals.append((seal_id, sequence, previous_hash, current, len(content_hashes) // 64))
        previous_hash = current
    _seals_write(seals, [batch_id for batch_id, _, _ in batches], sealed_at=sealed_at)
    return sequence, previous_hash


def _seals_write(seals: list[Seal], batch_ids: list[int], *, sealed_at: datetime) -> None:
    """Insert the seals and take their batches off the queue. On PostgreSQL one statement
    over arrays bound by the server (`common.postgresql`'s `server_bound_cursor`): a
    sealer keeping up with single-event requests seals a hundred small batches a run,
    and `bulk_create` spent most of its time quoting their values in Python."""
    if connection.vendor != "postgresql":
        EventSeal.objects.bulk_create(
            EventSeal(
                id=seal_id, sequence=sequence, previous_hash=previous, hash=current,
                event_count=events, sealed_at=sealed_at,
            )
            for seal_id, sequence, previous, current, events in seals
        )  # fmt: skip
        UnsealedBatch.objects.filter(id__in=batch_ids).delete()
        return
    columns = list(zip(*seals, strict=True))
    with connection.server_bound_cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            f"WITH taken AS (DELETE FROM {UnsealedBatch._meta.db_table} "  # noqa: S608
            "WHERE id = ANY(%s::bigint[])) "
            f"INSERT INTO {EventSeal._meta.db_table} "
            "(id, sequence, previous_hash, hash, event_count, sealed_at) "
            "SELECT s.id, s.sequence, s.previous_hash, s.hash, s.event_count, %s "
            "FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::integer[]) "
            "AS s(id, sequence, previous_hash, hash, event_count)",
            [batch_ids, sealed_at, *map(list, columns)],
        )
