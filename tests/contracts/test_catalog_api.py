"""The model price catalog over the API: its list prices in force today, and rate cards
priced from it at list price plus a markup; refusals store nothing."""

from decimal import Decimal

import pytest

from common.models import AuditEntry
from contracts.catalog.services import catalog_load
from contracts.models import RateCard

from .rate_card_api_support import PER_1M, cost, rows

CATALOG = "/api/v1/catalog"
FROM_CATALOG = "/api/v1/rate-cards/from-catalog"


@pytest.fixture
def catalog(db):
    catalog_load()


def per_1m(amount: str) -> dict:
    return {"amount": amount, "per": PER_1M}


def test_the_catalog_lists_each_model_s_price_in_force_by_provider(api, catalog):
    anthropic = api.get(CATALOG, {"provider": "anthropic"}).json()
    o3 = api.get(CATALOG, {"model": "o3"}).json()

    assert [entry["model"] for entry in anthropic] == [
        "claude-3-5-haiku",
        "claude-haiku-4-5",
        "claude-opus-4",
        "claude-opus-4-1",
        "claude-sonnet-4",
        "claude-sonnet-4-5",
    ]
    sonnet = anthropic[-1]
    assert {key: sonnet[key] for key in ("match", "effective_from", "currency", "rates")} == {
        "match": "claude-sonnet-4-5*",
        "effective_from": "2025-09-29",
        "currency": "USD",
        "rates": {
            "input": "3.00",
            "output": "15.00",
            "cached_input": "0.30",
            "cache_write": "3.75",
            "cache_write_1h": "6.00",
        },
    }
    assert sonnet["long_context"] == {
        "threshold_input_tokens": 200000,
        "rates": {"input": "6.00", "output": "22.50"},
    }
    # o3's price was cut on 10 June 2025: the list shows the price in force now
    assert [(e["effective_from"], e["rates"]["input"]) for e in o3] == [("2025-06-10", "2.00")]


def test_a_card_from_the_catalog_is_list_price_plus_the_markup(api, catalog):
    body = {
        "name": "List + 20%",
        "markup": "0.20",
        "models": ["claude-sonnet-4-5"],
        "providers": ["groq"],
        "effective_from": "2026-11-01T00:00:00Z",
    }

    response = api.post(FROM_CATALOG, body, format="json")

    assert response.status_code == 201, response.content
    card = response.json()
    assert card["currency"] == "USD"
    assert card["versions"][0]["effective_from"] == "2026-11-01T00:00:00Z"
    prices = {price["name"]: price for price in card["versions"][0]["prices"]}
    assert list(prices) == ["claude-sonnet-4-5", "llama-3.1-8b-instant", "llama-3.3-70b-versatile"]
    # list * 1.20: 3.00 → 3.6, 15.00 → 18, 0.30 → 0.36, 3.75 → 4.5, 6.00 → 7.2, 22.50 → 27
    assert prices["claude-sonnet-4-5"]["rates"] == {
        "rate_in": per_1m("3.6"),
        "rate_out": per_1m("18"),
        "rate_cached": per_1m("0.36"),
        "rate_cache_write": per_1m("4.5"),
        "rate_cache_write_1h": per_1m("7.2"),
        "rate_in_long": per_1m("7.2"),
        "rate_out_long": per_1m("27"),
    }
    # 0.59 → 0.708 and 0.79 → 0.948; no cached rate: cached input is charged as input
    assert prices["llama-3.3-70b-versatile"]["rates"] == {
        "rate_in": per_1m("0.708"),
        "rate_out": per_1m("0.948"),
    }
    assert prices["llama-3.3-70b-versatile"]["formula"] == (
        "(input_tokens + cached_input_tokens) * rate_in + output_tokens * rate_out"
    )
    stored = RateCard.objects.get(name="List + 20%").versions.get().prices
    sonnet = stored.get(name="claude-sonnet-4-5")
    # over 200K input: 150,000 * 7.2/1M + 60,000 cached * 0.36/1M + 1,000 * 27/1M
    #                = 1.08 + 0.0216 + 0.027
    long_call = {"input_tokens": 150_000, "cached_input_tokens": 60_000, "output_tokens": 1000}
    assert cost(sonnet, long_call) == Decimal("1.1286")
    assert [entry.action for entry in AuditEntry.objects.order_by("pk")] == [
        "rate_card.create",
        "price.create",
        "price.create",
        "price.create",
    ]


def test_a_refused_card_from_the_catalog_names_each_mistake_and_stores_nothing(api, catalog):
    before = rows()
    body = {"name": "X", "markup": "-2", "models": ["gpt-4o", "gpt-6"], "providers": ["mistral"]}

    response = api.post(FROM_CATALOG, body, format="json", HTTP_IDEMPOTENCY_KEY="x-1")

    assert response.status_code == 400
    assert response.json() == {
        "markup": ['Give the markup as a fraction of at least -1, e.g. "0.20" for +20 %.'],
        "providers[0]": [
            "The catalog has no provider 'mistral' (it has anthropic, google, groq, openai)."
        ],
        "models[1]": ["The catalog has no model 'gpt-6'."],
    }
    assert rows() == before


def test_a_markup_is_text(api, catalog):
    response = api.post(FROM_CATALOG, {"name": "X", "markup": 0.2}, format="json")

    assert response.json() == {
        "markup": ['Write the amount as a string, e.g. "500.00": money is never a JSON number.']
    }
    assert RateCard.objects.count() == 0


def test_an_empty_catalog_says_how_to_fill_it(api, db):
    response = api.post(FROM_CATALOG, {"name": "X", "markup": "0"}, format="json")

    assert response.json() == {
        "non_field_errors": ["The catalog has no prices for that choice: run load_price_catalog."]
    }


def test_a_card_from_the_catalog_sent_twice_with_one_key_is_made_once(api, catalog):
    body = {"name": "OpenAI at list", "markup": "0", "providers": ["openai"]}

    first = api.post(FROM_CATALOG, body, format="json", HTTP_IDEMPOTENCY_KEY="list-1")
    again = api.post(FROM_CATALOG, body, format="json", HTTP_IDEMPOTENCY_KEY="list-1")

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (
        201,
        201,
        "true",
    )
    assert again.json() == first.json()
    assert RateCard.objects.count() == 1
    # 12 OpenAI rows, o3 twice (before and after its price cut): 11 models
    assert len(first.json()["versions"][0]["prices"]) == 11
