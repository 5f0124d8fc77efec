"""The client's queue against a live tokentill: batches, retries through injected
failures with nothing lost or doubled, refusals reported once, flush at close and exit."""

import subprocess
import sys
import time
import uuid
from decimal import Decimal

import pytest

from metering.models import UsageEvent
from tokentill_client import DeliveryFailure, QueueFull, Tokentill, TokentillError

from .conftest import stored

pytestmark = pytest.mark.django_db(transaction=True)

CALL = {"input_tokens": 1000, "output_tokens": 500}


def record(client, count: int, **fields) -> list[str]:
    return [
        client.record(customer_id="acme", model="gpt-4o", metrics=CALL, **fields)
        for _ in range(count)
    ]


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.01)


def test_records_go_in_batches_of_the_batch_size_and_each_is_stored_once(make_client, proxy, acme):
    client = make_client(batch_size=10)

    ids = record(client, 25)
    assert client.flush(timeout=10)

    assert proxy.batch_sizes() == [10, 10, 5]
    assert [event["event_id"] for post in proxy.posts() for event in post.events] == ids
    assert stored() == dict.fromkeys(ids, CALL)
    assert client.counts() == {"accepted": 25, "duplicates": 0, "failed": 0, "queued": 0}


def test_a_batch_goes_once_its_oldest_event_has_waited_the_flush_interval(make_client, proxy, acme):
    client = make_client(batch_size=100, flush_interval=0.05)

    ids = record(client, 3)
    wait_until(lambda: client.counts()["queued"] == 0)  # no flush asked

    assert proxy.batch_sizes() == [3]
    assert sorted(stored()) == sorted(ids)


def test_failures_are_retried_until_stored_and_nothing_is_lost_or_doubled(make_client, proxy, acme):
    # The first batch meets a 500, a 429 that asks for 1 s, a dropped connection, then an
    # answer lost after tokentill stored it; its fifth try is answered: all duplicates.
    proxy.faults = ["500", "429", "drop", "lost"]
    client = make_client(batch_size=5)

    ids = record(client, 10)
    assert client.flush(timeout=20)

    posts = proxy.posts()
    assert [post.fault for post in posts] == ["500", "429", "drop", "lost", None, None]
    assert {post.body for post in posts[:5]} == {posts[0].body}  # the same batch, unchanged
    assert [event["event_id"] for event in posts[4].events + posts[5].events] == ids
    assert posts[2].at - posts[1].at >= 1.0  # Retry-After honoured
    assert stored() == dict.fromkeys(ids, CALL)
    assert UsageEvent.objects.count() == 10
    # The answer to the fifth try: the five events already stored by the fourth.
    assert client.counts() == {"accepted": 5, "duplicates": 5, "failed": 0, "queued": 0}


def test_a_batch_too_large_is_split_and_sent_in_halves(make_client, proxy, acme):
    proxy.faults = ["413"]
    client = make_client(batch_size=4)

    ids = record(client, 4)
    assert client.flush(timeout=10)

    assert proxy.batch_sizes() == [4, 2, 2]
    assert sorted(stored()) == sorted(ids)


def test_what_tokentill_refuses_is_reported_once_and_never_sent_again(make_client, proxy, acme):
    failures: list[DeliveryFailure] = []
    client = make_client(batch_size=10, on_error=failures.append)

    good = record(client, 2)
    bad = client.record(customer_id="nobody", model="gpt-4o", metrics=CALL)
    assert client.flush(timeout=10)
    alone = client.record(customer_id="acme", model="gpt-4o", metrics={"input_tokens": "1.5e3"})
    assert client.flush(timeout=10)  # a batch whose every event is refused: a 422

    assert [(post.status, len(post.events)) for post in proxy.posts()] == [(202, 3), (422, 1)]
    assert sorted(stored()) == sorted(good)
    assert [(f.reason, f.event_id, f.errors) for f in failures] == [
        (
            "rejected",
            bad,
            [{"field": "customer_id", "code": "not_found", "message": "unknown customer 'nobody'"}],
        ),
        (
            "rejected",
            alone,
            [
                {
                    "field": "metrics.input_tokens",
                    "code": "invalid",
                    "message": "'1.5e3' is not a non-negative decimal string with up to 12 places",
                }
            ],
        ),
    ]
    assert client.counts() == {"accepted": 2, "duplicates": 0, "failed": 2, "queued": 0}

    # A wrong key: every event of the request is refused, and it is not sent again.
    failures.clear()
    wrong = make_client(api_key="tt_wrong_key", on_error=failures.append)
    ids = record(wrong, 3)
    assert wrong.flush(timeout=10)

    assert [post.status for post in proxy.posts()] == [202, 422, 401]
    assert [(f.reason, f.status, f.event_id) for f in failures] == [
        ("refused", 401, event_id) for event_id in ids
    ]
    assert sorted(stored()) == sorted(good)


def test_close_sends_what_is_queued_or_reports_what_it_could_not(make_client, proxy, acme):
    client = make_client(batch_size=100)
    ids = record(client, 5)

    assert client.close(timeout=10) is True

    assert proxy.batch_sizes() == [5]
    assert sorted(stored()) == sorted(ids)
    with pytest.raises(TokentillError, match="closed"):
        record(client, 1)

    # tokentill down: what is still unconfirmed when the time runs out is reported.
    proxy.faults = ["500"] * 10_000
    failures: list[DeliveryFailure] = []
    down = make_client(on_error=failures.append)
    unsent = record(down, 3)

    assert down.close(timeout=0.2) is False

    assert [(f.reason, f.event_id) for f in failures] == [("unsent", id_) for id_ in unsent]
    assert sorted(stored()) == sorted(ids)


def test_a_full_queue_refuses_the_event_and_hands_it_back(operator_key):
    client = Tokentill(
        operator_key, "http://127.0.0.1:9", max_queue_size=2, full_timeout=0, flush_interval=60
    )
    record(client, 2)

    with pytest.raises(QueueFull) as refused:
        client.record(customer_id="acme", model="gpt-4o", metrics={"input_tokens": Decimal(7)})

    assert refused.value.event["metrics"] == {"input_tokens": "7"}
    assert client.counts()["queued"] == 2
    client.close(timeout=0)


def test_events_recorded_and_never_flushed_are_sent_at_interpreter_exit_also_by_a_fork(
    live_server, operator_key, acme
):
    # A process records "before" and forks; the child records "child", flushes to say
    # what it sent, and exits; the parent records "after" and exits without a flush.
    # The child sends its own event only: the parent's queue stays the parent's.
    marker = uuid.uuid4().hex
    script = f"""
import os, sys
from tokentill_client import Tokentill
client = Tokentill({operator_key!r}, {live_server.url!r}, flush_interval=60)
def record(name):
    client.record(event_id="{marker}-" + name, customer_id="acme", model="gpt-4o",
                  metrics={{"input_tokens": 10}})
record("before")
child = os.fork()
if child == 0:
    record("child")
    client.flush(timeout=10)
    print(client.counts())
    sys.exit(0)
os.waitpid(child, 0)
record("after")
"""

    done = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, capture_output=True, text=True
    )

    assert sorted(stored()) == [f"{marker}-{name}" for name in ("after", "before", "child")]
    assert done.stdout == "{'accepted': 1, 'duplicates': 0, 'failed': 0, 'queued': 0}\n"
