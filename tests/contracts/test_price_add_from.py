"""price_add_from: a price for calls a rate card leaves unpriced, from an instant, the past
included ("price this" on the customer page)."""

from datetime import datetime

import pytest
from django.core.exceptions import ValidationError

from contracts.models import Price, RateCardVersion, TermsChange
from contracts.rate_cards import price_add_from, rate_card_version_lock
from contracts.services import contract_create

from .contract_support import PER_1M, utc

LLAMA = {
    "name": "llama-3.3-70b",
    "model_pattern": "llama-3.3-70b",
    "rates": {"rate_in": {"amount": "1.00", "per": PER_1M}},
    "formula": "input_tokens * rate_in",
}
NOV = utc(2025, 11, 1)


def prices_of(version: RateCardVersion) -> list[tuple[str, int]]:
    return list(version.prices.order_by("position").values_list("name", "position"))


def snapshot() -> dict:
    return {
        "versions": list(RateCardVersion.objects.order_by("pk").values()),
        "prices": list(Price.objects.order_by("pk").values()),
        "changes": list(TermsChange.objects.order_by("pk").values()),
    }


@pytest.fixture
def on_standard(acme, globex, standard):
    """acme and globex on Standard from February 2025; globex's contract ended in June."""
    contract_create(customer=acme, starts_at=utc(2025, 2, 1), rate_card=standard)
    contract_create(customer=globex, starts_at=utc(2025, 2, 1), ends_at=utc(2025, 6, 1),
                    rate_card=standard)  # fmt: skip
    TermsChange.objects.all().delete()
    return standard


def test_a_card_that_has_rated_gets_a_new_version_from_the_instant(on_standard, acme):
    v1 = on_standard.versions.get()
    rate_card_version_lock(version=v1)

    price = price_add_from(rate_card=on_standard, effective_from=NOV, **LLAMA)

    assert (price.version.number, price.version.effective_from) == (2, NOV)
    assert prices_of(price.version) == [("gpt-4o", 0), ("embeddings", 1), ("llama-3.3-70b", 2)]
    assert prices_of(v1) == [("gpt-4o", 0), ("embeddings", 1)]
    # Only acme's terms use the card from November on: its usage from then is rated again
    assert list(TermsChange.objects.values_list("customer__external_id", "effective_from")) == [
        ("acme", NOV)
    ]


def test_a_card_that_has_rated_nothing_gets_the_price_in_its_latest_version(on_standard):
    price = price_add_from(rate_card=on_standard, effective_from=NOV, **LLAMA)

    assert price.version.number == 1
    assert RateCardVersion.objects.filter(rate_card=on_standard).count() == 1
    assert prices_of(price.version)[-1] == ("llama-3.3-70b", 2)


@pytest.mark.parametrize(
    ("effective_from", "price", "errors"),
    [
        (
            utc(2024, 12, 31),
            LLAMA,
            {"effective_from": ["Must be at or after Standard v1 starts (2025-01-01 00:00 UTC): "
                                "that version would hide the price."]},
        ),
        (
            datetime(2025, 11, 1),
            LLAMA,
            {"effective_from": ["Give a date and time with its UTC offset, e.g. "
                                "2026-01-01T00:00:00Z."]},
        ),
        (
            NOV,
            {**LLAMA, "formula": "input_tokens * rate_inn"},
            {"formula": ["unknown name 'rate_inn' at column 16 (did you mean 'rate_in'?)"]},
        ),
    ],
)  # fmt: skip
def test_a_refused_price_stores_nothing_not_even_its_version(
    on_standard, effective_from, price, errors
):
    rate_card_version_lock(version=on_standard.versions.get())
    before = snapshot()

    with pytest.raises(ValidationError) as refused:
        price_add_from(rate_card=on_standard, effective_from=effective_from, **price)

    assert refused.value.message_dict == errors
    assert snapshot() == before
