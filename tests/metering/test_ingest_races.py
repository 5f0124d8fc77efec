"""Copies of the same event racing in from several processes: the unique key decides.

PostgreSQL only: real processes or threads, each with its own connection, released together.
"""

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from metering import services as metering_services
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


PAIRS = 30
PAIR_EVENTS = 50


def _post_from_thread(key: str, body: bytes, barrier: threading.Barrier):
    """POST the body from this thread's own connection, released with the other thread."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    try:
        barrier.wait(timeout=30)
        return client.post("/api/v1/events", data=body, content_type="application/json")
    finally:
        connection.close()


def test_a_resend_in_another_order_racing_its_first_attempt_is_never_a_5xx(
    acme, operator_key, monkeypatch
):
    """A client retries while its first attempt still runs, with the events in another
    order. Both batches insert the same new keys: taken in one order, no deadlock."""
    monkeypatch.setattr(metering_services, "rating_nudge", lambda: None)
    answers = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for pair in range(PAIRS):
            batch = [an_event(event_id=f"pair{pair}-{i}") for i in range(PAIR_EVENTS)]
            bodies = [orjson.dumps({"events": batch}), orjson.dumps({"events": batch[::-1]})]
            barrier = threading.Barrier(2)
            futures = [pool.submit(_post_from_thread, operator_key, b, barrier) for b in bodies]
            answers.append([future.result(timeout=60) for future in futures])

    for pair, (first, resend) in enumerate(answers):
        assert (first.status_code, resend.status_code) == (202, 202), pair
        by_id: dict[str, list[str]] = {}
        for answer in (first.json(), resend.json()):
            assert answer["rejected"] == 0
            for item in answer["items"]:
                by_id.setdefault(item["event_id"], []).append(item["status"])
        # Each event accepted by exactly one of the two, a duplicate in the other.
        assert {tuple(sorted(s)) for s in by_id.values()} == {("accepted", "duplicate")}
        assert len(by_id) == PAIR_EVENTS
    assert UsageEvent.objects.count() == PAIRS * PAIR_EVENTS
    assert sum(EventSeal.objects.values_list("event_count", flat=True)) == PAIRS * PAIR_EVENTS
    assert event_log_verify().ok
