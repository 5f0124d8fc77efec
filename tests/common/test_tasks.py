"""Tasks sent by name after commit (common.tasks): what a rolled-back write sends, what a
broker that is down does, and how often the rater is asked."""

import logging
import threading

import pytest
from celery import shared_task
from django.db import transaction

from common import tasks

SENT: list[int] = []
REAL_NUDGE_DEFER = tasks.Nudge.defer  # tests/conftest.py replaces it in every test


@shared_task(name="tests.common.record")
def record(value: int) -> None:
    SENT.append(value)


@pytest.fixture(autouse=True)
def _clear():
    SENT.clear()


def test_a_task_is_sent_by_its_name_once_the_transaction_commits(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.task_send_on_commit("tests.common.record", 7)
        assert SENT == []

    assert len(callbacks) == 1
    assert SENT == [7]


def test_a_write_that_rolls_back_sends_nothing(db, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        tasks.task_send_on_commit("tests.common.record", 7)
        raise RuntimeError("the write fails")

    assert callbacks == []
    assert SENT == []


def test_a_broker_that_cannot_take_the_task_is_logged_and_never_raised(monkeypatch, caplog):
    def broker_down(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(record, "delay", broker_down)

    with caplog.at_level(logging.ERROR, logger="common.tasks"):
        tasks.task_send("tests.common.record", 7)

    assert SENT == []
    assert "could not send tests.common.record" in caplog.text


def test_the_rater_is_asked_at_most_once_per_nudge_interval(monkeypatch, settings):
    asked, deferred = [], []
    monkeypatch.setattr(tasks, "task_send", lambda name, *args: asked.append(name))
    monkeypatch.setattr(tasks.Nudge, "defer", lambda nudge, delay: deferred.append(delay))
    monkeypatch.setattr(tasks.rating_nudge, "last", float("-inf"))
    settings.TOKENTILL_RATING_NUDGE_SECONDS = 3600

    tasks.rating_nudge()
    tasks.rating_nudge()
    tasks.rating_nudge()

    # The second is owed for the end of the hour; the third rides on it.
    assert asked == [tasks.RATE_PENDING_USAGE]
    assert len(deferred) == 1
    assert 3599 < deferred[0] <= 3600

    monkeypatch.setattr(tasks.rating_nudge, "last", float("-inf"))
    tasks.rating_nudge()

    assert asked == [tasks.RATE_PENDING_USAGE, tasks.RATE_PENDING_USAGE]


@pytest.fixture
def eager_deferral(monkeypatch, settings):
    """The real deferral, without a broker, recording what it sends and when."""
    sent: list[str] = []
    sent_event = threading.Event()

    def send(name, *args):
        sent.append(name)
        sent_event.set()

    monkeypatch.setattr(tasks.Nudge, "defer", REAL_NUDGE_DEFER)
    monkeypatch.setattr(tasks, "task_send", send)
    monkeypatch.setattr(tasks.rating_nudge, "last", float("-inf"))
    monkeypatch.setattr(tasks.rating_nudge, "deferred", None)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.TOKENTILL_RATING_NUDGE_SECONDS = 0.3
    yield sent, sent_event
    timer = tasks.rating_nudge.deferred
    if timer is not None:
        timer.cancel()


def test_a_nudge_inside_the_interval_runs_when_it_ends_never_dropped(eager_deferral):
    sent, sent_event = eager_deferral

    tasks.rating_nudge()
    first_at = tasks.rating_nudge.last
    tasks.rating_nudge()
    tasks.rating_nudge()  # inside the interval too: rides on the deferred one
    owed = tasks.rating_nudge.deferred

    assert len(sent) == 1  # the second is owed, not sent at once
    assert owed is not None
    assert 0 < owed.interval <= 0.3  # what is left of the interval
    assert tasks.rating_nudge.last == first_at + 0.3  # the owed nudge's moment
    sent_event.clear()
    assert sent_event.wait(timeout=10)
    owed.join(timeout=10)

    # The first at once, exactly one more after the interval: never zero, never two.
    assert sent == [tasks.RATE_PENDING_USAGE] * 2
    assert tasks.rating_nudge.deferred is None


def test_a_nudge_with_a_broker_is_deferred_by_countdown(monkeypatch, settings):
    sent_later = []
    monkeypatch.setattr(tasks.Nudge, "defer", REAL_NUDGE_DEFER)
    monkeypatch.setattr(tasks, "task_send", lambda name, *args: None)
    monkeypatch.setattr(tasks.rating_nudge, "last", float("-inf"))
    monkeypatch.setattr(
        tasks.current_app.tasks[tasks.RATE_PENDING_USAGE],
        "apply_async",
        lambda countdown: sent_later.append(countdown),
    )
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.TOKENTILL_RATING_NUDGE_SECONDS = 3600

    tasks.rating_nudge()
    tasks.rating_nudge()
    tasks.rating_nudge()

    assert len(sent_later) == 1
    assert 3599 < sent_later[0] <= 3600
    assert tasks.rating_nudge.deferred is None  # the broker holds it; no thread waits
