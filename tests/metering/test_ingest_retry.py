"""A batch that loses a race (deadlock, serialization failure) is rolled back and tried
again inside the request: the client gets its answer, and nothing is stored twice."""

import psycopg.errors
import pytest
from django.db import OperationalError, transaction

from metering import services
from metering.models import EventSeal, UnratedEvent, UnsealedBatch, UsageEvent
from metering.sealing import events_seal
from metering.selectors import event_log_verify
from tests.metering.test_ingest_api import an_event, post, stored

pytestmark = pytest.mark.django_db(transaction=True)


def _lost_race(cause: type[psycopg.Error]) -> OperationalError:
    """What Django raises for PostgreSQL's error: its own, the driver's as the cause."""
    try:
        raise OperationalError("lost a race") from cause("lost a race")
    except OperationalError as error:
        return error


def fail_after_insert(monkeypatch, cause: type[psycopg.Error], times: int) -> list[int]:
    """The real insert runs, then the first `times` attempts fail and their rows are rolled
    back, as PostgreSQL rolls back a statement that lost; returns the attempts' sizes."""
    real_insert = services._insert_events
    attempts: list[int] = []

    def insert_then_fail(candidates, **kwargs):
        with transaction.atomic():
            inserted = real_insert(candidates, **kwargs)
            attempts.append(len(inserted))
            if len(attempts) <= times:
                raise _lost_race(cause)
        return inserted

    monkeypatch.setattr(services, "_insert_events", insert_then_fail)
    monkeypatch.setattr(services, "STORE_BACKOFF_SECONDS", 0.001)
    return attempts


@pytest.mark.parametrize(
    "cause", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure]
)
def test_a_deadlock_or_serialization_failure_is_tried_again_and_stored_once(
    api, acme, monkeypatch, cause
):
    monkeypatch.setattr(services, "rating_nudge", lambda: None)  # the queue stays as written
    old = an_event(event_id="old")
    post(api, old)  # a stored event: its resend is a duplicate
    attempts = fail_after_insert(monkeypatch, cause, times=1)
    batch = [an_event(event_id="new-2"), old, an_event(event_id="new-1")]

    response = post(api, {"events": batch})

    assert response.status_code == 202
    assert attempts == [2, 2]  # both new events inserted, rolled back, inserted again
    assert [(i["event_id"], i["status"]) for i in response.json()["items"]] == [
        ("new-2", "accepted"),
        ("old", "duplicate"),
        ("new-1", "accepted"),
    ]
    assert "errors" not in str(response.json())
    assert sorted(stored()) == [("acme", "new-1"), ("acme", "new-2"), ("acme", "old")]
    assert UnratedEvent.objects.count() == 3
    events_seal()
    assert list(EventSeal.objects.order_by("sequence").values_list("event_count", flat=True)) == [
        1,
        2,
    ]
    assert event_log_verify().ok


def test_a_batch_that_keeps_losing_is_refused_whole_after_the_last_attempt(api, acme, monkeypatch):
    attempts = fail_after_insert(monkeypatch, psycopg.errors.DeadlockDetected, times=99)

    with pytest.raises(OperationalError):
        services.events_ingest(items=[an_event(event_id="new-1")])

    assert attempts == [1] * services.STORE_ATTEMPTS
    assert UsageEvent.objects.count() == 0
    assert UnsealedBatch.objects.count() == 0


def test_other_operational_errors_are_not_tried_again(acme, monkeypatch):
    attempts = fail_after_insert(monkeypatch, psycopg.errors.QueryCanceled, times=1)

    with pytest.raises(OperationalError):
        services.events_ingest(items=[an_event(event_id="new-1")])

    assert attempts == [1]
    assert UsageEvent.objects.count() == 0


def test_inside_a_callers_transaction_nothing_is_tried_again(acme, monkeypatch):
    attempts = fail_after_insert(monkeypatch, psycopg.errors.DeadlockDetected, times=1)

    with pytest.raises(OperationalError), transaction.atomic():
        services.events_ingest(items=[an_event(event_id="new-1")])

    assert attempts == [1]
    assert UsageEvent.objects.count() == 0
