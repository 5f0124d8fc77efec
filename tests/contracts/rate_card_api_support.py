"""What the rate card API tests share: the prices they send, the answers as stored, and a
snapshot of every row a refused request must leave as it was."""

from decimal import Decimal

from common.models import AuditEntry, IdempotencyKey
from contracts.models import Price, RateCard, RateCardVersion

PER_1M = 1_000_000
STANDARD_FORMULA = (
    "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
)
GPT_4O_RATES = {
    "rate_in": {"amount": "2.50", "per": PER_1M},
    "rate_out": {"amount": "10.00", "per": PER_1M},
    "rate_cached": {"amount": "1.25", "per": PER_1M},
}
GPT_4O = {"model_pattern": "gpt-4o", "rates": GPT_4O_RATES, "formula": STANDARD_FORMULA}
#: A unit per 1,000 input tokens; the first 100 units of a period at 0.02, the rest 0.01.
EMBEDDINGS = {
    "name": "embeddings",
    "model_pattern": "text-embedding-3-*",
    "kind": "graduated",
    "rates": {"rate_unit": {"amount": "1", "per": 1000}},
    "formula": "input_tokens * rate_unit",
    "tiers": [
        {"up_to": "100", "unit_price": "0.02"},
        {"up_to": None, "unit_price": "0.01", "flat_fee": "5.00"},
    ],
}
#: Images by volume: the period's whole count at the tier it reaches.
IMAGES = {
    "name": "images",
    "model_pattern": "gpt-image-1",
    "kind": "volume",
    "rates": {"rate_image": {"amount": "1", "per": 1}},
    "extra_metrics": ["images"],
    "formula": "images * rate_image",
    "tiers": [{"up_to": "1000", "unit_price": "0.04"}, {"up_to": None, "unit_price": "0.03"}],
}
#: Web searches in packages of 1,000 at 10.00.
SEARCHES = {
    "name": "web search",
    "model_pattern": "*",
    "kind": "package",
    "rates": {"rate_unit": {"amount": "1", "per": 1}},
    "formula": "web_search_requests * rate_unit",
    "package_size": "1000",
    "package_price": "10.00",
}
EMPTY_PRICE = {
    "display_name": "",
    "feature": "",
    "property_filters": {},
    "extra_metrics": [],
    "tiers": [],
}


def answered(price: dict, position: int, **changes) -> dict:
    """A price as the API answers it: every field, tiers with their flat fee, package
    figures with their stored places."""
    shown = {
        "name": price.get("name", price["model_pattern"]),
        "position": position,
        "kind": "per_event",
        "package_size": None,
        "package_price": None,
        **EMPTY_PRICE,
        **{k: v for k, v in price.items() if k not in ("package_size", "package_price")},
    }
    shown["tiers"] = [{"flat_fee": "0", **tier} for tier in shown["tiers"]]
    if "package_size" in price:
        shown["package_size"] = f"{price['package_size']}.000000"
        shown["package_price"] = f"{price['package_price']}0000000000"
    return {**shown, **changes}


def rows() -> dict[str, list[dict]]:
    """Every rate card, version, price, audit entry and idempotency key, to show that a
    refused request stored nothing."""
    return {
        "cards": list(RateCard.objects.order_by("pk").values()),
        "versions": list(RateCardVersion.objects.order_by("pk").values()),
        "prices": list(Price.objects.order_by("pk").values()),
        "audit": list(AuditEntry.objects.order_by("pk").values()),
        "keys": list(IdempotencyKey.objects.order_by("pk").values()),
    }


def cost(price: Price, metrics: dict) -> Decimal:
    """What one call with `metrics` costs under a stored per-event price, by its formula."""
    rates = {name: Decimal(rate["amount"]) / rate["per"] for name, rate in price.rates.items()}
    names = dict.fromkeys(price.parsed_formula().names, 0)
    return price.parsed_formula().evaluate({**names, **metrics, **rates})
