"""Billing webhooks' fixtures: a clock, endpoints on the loopback receiver, events emitted
as the apps emit them."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from tests.wallets.test_alerts import Clock, sent
from webhooks.models import WebhookEvent
from webhooks.services import endpoint_create, event_emit

T = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)

#: An invoice.finalized event's data, as billing writes it.
FINALIZED = {
    "customer_id": "acme",
    "invoice_number": "INV-000042",
    "status": "finalized",
    "currency": "USD",
    "total": "59.00",
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "finalized_at": "2026-12-02T00:05:00Z",
    "paid_at": None,
    "voided_at": None,
    "stripe_id": None,
}


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(T)
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.fixture
def endpoint(db, receiver):
    return endpoint_create(url=receiver.url, description="ERP")


def finalized() -> WebhookEvent:
    """An invoice.finalized event, emitted as closing emits it."""
    return event_emit(event_type="invoice.finalized", data=FINALIZED)


__all__ = ["clock", "endpoint", "sent"]  # `sent`: a block whose deliveries go at commit
