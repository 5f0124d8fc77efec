"""Closing on request while beat closes, on PostgreSQL with real threads: two API calls
(each in its Idempotency-Key's transaction) and beat's task at the same instant close each
period once, with gapless numbers, and between them answer every invoice once."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from billing import tasks
from billing.models import BillingPeriod, Invoice

from .test_closing_races import customers_with_a_fee

pytestmark = pytest.mark.django_db(transaction=True)
AFTER_TWO_PERIODS = datetime(2027, 1, 2, 1, tzinfo=UTC)
CUSTOMERS = 6


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")


def test_two_api_closings_and_beat_at_once_close_each_period_once(operator_key, monkeypatch):
    customers_with_a_fee(CUSTOMERS)
    monkeypatch.setattr(timezone, "now", lambda: AFTER_TWO_PERIODS)
    barrier, answers, beat, errors = threading.Barrier(3), [], [], []

    def api_close(key: str) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_key}")
            barrier.wait(timeout=30)
            answers.append(
                client.post("/api/v1/periods/close", {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
            )
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    def beat_close() -> None:
        try:
            barrier.wait(timeout=30)
            beat.append(tasks.close_due_periods())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=api_close, args=("a",)),
        threading.Thread(target=api_close, args=("b",)),
        threading.Thread(target=beat_close),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert [answer.status_code for answer in answers] == [200, 200]
    answered = [i["number"] for answer in answers for i in answer.json()["invoices"]]
    assert len(answered) + beat[0] == CUSTOMERS * 2
    assert len(set(answered)) == len(answered)
    assert BillingPeriod.objects.count() == CUSTOMERS * 2
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:06d}" for n in range(1, CUSTOMERS * 2 + 1)]
    assert set(Invoice.objects.values_list("total", flat=True)) == {Decimal("10")}
