"""The model price catalog shipped as data (contracts/catalog/prices.json) is well formed.

No database: the file is read as JSON and checked as a loader would need it.
The spot checks pin a few well-known list prices, so an accidental edit shows.
"""

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

import contracts.catalog

CATALOG = Path(contracts.catalog.__file__).with_name("prices.json")
REQUIRED = {
    "provider",
    "model",
    "match",
    "effective_from",
    "rates",
    "batch_discount",
    "long_context",
    "source",
    "notes",
}
KNOWN_RATES = {"input", "output", "cached_input", "cache_write", "cache_write_1h", "input_audio"}


@pytest.fixture(scope="module")
def catalog() -> dict:
    return json.loads(CATALOG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def models(catalog) -> list[dict]:
    return catalog["models"]


def a_rate(text: object) -> Decimal:
    """A rate as the loader will read it: a decimal string, finite and not negative."""
    assert isinstance(text, str), f"{text!r} is not a string"
    try:
        value = Decimal(text)
    except InvalidOperation:
        pytest.fail(f"{text!r} is not a decimal")
    assert value.is_finite() and value >= 0, f"{text!r} is not a non-negative number"
    assert value == value.quantize(Decimal("1E-12")), f"{text!r} has more than 12 places"
    return value


def entry(models, provider: str, model: str) -> dict:
    """The latest row for a model."""
    rows = [row for row in models if (row["provider"], row["model"]) == (provider, model)]
    assert rows, f"{provider}/{model} is not in the catalog"
    return max(rows, key=lambda row: row["effective_from"])


def test_the_catalog_has_its_header(catalog):
    assert catalog["currency"] == "USD"
    assert catalog["unit"] == "per_1m_tokens"
    assert date.fromisoformat(catalog["as_of"]) <= date.today()
    assert len(catalog["models"]) > 0


def test_every_row_has_the_required_keys(models):
    for row in models:
        missing = REQUIRED - row.keys()
        assert not missing, f"{row.get('model')}: missing {sorted(missing)}"
        for key in ("provider", "model", "match", "source"):
            assert isinstance(row[key], str) and row[key].strip(), f"{row['model']}: {key}"
        assert row["source"].startswith("https://"), row["model"]
        assert isinstance(row["notes"], str)


def test_every_rate_is_a_non_negative_decimal_string(models):
    for row in models:
        rates = row["rates"]
        assert {"input", "output"} <= rates.keys(), row["model"]
        assert rates.keys() <= KNOWN_RATES, f"{row['model']}: {sorted(rates.keys() - KNOWN_RATES)}"
        for text in rates.values():
            a_rate(text)
        if row["batch_discount"] is not None:
            assert 0 < a_rate(row["batch_discount"]) < 1, row["model"]


def test_dates_parse_and_are_not_after_the_catalog_date(catalog, models):
    as_of = date.fromisoformat(catalog["as_of"])

    for row in models:
        assert date.fromisoformat(row["effective_from"]) <= as_of, row["model"]


def test_no_row_is_listed_twice(models):
    keys = [(row["provider"], row["model"], row["effective_from"]) for row in models]

    assert len(keys) == len(set(keys)), [key for key in keys if keys.count(key) > 1]


def test_a_cache_read_is_cheaper_than_fresh_input(models):
    for row in models:
        rates = row["rates"]
        if "cached_input" in rates:
            assert a_rate(rates["cached_input"]) < a_rate(rates["input"]), row["model"]


def test_anthropic_cache_writes_follow_the_published_multipliers(models):
    for row in models:
        rates = row["rates"]
        if "cache_write" in rates:
            assert a_rate(rates["cache_write"]) == a_rate(rates["input"]) * Decimal("1.25")
        if "cache_write_1h" in rates:
            assert a_rate(rates["cache_write_1h"]) == a_rate(rates["input"]) * 2


def test_long_context_rows_have_a_positive_threshold_and_dearer_rates(models):
    for row in models:
        long_context = row["long_context"]
        if long_context is None:
            continue
        threshold = long_context["threshold_input_tokens"]
        assert isinstance(threshold, int) and not isinstance(threshold, bool)
        assert threshold > 0, row["model"]
        assert long_context["rates"], row["model"]
        for name, text in long_context["rates"].items():
            assert name in KNOWN_RATES, row["model"]
            assert a_rate(text) >= a_rate(row["rates"][name]), f"{row['model']}: {name}"


def test_a_glob_match_ends_in_a_single_star(models):
    for row in models:
        match = row["match"]
        assert "*" not in match[:-1], row["model"]


@pytest.mark.parametrize(
    ("provider", "model", "rates"),
    [
        ("openai", "gpt-4o", {"input": "2.50", "output": "10.00", "cached_input": "1.25"}),
        ("openai", "gpt-4o-mini", {"input": "0.15", "output": "0.60", "cached_input": "0.075"}),
        ("openai", "o3", {"input": "2.00", "output": "8.00", "cached_input": "0.50"}),
        (
            "anthropic",
            "claude-sonnet-4-5",
            {
                "input": "3.00",
                "output": "15.00",
                "cached_input": "0.30",
                "cache_write": "3.75",
                "cache_write_1h": "6.00",
            },
        ),
        # Gemini Developer API pricing page: $0.30 text/image/video, $1.00 audio, $2.50 out.
        ("google", "gemini-2.5-flash", {"input": "0.30", "output": "2.50", "input_audio": "1.00"}),
    ],
)
def test_well_known_list_prices(models, provider, model, rates):
    row = entry(models, provider, model)

    assert {name: Decimal(text) for name, text in row["rates"].items()} == {
        name: Decimal(text) for name, text in rates.items()
    }


def test_long_context_spot_checks(models):
    sonnet = entry(models, "anthropic", "claude-sonnet-4-5")["long_context"]
    gemini = entry(models, "google", "gemini-2.5-pro")["long_context"]

    assert sonnet == {
        "threshold_input_tokens": 200000,
        "rates": {"input": "6.00", "output": "22.50"},
    }
    assert gemini == {
        "threshold_input_tokens": 200000,
        "rates": {"input": "2.50", "output": "15.00"},
    }


def test_o3_price_cut_is_recorded_as_a_new_row(models):
    rows = sorted(
        (row["effective_from"], row["rates"]["input"], row["rates"]["output"])
        for row in models
        if row["model"] == "o3"
    )

    assert rows == [("2025-04-16", "10.00", "40.00"), ("2025-06-10", "2.00", "8.00")]
