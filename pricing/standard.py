"""Formulas written for billing ops from the rates they enter (pure: no Django).

A non-engineer prices a model by typing three or four prices per million tokens; the
formula that charges them is written here, so the admin's price builder and the catalog
produce the same text, which stays visible and editable as the price's formula.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import TypedDict

from .money import plain

# Which metric each standard rate charges, in the order formulas list them.
STANDARD_RATES = {
    "rate_in": "input_tokens",
    "rate_out": "output_tokens",
    "rate_cached": "cached_input_tokens",
    "rate_cache_write": "cache_creation_input_tokens",
}
RATE_NAME_PATTERN = r"^rate_[a-z0-9_]{1,40}$"


class LongContext(TypedDict):
    """A catalog model's long-context prices (contracts/catalog/prices.json): above the
    threshold, these rates (per 1M tokens, as decimal text) apply to the whole call."""

    threshold_input_tokens: int
    rates: Mapping[str, str]


class RateSpec(TypedDict):
    """A rate as a price stores it: `{"amount": "2.50", "per": 1000000}`."""

    amount: str
    per: int


def formula_for_rates(rate_metrics: Mapping[str, str]) -> str:
    """`metric * rate` for each (rate, metric) pair, summed: the per-event formula."""
    return " + ".join(f"{metric} * {rate}" for rate, metric in rate_metrics.items())


def catalog_price_formula(rates: Mapping[str, object], long_context: LongContext | None) -> str:
    """The formula for a catalog model's rates (names as in contracts/catalog/prices.json).

    Cached input without a cached rate is charged at the input rate, never free; audio
    input with a rate of its own is taken out of the input tokens; above a long-context
    threshold (counted over all input, cached and written included, as providers count
    it) the long-context input and output rates apply to the whole call.
    """
    input_term = "input_tokens * rate_in"
    if "cached_input" in rates:
        cached_term = "cached_input_tokens * rate_cached"
    else:
        input_term = "(input_tokens + cached_input_tokens) * rate_in"
        cached_term = ""
    if "input_audio" in rates:
        input_term = (
            "(input_tokens - audio_input_tokens) * rate_in + audio_input_tokens * rate_in_audio"
        )
    writes = ""
    if "cache_write_1h" in rates:
        writes = (
            "(cache_creation_input_tokens - cache_creation_1h_input_tokens) * rate_cache_write"
            " + cache_creation_1h_input_tokens * rate_cache_write_1h"
        )
    elif "cache_write" in rates:
        writes = "cache_creation_input_tokens * rate_cache_write"
    rest = " + ".join(term for term in (cached_term, writes) if term)
    standard = " + ".join(term for term in (input_term, "output_tokens * rate_out", rest) if term)
    if not long_context:
        return standard
    threshold = long_context["threshold_input_tokens"]
    long_input = input_term.replace("rate_in", "rate_in_long").replace(
        "rate_in_long_audio", "rate_in_audio"
    )
    long = " + ".join(term for term in (long_input, "output_tokens * rate_out_long", rest) if term)
    total_input = "input_tokens + cached_input_tokens + cache_creation_input_tokens"
    return f"if({total_input} > {threshold}, {long}, {standard})"


CATALOG_RATE_NAMES = {
    "input": "rate_in",
    "output": "rate_out",
    "cached_input": "rate_cached",
    "cache_write": "rate_cache_write",
    "cache_write_1h": "rate_cache_write_1h",
    "input_audio": "rate_in_audio",
}


def catalog_price_rates(
    rates: Mapping[str, str], long_context: LongContext | None, *, markup: Decimal
) -> dict[str, RateSpec]:
    """The price's rates (per 1M tokens) from a catalog entry, each times (1 + markup)."""
    factor = 1 + markup
    priced = {CATALOG_RATE_NAMES[name]: Decimal(amount) for name, amount in rates.items()}
    if long_context:
        priced["rate_in_long"] = Decimal(long_context["rates"]["input"])
        priced["rate_out_long"] = Decimal(long_context["rates"]["output"])
    return {
        name: {"amount": plain(amount * factor), "per": 1_000_000}
        for name, amount in priced.items()
    }
