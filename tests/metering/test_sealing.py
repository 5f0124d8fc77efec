"""The sealer chains stored batches after ingest: in queue order, each exactly once, in
any number of copies, and its signed checkpoint catches the newest seals removed."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import timezone

from metering import sealing
from metering.canonical import GENESIS_HASH
from metering.checkpoint import Checkpoint, CheckpointError, checkpoint_read
from metering.models import EventSeal, UnsealedBatch, UsageEvent
from metering.sealing import SEAL_CHAIN_LOCK, events_seal
from metering.selectors import event_log_verify, seal_lag
from metering.services import events_ingest
from tests.metering.test_event_log import tamper
from tests.metering.test_ingest_api import an_event

BATCHES = (["a1", "a2"], ["b1", "b2", "b3"], ["c1"])


def ingest_batches() -> None:
    for batch in BATCHES:
        result = events_ingest(items=[an_event(event_id=event_id) for event_id in batch])
        assert result.count("accepted") == len(batch)


def chain() -> list[tuple[int, int]]:
    return list(EventSeal.objects.order_by("sequence").values_list("sequence", "event_count"))


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the chain's lock between sessions is PostgreSQL's (SQLite has one writer)")


def test_stored_batches_await_the_sealer_which_chains_them_in_queue_order(acme):
    ingest_batches()  # outside a commit (this test's transaction): no nudge has sealed
    queued = list(UnsealedBatch.objects.order_by("id").values_list("seal_id", flat=True))

    before = event_log_verify()

    assert (before.ok, before.seals, before.events, before.awaiting_seal) == (True, 0, 0, 6)
    started = timezone.now()
    assert events_seal() == 3
    assert chain() == [(1, 2), (2, 3), (3, 1)]
    assert list(EventSeal.objects.order_by("sequence").values_list("id", flat=True)) == queued
    seals = list(EventSeal.objects.order_by("sequence"))
    assert [seal.previous_hash for seal in seals] == [GENESIS_HASH] + [s.hash for s in seals[:2]]
    assert len({seal.sealed_at for seal in seals}) == 1  # one run, one moment
    assert started <= seals[0].sealed_at <= timezone.now()
    assert UnsealedBatch.objects.count() == 0
    assert events_seal() == 0  # nothing left: a second run seals nothing again
    assert chain() == [(1, 2), (2, 3), (3, 1)]
    after = event_log_verify()
    assert (after.ok, after.seals, after.events, after.awaiting_seal) == (True, 3, 6, 0)


def test_a_batchs_hashes_are_stored_without_trying_to_compress_them(db):
    """Hashes do not compress, and PostgreSQL's attempt on a 1,000-event batch's 64 KB
    cost more than the rest of the row (migration 0014)."""
    if connection.vendor != "postgresql":
        pytest.skip("a column's storage (compressed or not) is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attname = 'content_hashes' "
            "AND attrelid = 'metering_unsealedbatch'::regclass"
        )
        assert cursor.fetchall() == [("e",)]  # external: out of line, never compressed


def test_seal_lag_is_the_age_of_the_oldest_batch_awaiting_its_seal(acme):
    ingest_batches()
    oldest = UnsealedBatch.objects.order_by("id").first()

    assert seal_lag(now=oldest.received_at + timedelta(seconds=7)) == timedelta(seconds=7)
    events_seal()
    assert seal_lag(now=oldest.received_at + timedelta(seconds=7)) == timedelta(0)


def test_a_sealer_killed_mid_way_seals_nothing_and_the_next_run_seals_each_batch_once(
    acme, monkeypatch
):
    ingest_batches()
    real = sealing._seal_batches

    def seal_then_die(batches, **kwargs):
        real(batches, **kwargs)  # the seals are written, then the worker dies
        raise SystemExit("worker killed")

    monkeypatch.setattr(sealing, "_seal_batches", seal_then_die)
    with pytest.raises(SystemExit):
        events_seal()

    assert chain() == []
    assert UnsealedBatch.objects.count() == 3
    monkeypatch.setattr(sealing, "_seal_batches", real)
    assert events_seal() == 3
    assert chain() == [(1, 2), (2, 3), (3, 1)]
    assert event_log_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_second_sealer_leaves_while_the_first_holds_the_chain(acme, monkeypatch, settings):
    needs_postgresql()
    settings.TOKENTILL_SEAL_NUDGE_SECONDS = 3600  # no nudge seals behind the test's back
    monkeypatch.setattr("common.tasks.sealing_nudge.last", float("inf"))
    ingest_batches()
    real, holding, release = sealing._seal_batches, threading.Event(), threading.Event()

    def seal_slowly(batches, **kwargs):
        holding.set()
        assert release.wait(timeout=30)
        return real(batches, **kwargs)

    monkeypatch.setattr(sealing, "_seal_batches", seal_slowly)
    results: list[int] = []

    def first_sealer():
        try:
            results.append(events_seal())
        finally:
            connections.close_all()

    first = threading.Thread(target=first_sealer)
    first.start()
    assert holding.wait(timeout=30)
    second = events_seal()  # the chain is held: it leaves at once, sealing nothing
    release.set()
    first.join(timeout=30)

    assert second == 0
    assert results == [3]
    assert chain() == [(1, 2), (2, 3), (3, 1)]
    assert UnsealedBatch.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_sealers_racing_ingest_seal_every_batch_once_in_one_linear_chain(acme, settings):
    needs_postgresql()
    settings.TOKENTILL_SEAL_NUDGE_SECONDS = 3600
    stop = threading.Event()

    def sealer():
        try:
            while not stop.is_set():
                events_seal(chunk=3)
        finally:
            connections.close_all()

    sealers = [threading.Thread(target=sealer) for _ in range(3)]
    for thread in sealers:
        thread.start()
    sizes = [n % 3 + 1 for n in range(40)]  # 14 batches of 1, 13 of 2, 13 of 3: 79 events
    for n, size in enumerate(sizes):
        events_ingest(items=[an_event(event_id=f"e{n}-{i}") for i in range(size)])
    stop.set()
    for thread in sealers:
        thread.join(timeout=30)
    events_seal()

    seals = chain()
    assert [sequence for sequence, _ in seals] == list(range(1, 41))
    assert sorted(count for _, count in seals) == sorted(sizes)
    assert UsageEvent.objects.count() == sum(sizes) == 79
    assert UnsealedBatch.objects.count() == 0
    assert event_log_verify().ok


@pytest.mark.django_db(transaction=True)
def test_ingest_does_not_wait_for_the_chain(acme, settings):
    """A sealer holding the chain's lock holds up no request."""
    needs_postgresql()
    settings.TOKENTILL_SEAL_NUDGE_SECONDS = 3600
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_CHAIN_LOCK])
            done = threading.Event()

            def ingest():
                try:
                    events_ingest(items=[an_event(event_id="while-held")])
                    done.set()
                finally:
                    connections.close_all()

            thread = threading.Thread(target=ingest)
            thread.start()
            assert done.wait(timeout=30)
            thread.join(timeout=30)
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    assert UsageEvent.objects.filter(event_id="while-held").count() == 1
    assert UnsealedBatch.objects.count() == 1


# --- the checkpoint -----------------------------------------------------------------------


@pytest.fixture
def checkpointed(acme, settings, tmp_path):
    """Three batches stored and sealed, as the nudge after each commit does, each sealing
    run appending its checkpoint to the file."""
    settings.TOKENTILL_SEAL_CHECKPOINT_FILE = str(tmp_path / "seal-checkpoints.jsonl")
    ingest_batches()
    assert chain() == [(1, 2), (2, 3), (3, 1)]
    return tmp_path / "seal-checkpoints.jsonl"


@pytest.mark.django_db(transaction=True)
def test_each_sealing_run_appends_a_signed_checkpoint_of_the_head(checkpointed, capsys):
    head = EventSeal.objects.get(sequence=3)
    lines = checkpointed.read_text().splitlines()

    assert len(lines) == 3
    checkpoint = checkpoint_read(checkpointed)
    assert (checkpoint.sequence, checkpoint.hash) == (3, head.hash)
    assert event_log_verify(checkpoint=checkpoint).ok
    call_command("verify_event_log")
    assert capsys.readouterr().out.strip() == (
        "Event log intact: 3 seals, 6 events verified; the checkpoint's seal #3 is there."
    )


@pytest.mark.django_db(transaction=True)
def test_the_newest_batch_removed_is_caught_by_the_checkpoint(checkpointed):
    newest = EventSeal._meta.pk.get_db_prep_value(EventSeal.objects.get(sequence=3).pk, connection)
    tamper("DELETE FROM metering_usageevent WHERE seal_id = %s", [newest])
    tamper("DELETE FROM metering_eventseal WHERE id = %s", [newest])

    assert event_log_verify().ok  # the chain alone cannot tell
    checkpoint = checkpoint_read(checkpointed)
    assert event_log_verify(checkpoint=checkpoint).problem == (
        f"the chain ends at seal #2 but the checkpoint written at {checkpoint.at} holds "
        "seal #3: the newest seals and their events were removed"
    )
    with pytest.raises(CommandError, match="the chain ends at seal #2"):
        call_command("verify_event_log")


@pytest.mark.django_db(transaction=True)
def test_a_truncated_log_is_caught_by_the_checkpoint(checkpointed):
    tamper("DELETE FROM metering_usageevent", [])
    tamper("DELETE FROM metering_eventseal", [])

    with pytest.raises(CommandError, match="the chain ends at seal #0 but the checkpoint"):
        call_command("verify_event_log")


@pytest.mark.django_db(transaction=True)
def test_a_rewritten_chain_is_caught_by_the_checkpoint(checkpointed):
    tamper("UPDATE metering_eventseal SET hash = %s WHERE sequence = 3", ["e" * 64])

    checkpoint = checkpoint_read(checkpointed)
    assert event_log_verify(checkpoint=checkpoint).problem == "seal #3 no longer matches its events"
    assert event_log_verify(checkpoint=Checkpoint(3, "e" * 64, "then")).problem == (
        "seal #3 no longer matches its events"
    )


def test_a_checkpoint_signed_with_another_key_is_refused(tmp_path, db):
    forged = Checkpoint(sequence=9, hash="a" * 64, at="2026-12-06T00:00:00+00:00")
    path = tmp_path / "checkpoints.jsonl"
    path.write_text(forged.line("not the key") + "\n")

    with pytest.raises(CheckpointError, match="does not match its signature"):
        checkpoint_read(path)
    with pytest.raises(CommandError, match="seal #9 written at 2026-12-06T00:00:00"):
        call_command("verify_event_log", checkpoint=str(path))


def test_a_checkpoint_file_that_is_not_one_is_named(tmp_path, db):
    path = tmp_path / "checkpoints.jsonl"
    path.write_text('{"sequence": 3}\n')

    with pytest.raises(CheckpointError, match="is not one"):
        checkpoint_read(path)
    with pytest.raises(CheckpointError, match="cannot read the checkpoint file"):
        checkpoint_read(tmp_path / "missing.jsonl")
