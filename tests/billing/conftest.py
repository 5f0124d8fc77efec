"""Rating fixtures: a frozen clock, a customer on a gpt-4o contract, and event helpers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.services import usage_rate_pending
from contracts.services import contract_create, price_create, rate_card_create
from metering.services import events_ingest

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
GPT_4O_RATES = {
    "rate_in": {"amount": "2.50", "per": 1_000_000},
    "rate_out": {"amount": "10.00", "per": 1_000_000},
    "rate_cached": {"amount": "1.25", "per": 1_000_000},
}
GPT_4O_FORMULA = (
    "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
)


@pytest.fixture
def now(monkeypatch) -> datetime:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def rate_card(db, now):
    card = rate_card_create(name="Standard", currency="USD", effective_from=NOVEMBER)
    price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    return card


@pytest.fixture
def contract(acme, rate_card):
    return contract_create(customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)


def send(*events) -> None:
    """Ingest events given as (event_id, minutes before NOW, model, metrics[, feature])."""
    items = []
    for event_id, minutes, model, metrics, *feature in events:
        item = {
            "event_id": event_id,
            "customer_id": "acme",
            "timestamp": (NOW - timedelta(minutes=minutes)).isoformat(),
            "model": model,
            "metrics": metrics,
        }
        if feature:
            item["feature"] = feature[0]
        items.append(item)
    result = events_ingest(items=items)
    assert result.count("accepted") == len(items), result.as_dict()


def rate() -> int:
    return usage_rate_pending()


def money(text: str) -> Decimal:
    return Decimal(text)
