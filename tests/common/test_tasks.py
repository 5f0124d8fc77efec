"""Tasks sent by name after commit (common.tasks): what a rolled-back write sends, what a
broker that is down does, and how often the rater is asked."""

import logging

import pytest
from celery import shared_task
from django.db import transaction

from common import tasks

SENT: list[int] = []


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
    asked = []
    monkeypatch.setattr(tasks, "task_send", lambda name, *args: asked.append(name))
    monkeypatch.setattr(tasks, "_last_nudge", float("-inf"))
    settings.TOKENTILL_RATING_NUDGE_SECONDS = 3600

    tasks.rating_nudge()
    tasks.rating_nudge()

    assert asked == [tasks.RATE_PENDING_USAGE]

    monkeypatch.setattr(tasks, "_last_nudge", float("-inf"))
    tasks.rating_nudge()

    assert asked == [tasks.RATE_PENDING_USAGE, tasks.RATE_PENDING_USAGE]
