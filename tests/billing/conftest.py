"""Rating fixtures: a frozen clock, a customer on a gpt-4o contract, and event helpers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.rating.rater import usage_rate_pending
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create
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
    return standard_card()


def standard_card():
    """The Standard card from November 1, pricing gpt-4o at 2.50 / 10.00 / 1.25 per 1M."""
    card = rate_card_create(name="Standard", currency="USD", effective_from=NOVEMBER)
    price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    return card


def tiered_card(name: str, effective_from: datetime):
    """A card with gpt-4o per event and a graduated embeddings price (a unit per 1,000
    input tokens of `embed-*`, the first 100 units of a period at 0.02, the rest at 0.01);
    returns its first version."""
    card = rate_card_create(name=name, currency="USD", effective_from=effective_from)
    version = card.versions.get()
    price_create(
        version=version,
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    price_create(
        version=version,
        name="embeddings",
        model_pattern="embed-*",
        rates={"rate_unit": {"amount": "1", "per": 1000}},
        formula="input_tokens * rate_unit",
        kind="graduated",
        tiers=[{"up_to": "100", "unit_price": "0.02"}, {"up_to": None, "unit_price": "0.01"}],
    )
    return version


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


# --- Events at exact instants, snapshots of rated usage, the usage endpoint -------------

#: A call that costs exactly 0.010000000000 at gpt-4o's rates:
#: 1,000 x 2.50/1M + 500 x 10.00/1M + 2,000 x 1.25/1M = 0.0025 + 0.005 + 0.0025.
CALL = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}


def event(
    event_id: str,
    timestamp: datetime,
    *,
    model: str = "gpt-4o",
    metrics: dict | None = None,
    feature: str = "",
    properties: dict | None = None,
    customer: str = "acme",
) -> dict:
    """One event as a service sends it, at an exact instant (CALL's metrics unless given)."""
    item = {
        "event_id": event_id,
        "customer_id": customer,
        "timestamp": timestamp.isoformat(),
        "model": model,
        "metrics": CALL if metrics is None else metrics,
    }
    if feature:
        item["feature"] = feature
    if properties:
        item["properties"] = properties
    return item


def ingest(*items: dict) -> None:
    """Store the events; every one must be accepted."""
    result = events_ingest(items=list(items))
    assert result.count("accepted") == len(items), result.as_dict()


def rollups() -> list[dict]:
    """Every rollup with its figures (not its ids or clock columns), in a stable order."""
    from billing.models import UsageRollup

    fields = [
        "customer__external_id",
        "period_start",
        "period_end",
        "status",
        "terms__number",
        "price__name",
        "line",
        "model",
        "feature",
        "reason",
        "event_count",
        "amount",
        "quantity",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_creation_input_tokens",
        "reasoning_tokens",
        "first_event_at",
        "last_event_at",
    ]
    return list(UsageRollup.objects.order_by("key").values(*fields))


def ratings() -> dict[str, tuple]:
    """event_id -> (amount, quantity, reason, status, price name, terms number) of its rating."""
    from billing.models import RatedEvent

    return {
        rated.event.event_id: (
            rated.amount,
            rated.quantity,
            rated.reason,
            rated.rollup.status,
            rated.rollup.price.name if rated.rollup.price else None,
            rated.rollup.terms.number if rated.rollup.terms else None,
        )
        for rated in RatedEvent.objects.select_related(
            "event", "rollup__price", "rollup__terms"
        ).order_by("event__event_id")
    }


def queued() -> int:
    from metering.models import UnratedEvent

    return UnratedEvent.objects.count()


def usage_of(api, customer: str = "acme", **params) -> dict:
    """The usage endpoint's answer (it must be 200)."""
    response = api.get(f"/api/v1/customers/{customer}/usage", params)
    assert response.status_code == 200, response.content
    return response.json()


MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini")


@pytest.fixture
def three_models(rate_card):
    """The Standard card also prices gpt-4o-mini and o3-mini at gpt-4o's rates, so three
    calls make three usage lines."""
    for model in MODELS[1:]:
        price_create(
            version=rate_card.versions.get(),
            name=model,
            model_pattern=model,
            rates=GPT_4O_RATES,
            formula=GPT_4O_FORMULA,
        )
    return rate_card
