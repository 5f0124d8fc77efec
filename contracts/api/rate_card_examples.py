"""The rate card API's requests and answers as the OpenAPI page shows them
(tests/test_api_schema.py checks each answer against its serializer's schema): the
Standard card in USD, gpt-4o per call and embeddings by graduated tiers, from November 2026.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample

PER_1M = 1_000_000
GPT_4O: dict[str, Any] = {
    "name": "gpt-4o",
    "display_name": "GPT-4o",
    "position": 0,
    "model_pattern": "gpt-4o",
    "feature": "",
    "property_filters": {},
    "kind": "per_event",
    "rates": {
        "rate_in": {"amount": "2.50", "per": PER_1M},
        "rate_out": {"amount": "10.00", "per": PER_1M},
        "rate_cached": {"amount": "1.25", "per": PER_1M},
    },
    "extra_metrics": [],
    "formula": "input_tokens * rate_in + output_tokens * rate_out + "
    "cached_input_tokens * rate_cached",
    "tiers": [],
    "package_size": None,
    "package_price": None,
}
EMBEDDINGS: dict[str, Any] = {
    "name": "embeddings",
    "display_name": "",
    "position": 1,
    "model_pattern": "text-embedding-3-*",
    "feature": "",
    "property_filters": {},
    "kind": "graduated",
    "rates": {"rate_unit": {"amount": "1", "per": 1000}},
    "extra_metrics": [],
    "formula": "input_tokens * rate_unit",
    "tiers": [
        {"up_to": "100", "unit_price": "0.02", "flat_fee": "0"},
        {"up_to": None, "unit_price": "0.01", "flat_fee": "0"},
    ],
    "package_size": None,
    "package_price": None,
}
VERSION_1: dict[str, Any] = {
    "number": 1,
    "effective_from": "2026-11-01T00:00:00Z",
    "note": "",
    "locked_at": "2026-11-01T00:04:12Z",
    "correction": None,
    "prices": [GPT_4O, EMBEDDINGS],
}
VERSION_2: dict[str, Any] = {
    "number": 2,
    "effective_from": "2026-12-01T00:00:00Z",
    "note": "December prices",
    "locked_at": None,
    "correction": None,
    "prices": [
        {**GPT_4O, "rates": {**GPT_4O["rates"], "rate_out": {"amount": "8.00", "per": PER_1M}}},
        {
            **GPT_4O,
            "name": "gpt-4o-mini",
            "display_name": "GPT-4o mini",
            "position": 2,
            "model_pattern": "gpt-4o-mini",
            "rates": {
                "rate_in": {"amount": "0.15", "per": PER_1M},
                "rate_out": {"amount": "0.60", "per": PER_1M},
                "rate_cached": {"amount": "0.075", "per": PER_1M},
            },
        },
    ],
}
CARD = {
    "name": "Standard",
    "currency": "USD",
    "description": "List prices",
    "created_at": "2026-10-20T09:00:00Z",
    "versions": [VERSION_1, VERSION_2],
}
PRICE_REFUSED_MESSAGES = {
    "prices[0].formula": ["unknown name 'rate_ou' at line 2, column 19 (did you mean 'rate_out'?)"],
    "prices[1].rates.rate_in": ["'rate_in': the unit must be per 1, 1000 or 1000000 units."],
}

CARD_ANSWER = OpenApiExample(
    "Rate card", value=CARD, response_only=True, status_codes=["200", "201"]
)
CARD_PAGE = OpenApiExample(
    "A page",
    response_only=True,
    value={
        **{name: CARD[name] for name in ("name", "currency", "description", "created_at")},
        "versions": [
            {**{k: v for k, v in VERSION_1.items() if k != "prices"}, "price_count": 2},
            {**{k: v for k, v in VERSION_2.items() if k != "prices"}, "price_count": 2},
        ],
    },
)
CARD_NOT_FOUND = OpenApiExample(
    "Unknown rate card",
    value={"detail": "No rate card named 'Standrad'."},
    response_only=True,
    status_codes=["404"],
)
CUSTOMER_KEY = OpenApiExample(
    "A customer's key",
    value={"detail": "A customer's API key cannot call this endpoint."},
    response_only=True,
    status_codes=["403"],
)

CREATE = OpenApiExample(
    "New card with a price",
    request_only=True,
    value={
        "name": "Standard",
        "currency": "USD",
        "description": "List prices",
        "effective_from": "2026-11-01T00:00:00Z",
        "prices": [
            {
                "model_pattern": "gpt-4o",
                "display_name": "GPT-4o",
                "rates": GPT_4O["rates"],
                "formula": GPT_4O["formula"],
            },
            {key: value for key, value in EMBEDDINGS.items() if key != "position"},
        ],
    },
)
CREATE_ANSWER = OpenApiExample(
    "Rate card",
    response_only=True,
    status_codes=["201"],
    value={**CARD, "versions": [{**VERSION_1, "locked_at": None}]},
)
CREATE_REFUSED = OpenApiExample(
    "Refused",
    response_only=True,
    status_codes=["400"],
    value={"name": ["Rate card with this Name already exists."], **PRICE_REFUSED_MESSAGES},
)

CLONE = OpenApiExample(
    "Into EUR",
    request_only=True,
    value={
        "name": "Europe",
        "currency": "EUR",
        "effective_from": "2026-12-01T00:00:00Z",
        "prices": [
            {
                "name": "gpt-4o",
                "rates": {"rate_in": "2.30", "rate_out": "9.20", "rate_cached": "1.15"},
            },
            {
                "name": "embeddings",
                "tiers": [
                    {"up_to": "100", "unit_price": "0.018"},
                    {"up_to": None, "unit_price": "0.009"},
                ],
            },
        ],
    },
)
CLONE_ANSWER = OpenApiExample(
    "Rate card",
    response_only=True,
    status_codes=["201"],
    value={
        "name": "Europe",
        "currency": "EUR",
        "description": "Cloned from Standard.",
        "created_at": "2026-11-20T10:00:00Z",
        "versions": [
            {
                **VERSION_1,
                "effective_from": "2026-12-01T00:00:00Z",
                "locked_at": None,
                "prices": [
                    {
                        **GPT_4O,
                        "rates": {
                            "rate_in": {"amount": "2.30", "per": PER_1M},
                            "rate_out": {"amount": "9.20", "per": PER_1M},
                            "rate_cached": {"amount": "1.15", "per": PER_1M},
                        },
                    },
                    {
                        **EMBEDDINGS,
                        "tiers": [
                            {"up_to": "100", "unit_price": "0.018", "flat_fee": "0"},
                            {"up_to": None, "unit_price": "0.009", "flat_fee": "0"},
                        ],
                    },
                ],
            }
        ],
    },
)
CLONE_REFUSED = OpenApiExample(
    "Money left out",
    response_only=True,
    status_codes=["400"],
    value={
        "prices": [
            "Give the prices in EUR of embeddings (tiers): money does not convert from USD. "
            "Or remove them."
        ],
        "prices[0].rates.rate_cached": [
            "Give rate_cached in EUR: money does not convert from USD."
        ],
    },
)

SCHEDULE = OpenApiExample(
    "December prices",
    request_only=True,
    value={
        "effective_from": "2026-12-01T00:00:00Z",
        "note": "December prices",
        "prices": [
            {"name": "gpt-4o", "rates": {"rate_out": "8.00"}},
            {
                "name": "gpt-4o-mini",
                "display_name": "GPT-4o mini",
                "model_pattern": "gpt-4o-mini",
                "rates": VERSION_2["prices"][1]["rates"],
                "formula": GPT_4O["formula"],
            },
        ],
        "remove": ["embeddings"],
    },
)
SCHEDULE_ANSWER = OpenApiExample(
    "Version", value=VERSION_2, response_only=True, status_codes=["201"]
)
SCHEDULE_REFUSED = OpenApiExample(
    "Refused",
    response_only=True,
    status_codes=["400"],
    value={
        "effective_from": ["Standard v1 has rated usage: a new version cannot start in the past."],
        "remove[0]": [
            "Standard v1 has no price named 'embedings' (its prices: gpt-4o, embeddings)."
        ],
    },
)

PRICE = OpenApiExample(
    "A package price",
    request_only=True,
    value={
        "name": "web search",
        "display_name": "Web searches",
        "model_pattern": "*",
        "kind": "package",
        "rates": {"rate_unit": {"amount": "1", "per": 1}},
        "formula": "web_search_requests * rate_unit",
        "package_size": "1000",
        "package_price": "10.00",
    },
)
PRICE_ANSWER = OpenApiExample(
    "Price",
    response_only=True,
    status_codes=["200", "201"],
    value={
        **GPT_4O,
        "name": "web search",
        "display_name": "Web searches",
        "position": 2,
        "model_pattern": "*",
        "kind": "package",
        "rates": {"rate_unit": {"amount": "1", "per": 1}},
        "formula": "web_search_requests * rate_unit",
        "package_size": "1000.000000",
        "package_price": "10.000000000000",
    },
)
PRICE_REFUSED = OpenApiExample(
    "Refused",
    response_only=True,
    status_codes=["400"],
    value={"formula": ["unknown name 'rate_unitt' at column 23 (did you mean 'rate_unit'?)"]},
)
PRICE_CHANGE = OpenApiExample(
    "Output at 8.00",
    request_only=True,
    value={"rates": {"rate_out": "8.00", "rate_cached": None}},
)
VERSION_LOCKED = OpenApiExample(
    "Version locked",
    response_only=True,
    status_codes=["409"],
    value={
        "detail": "Standard v1 has rated usage and cannot change: schedule a new version instead."
    },
)
VERSION_NOT_FOUND = OpenApiExample(
    "Unknown version",
    response_only=True,
    status_codes=["404"],
    value={"detail": "Standard has no version 7."},
)
PRICE_NOT_FOUND = OpenApiExample(
    "Unknown price",
    response_only=True,
    status_codes=["404"],
    value={"detail": "Standard v2 has no price named 'gpt-5'."},
)

CATALOG_ENTRY = OpenApiExample(
    "Catalog",
    response_only=True,
    value={
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
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
        "long_context": {
            "threshold_input_tokens": 200000,
            "rates": {"input": "6.00", "output": "22.50"},
        },
        "batch_discount": "0.500",
        "source": "https://www.anthropic.com/pricing",
        "notes": "",
    },
)
FROM_CATALOG = OpenApiExample(
    "List + 20 %",
    request_only=True,
    value={
        "name": "List + 20%",
        "markup": "0.20",
        "providers": ["openai"],
        "models": ["claude-sonnet-4-5"],
        "effective_from": "2026-11-01T00:00:00Z",
    },
)
FROM_CATALOG_ANSWER = OpenApiExample(
    "Rate card",
    response_only=True,
    status_codes=["201"],
    value={
        "name": "List + 20%",
        "currency": "USD",
        "description": "Catalog list prices on 2026-11-20 plus 20.00 %.",
        "created_at": "2026-11-20T10:00:00Z",
        "versions": [
            {
                **VERSION_1,
                "locked_at": None,
                "prices": [
                    {
                        **GPT_4O,
                        "rates": {
                            "rate_in": {"amount": "3", "per": PER_1M},
                            "rate_out": {"amount": "12", "per": PER_1M},
                            "rate_cached": {"amount": "1.5", "per": PER_1M},
                        },
                    }
                ],
            }
        ],
    },
)
FROM_CATALOG_REFUSED = OpenApiExample(
    "Refused",
    response_only=True,
    status_codes=["400"],
    value={
        "markup": ['Give the markup as a fraction of at least -1, e.g. "0.20" for +20 %.'],
        "models[0]": ["The catalog has no model 'gpt-6'."],
    },
)
