"""A price corrected from an instant in the past: new versions that supersede from then on,
changing that price alone, recorded with who and why; refusals store nothing.

The Standard card (contract_support.card_create) prices gpt-4o at 2.50 / 10.00 / 1.25 per
1M and embeddings at 0.02 per 1M from 1 January 2025.
"""

from datetime import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from contracts.models import Price, PriceCorrection, RateCardVersion
from contracts.price_corrections import price_correction_create
from contracts.rate_cards import price_update, rate_card_version_lock, rate_card_version_schedule

from .contract_support import GPT_4O_RATES, PER_1M, card_create, utc

NOW = utc(2025, 3, 20, 12)
REASON = "The contract says 5.00 per 1M output tokens since March"


@pytest.fixture
def now(monkeypatch) -> datetime:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def standard(db, now):
    card = card_create("Standard")
    rate_card_version_lock(version=card.versions.get())  # it has rated usage
    return card


def in_force(card, at: datetime) -> RateCardVersion:
    """The version rating uses at `at`: the highest-numbered started by then."""
    return card.versions.filter(effective_from__lte=at).order_by("-number").first()


def rates_at(card, at: datetime, price: str = "gpt-4o") -> dict:
    return in_force(card, at).prices.get(name=price).rates


def correct(card, **fields) -> PriceCorrection:
    given = {
        "rate_card": card,
        "price": "gpt-4o",
        "effective_from": utc(2025, 3, 1),
        "rates": {"rate_out": "5.00"},
        "reason": REASON,
        "created_by": "ops",
        **fields,
    }
    return price_correction_create(**given)


def snapshot() -> dict:
    return {
        "versions": list(RateCardVersion.objects.order_by("pk").values()),
        "prices": list(Price.objects.order_by("pk").values()),
        "corrections": list(PriceCorrection.objects.values()),
    }


def test_a_correction_is_a_version_from_the_instant_with_that_price_alone_changed(standard):
    correction = correct(standard)

    # A version 2 from March 1: gpt-4o's output at 5.00, keeping its unit; the rest as v1.
    version = in_force(standard, utc(2025, 3, 1))
    assert (version.number, version.effective_from, version.correction) == (
        2,
        utc(2025, 3, 1),
        correction,
    )
    assert version.note == f"Correction of gpt-4o from 2025-03-01 00:00 UTC: {REASON}"
    assert rates_at(standard, utc(2025, 3, 1)) == {
        **GPT_4O_RATES,
        "rate_out": {"amount": "5.00", "per": PER_1M},
    }
    assert rates_at(standard, utc(2025, 3, 1), "embeddings") == {
        "rate_in": {"amount": "0.02", "per": PER_1M}
    }
    # Before the instant, version 1 still rates, unchanged.
    assert in_force(standard, utc(2025, 2, 28, 23, 59)).number == 1
    assert rates_at(standard, utc(2025, 2, 28)) == GPT_4O_RATES
    # Who and why are kept with what it set.
    assert (correction.price_name, correction.effective_from, correction.rates) == (
        "gpt-4o",
        utc(2025, 3, 1),
        {"rate_out": "5.00"},
    )
    assert (correction.reason, correction.created_by, correction.created_at) == (REASON, "ops", NOW)


def test_a_correction_before_a_later_version_corrects_each_version_from_then_on(standard):
    # Given version 2 scheduled from April 1 with gpt-4o's input at 3.00
    later = rate_card_version_schedule(rate_card=standard, effective_from=utc(2025, 4, 1))
    price = later.prices.get(name="gpt-4o")
    price_update(price=price, rates={**price.rates, "rate_in": {"amount": "3.00", "per": PER_1M}})

    # When output is corrected from March 1, before version 2 starts
    correct(standard)

    # Then version 3 (a copy of v1) from March 1 and version 4 (a copy of v2) from April 1
    # both charge 5.00 for output; each keeps its own input rate.
    made = list(standard.versions.filter(number__gt=2).values_list("number", "effective_from"))
    assert made == [(3, utc(2025, 3, 1)), (4, utc(2025, 4, 1))]
    out = {"amount": "5.00", "per": PER_1M}
    assert rates_at(standard, utc(2025, 3, 5)) == {**GPT_4O_RATES, "rate_out": out}
    assert in_force(standard, utc(2025, 3, 5)).number == 3
    assert rates_at(standard, utc(2025, 4, 15)) == {
        **GPT_4O_RATES,
        "rate_in": {"amount": "3.00", "per": PER_1M},
        "rate_out": out,
    }
    assert in_force(standard, utc(2025, 4, 15)).number == 4
    assert rates_at(standard, utc(2025, 2, 1)) == GPT_4O_RATES


def test_a_rate_with_its_unit_and_a_formula_may_add_a_rate(standard):
    correct(
        standard,
        rates={"rate_search": {"amount": "10", "per": 1_000}},
        formula="input_tokens * rate_in + output_tokens * rate_out + "
        "cached_input_tokens * rate_cached + web_search_requests * rate_search",
    )

    price = in_force(standard, utc(2025, 3, 1)).prices.get(name="gpt-4o")
    assert price.rates["rate_search"] == {"amount": "10", "per": 1_000}
    assert price.formula.endswith("web_search_requests * rate_search")


REFUSALS = [
    ({"reason": "  "}, "reason", "Say why the price is corrected: the reason is kept with it."),
    ({"created_by": ""}, "created_by", "Say who corrects the price."),
    (
        {"effective_from": utc(2024, 12, 31)},
        "effective_from",
        "Standard has no prices before 2025-01-01 00:00 UTC (Standard v1): a correction "
        "starts then or later.",
    ),
    (
        {"effective_from": utc(2025, 3, 21)},
        "effective_from",
        "A correction starts in the past: to change prices from a later instant, schedule a "
        "new version.",
    ),
    (
        {"effective_from": datetime(2025, 3, 1)},
        "effective_from",
        "Give a date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z.",
    ),
    (
        {"price": "gpt-5"},
        "price",
        "Standard v1 (in force at 2025-03-01 00:00 UTC) has no price named 'gpt-5' (its "
        "prices: gpt-4o, embeddings).",
    ),
    ({"rates": {}}, "rates", "Give the rates to correct (or a formula)."),
    (
        {"rates": {"rate_out": 5.0}},
        "rates",
        "'rate_out': write the amount as text, e.g. \"5.00\" (money is never a float).",
    ),
    ({"rates": {"rate_out": "five"}}, "rates", "'rate_out': 'five' is not a number."),
    (
        {"rates": {"rate_outt": "5.00"}},
        "rates",
        "'rate_outt': the price has no such rate (it has rate_in, rate_out, rate_cached); give "
        'a new rate with its unit, {"amount": "5.00", "per": 1000000}, and a formula that '
        "uses it.",
    ),
    (
        {"rates": {"rate_out": "10.00"}},
        "rates",
        "This changes nothing: gpt-4o already has these rates and formula from 2025-03-01 "
        "00:00 UTC on.",
    ),
    ({"formula": "input_tokens ** 2"}, "formula", "'**' is not allowed"),
]


@pytest.mark.parametrize(("fields", "field", "message"), REFUSALS)
def test_a_refused_correction_stores_nothing(standard, fields, field, message):
    before = snapshot()

    with pytest.raises(ValidationError) as refused:
        correct(standard, **fields)

    assert message in " ".join(refused.value.message_dict[field])
    assert snapshot() == before
