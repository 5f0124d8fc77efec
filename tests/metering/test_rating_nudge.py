"""Without a broker, events sent just after a rating run are rated when the nudge
interval ends, with no request after them."""

from types import SimpleNamespace

import pytest

from common import tasks
from metering.models import UnratedEvent
from metering.services import events_ingest
from tests.common.test_tasks import REAL_NUDGE_DEFER
from tests.metering.test_ingest_api import an_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_inside_the_nudge_interval_are_rated_when_it_ends(acme, monkeypatch, settings):
    monkeypatch.setattr(tasks.Nudge, "defer", REAL_NUDGE_DEFER)
    monkeypatch.setattr(tasks.rating_nudge, "last", float("-inf"))
    monkeypatch.setattr(tasks.rating_nudge, "deferred", None)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.TOKENTILL_RATING_NUDGE_SECONDS = 0.5
    # The nudge's clock stands still while a request runs, however slow the machine.
    clock = SimpleNamespace(monotonic=lambda: clock.now, now=100.0)
    monkeypatch.setattr(tasks, "time", clock)

    events_ingest(items=[an_event(event_id="first")])  # rated at once, in this thread
    assert UnratedEvent.objects.count() == 0
    clock.now = 100.1
    events_ingest(items=[an_event(event_id="second")])  # inside the interval: owed 0.4 s
    owed = tasks.rating_nudge.deferred
    assert UnratedEvent.objects.count() == 1

    assert owed is not None
    owed.join(timeout=30)

    assert not owed.is_alive()
    assert UnratedEvent.objects.count() == 0  # rated by the deferred nudge's thread
