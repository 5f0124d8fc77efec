"""Celery queue depths, asked of a real Redis broker at scrape time (skipped when no Redis
answers), and a broker that does not answer."""

import os
import uuid

import pytest
import redis
from kombu import Connection, Queue

from .support import TOKEN, figure, scrape

# A database number of its own, away from the worker test's (13) and the cache test's (15).
BROKER_URL = os.environ.get("TOKENTILL_TEST_METRICS_REDIS_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture
def broker(db, settings):
    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis answers at {BROKER_URL}")
    settings.TOKENTILL_METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = BROKER_URL
    # queues of the test's own, so runs at once on one Redis never count each other's
    run = uuid.uuid4().hex[:10]
    names = [f"metrics-{run}-{name}" for name in ("rating", "stripe", "celery")]
    settings.CELERY_TASK_QUEUES = [Queue(name) for name in names]
    yield names
    client = redis.Redis.from_url(BROKER_URL)
    for name in names:
        client.delete(name, *(f"{name}\x06\x16{priority}" for priority in (3, 6, 9)))


def test_each_queue_says_how_many_tasks_wait_in_it(broker):
    rating, stripe, default = broker
    with Connection(BROKER_URL) as connection:
        for name, count in ((rating, 3), (stripe, 1)):
            queue = connection.SimpleQueue(name)
            for number in range(count):
                queue.put({"task": number})
            queue.close()

    figures = scrape()

    assert figure(figures, "tokentill_celery_queue_messages", queue=rating) == 3
    assert figure(figures, "tokentill_celery_queue_messages", queue=stripe) == 1
    # never used: Redis has no list by that name, and nothing was created for it
    assert figure(figures, "tokentill_celery_queue_messages", queue=default) == 0
    assert not redis.Redis.from_url(BROKER_URL).exists(default)
    assert figure(figures, "tokentill_metrics_collector_up", collector="celery") == 1


def test_a_broker_that_does_not_answer_fails_its_collector_only(db, settings):
    settings.TOKENTILL_METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    figures = scrape()

    assert figure(figures, "tokentill_metrics_collector_up", collector="celery") == 0
    assert not [key for key in figures if key[0] == "tokentill_celery_queue_messages"]
    assert figure(figures, "tokentill_metrics_collector_up", collector="metering") == 1
