"""Copies of the same event racing in from several processes: the unique constraint decides.

PostgreSQL only: real processes, each with its own connection, released together.
"""

import multiprocessing

import pytest
from django.db import connection, connections

from metering.models import EventSeal, UsageEvent
from metering.selectors import event_log_verify
from metering.services import events_ingest
from tests.metering.test_ingest_api import an_event

PROCESSES = 6

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between processes are tested on PostgreSQL")


def _ingest_in_child(number, barrier, items, answers):
    connections.close_all()  # the inherited connection belongs to the parent
    barrier.wait(timeout=30)
    result = events_ingest(items=items)
    answer = [(item.event_id, item.status, [e.code for e in item.errors]) for item in result.items]
    answers.put((number, answer))
    connections.close_all()


def race(batches: list[list[dict]]) -> list[list[tuple]]:
    """Run each batch in its own process, all released at once; return their answers
    in the order of the batches."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(batches))
    answers = context.Queue()
    connections.close_all()
    children = [
        context.Process(target=_ingest_in_child, args=(number, barrier, batch, answers))
        for number, batch in enumerate(batches)
    ]
    for child in children:
        child.start()
    results = dict(answers.get(timeout=60) for _ in children)
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    return [results[number] for number in range(len(batches))]


def test_the_same_batch_from_many_processes_is_stored_once(acme):
    batch = [an_event(event_id=f"evt-{i}") for i in range(50)]

    results = race([batch] * PROCESSES)

    for i in range(50):
        statuses = sorted(result[i][1] for result in results)
        assert statuses == ["accepted"] + ["duplicate"] * (PROCESSES - 1)
    assert UsageEvent.objects.count() == 50
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(
        f"evt-{i}" for i in range(50)
    )
    assert sum(EventSeal.objects.values_list("event_count", flat=True)) == 50
    assert event_log_verify().ok


def test_conflicting_copies_from_many_processes_keep_exactly_one(acme):
    copies = [[an_event(event_id="evt-x", metrics={"input_tokens": n})] for n in range(PROCESSES)]

    results = race(copies)

    outcomes = [result[0] for result in results]
    winners = [n for n, (_, status, _) in enumerate(outcomes) if status == "accepted"]
    assert len(winners) == 1
    losers = [codes for _, status, codes in outcomes if status != "accepted"]
    assert losers == [["conflict"]] * (PROCESSES - 1)
    assert list(UsageEvent.objects.values_list("metrics", flat=True)) == [
        {"input_tokens": winners[0]}
    ]
    assert event_log_verify().ok


def test_the_seal_chain_stays_linear_under_concurrent_batches(acme):
    batches = [[an_event(event_id=f"p{p}-{i}") for i in range(20)] for p in range(PROCESSES)]

    race(batches)

    seals = list(EventSeal.objects.order_by("sequence").values_list("sequence", "event_count"))
    assert seals == [(n, 20) for n in range(1, PROCESSES + 1)]
    assert event_log_verify().ok
