"""Rate cards, prices and versions, and rate cards made from the public catalog."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from contracts.catalog.services import catalog_load, rate_card_create_from_catalog
from contracts.models import CatalogPrice, Price, RateCard, RateCardVersion
from contracts.rate_cards import (
    price_create,
    price_update,
    rate_card_clone,
    rate_card_create,
    rate_card_version_lock,
    rate_card_version_schedule,
)

PER_1M = 1_000_000
GPT_4O_RATES = {
    "rate_in": {"amount": "2.50", "per": PER_1M},
    "rate_out": {"amount": "10.00", "per": PER_1M},
    "rate_cached": {"amount": "1.25", "per": PER_1M},
}
STANDARD = "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
SAMPLE = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}


def per_unit_values(price: Price, metrics: dict) -> dict:
    rates = {name: Decimal(rate["amount"]) / rate["per"] for name, rate in price.rates.items()}
    return {**dict.fromkeys(price.parsed_formula().names, 0), **metrics, **rates}


def cost(price: Price, metrics: dict) -> Decimal:
    return price.parsed_formula().evaluate(per_unit_values(price, metrics))


@pytest.fixture
def card(db):
    return rate_card_create(
        name="Standard", currency="USD", effective_from=datetime(2026, 11, 1, tzinfo=UTC)
    )


@pytest.fixture
def version(card):
    return card.versions.get()


def gpt_4o(version, **overrides):
    fields = {"name": "gpt-4o", "model_pattern": "gpt-4o", "rates": GPT_4O_RATES}
    fields["formula"] = STANDARD
    fields.update(overrides)
    return price_create(version=version, **fields)


def test_a_rate_card_starts_with_an_empty_first_version(card):
    assert list(card.versions.values_list("number", "effective_from")) == [
        (1, datetime(2026, 11, 1, tzinfo=UTC))
    ]


def test_a_price_charges_what_its_rates_say(version):
    price = gpt_4o(version)

    assert cost(price, SAMPLE) == Decimal("0.0100")  # 0.0025 + 0.005 + 0.0025
    assert price.selector().matches(model="gpt-4o", feature="", properties={})


REFUSED = [
    ({"rates": {"in": {"amount": "1", "per": 1}}}, "rates", "'in': rate names look like"),
    ({"rates": {"rate_in": {"amount": "1", "per": 7}}}, "rates", "the unit must be per 1"),
    ({"rates": {"rate_in": {"amount": "-1", "per": 1}}}, "rates", "at least 0"),
    ({"rates": {"rate_in": {"amount": "abc", "per": 1}}}, "rates", "is not a number"),
    ({"rates": {"rate_in": 2.5}}, "rates", "give an amount and a unit"),
    ({"rates": {"rate_in": {"amount": 2.5, "per": 1}}}, "rates", "money is never a float"),
    (
        {"formula": "input_tokens * rate_inn"},
        "formula",
        "unknown name 'rate_inn' at column 16 (did you mean 'rate_in'?)",
    ),
    ({"formula": "__import__('os')"}, "formula", "text in quotes is not allowed"),
    ({"formula": "9**9**9"}, "formula", "**"),
    ({"property_filters": {"inference": 1}}, "property_filters", "flat map of strings"),
    ({"extra_metrics": ["Images"]}, "extra_metrics", "lowercase metric names"),
    ({"kind": "package"}, "package_size", "needs a size above 0"),
    (
        {"kind": "graduated", "tiers": [{"up_to": "100", "unit_price": "1"}]},
        "tiers",
        "last",
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), REFUSED)
def test_a_bad_price_is_refused_with_what_and_where(version, change, field, message):
    with pytest.raises(ValidationError) as refused:
        gpt_4o(version, **change)

    assert message in " ".join(refused.value.message_dict[field])
    assert Price.objects.count() == 0


def test_a_price_may_name_metrics_of_its_own(version):
    price = gpt_4o(
        version,
        name="images",
        rates={"rate_image": {"amount": "0.04", "per": 1}},
        extra_metrics=["images"],
        formula="images * rate_image",
    )

    assert cost(price, {"images": 3}) == Decimal("0.12")


def test_tiered_and_package_prices_are_checked(version):
    graduated = gpt_4o(
        version,
        name="embeddings",
        kind="graduated",
        formula="input_tokens",
        tiers=[
            {"up_to": "1000000", "unit_price": "0.0000001"},
            {"up_to": None, "unit_price": "0.00000005"},
        ],
    )
    package = gpt_4o(
        version,
        name="searches",
        kind="package",
        formula="web_search_requests",
        package_size=Decimal(1000),
        package_price=Decimal(10),
    )

    assert [graduated.kind, package.kind] == ["graduated", "package"]


def test_a_version_that_has_rated_cannot_change(version):
    price = gpt_4o(version)
    rate_card_version_lock(version=version)
    version.refresh_from_db()

    with pytest.raises(ValidationError, match="has rated usage and cannot change"):
        price_update(price=price, rates={"rate_in": {"amount": "9", "per": PER_1M}})
    with pytest.raises(ValidationError, match="has rated usage and cannot change"):
        gpt_4o(version, name="gpt-4o again")

    assert list(Price.objects.values_list("name", flat=True)) == ["gpt-4o"]
    assert Price.objects.get().rates == GPT_4O_RATES


def test_a_new_version_starts_as_a_copy_and_is_edited_on_its_own(card, version):
    gpt_4o(version)
    later = datetime(2026, 12, 1, tzinfo=UTC)

    v2 = rate_card_version_schedule(rate_card=card, effective_from=later, note="December")
    price_update(
        price=v2.prices.get(), rates={**GPT_4O_RATES, "rate_in": {"amount": "2", "per": PER_1M}}
    )

    assert (v2.number, v2.effective_from, v2.note) == (2, later, "December")
    assert version.prices.get().rates["rate_in"] == {"amount": "2.50", "per": PER_1M}
    assert v2.prices.get().rates["rate_in"] == {"amount": "2", "per": PER_1M}


def test_a_new_version_must_start_after_the_latest(card, version):
    with pytest.raises(ValidationError, match="Must be after Standard v1 starts"):
        rate_card_version_schedule(rate_card=card, effective_from=version.effective_from)

    assert RateCardVersion.objects.count() == 1


def test_after_rating_a_new_version_cannot_start_in_the_past(card, version):
    rate_card_version_lock(version=version)
    yesterday = datetime.now(UTC) - timedelta(days=1)

    with pytest.raises(ValidationError, match="cannot start in the past"):
        rate_card_version_schedule(rate_card=card, effective_from=yesterday)

    assert RateCardVersion.objects.count() == 1


def test_a_clone_has_the_latest_prices(card, version):
    gpt_4o(version)

    clone = rate_card_clone(rate_card=card, name="Enterprise")

    assert clone.currency == "USD"
    assert list(clone.versions.get().prices.values_list("name", "rates")) == [
        ("gpt-4o", GPT_4O_RATES)
    ]
    assert RateCard.objects.count() == 2


def test_the_catalog_loads_once(db, capsys):
    call_command("load_price_catalog")
    count = CatalogPrice.objects.count()

    assert catalog_load() == (0, count)
    assert CatalogPrice.objects.count() == count > 20
    assert f"Price catalog loaded: {count} new, 0 refreshed." in capsys.readouterr().out


def test_a_rate_card_from_the_catalog_with_a_markup(db):
    catalog_load()

    card = rate_card_create_from_catalog(
        name="List + 20%", markup=Decimal("0.20"), on=datetime(2026, 11, 1).date()
    )

    prices = {price.name: price for price in card.versions.get().prices.all()}
    gpt = prices["gpt-4o"]
    assert gpt.rates == {
        "rate_in": {"amount": "3", "per": PER_1M},
        "rate_out": {"amount": "12", "per": PER_1M},
        "rate_cached": {"amount": "1.5", "per": PER_1M},
    }
    assert cost(gpt, SAMPLE) == Decimal("0.012")  # 0.003 + 0.006 + 0.003
    assert prices["o3"].rates["rate_in"] == {"amount": "2.4", "per": PER_1M}  # the cut price
    # amounts read as people write them: "90", never "9E+1"
    amounts = [rate["amount"] for p in prices.values() for rate in p.rates.values()]
    assert all(re.fullmatch(r"\d+(\.\d+)?", amount) for amount in amounts), amounts
    assert prices["o3"].rates["rate_out"] == {"amount": "9.6", "per": PER_1M}


def test_a_catalog_long_context_price_switches_over_the_threshold(db):
    catalog_load()
    card = rate_card_create_from_catalog(
        name="Anthropic at list", markup=Decimal(0), providers=["anthropic"]
    )
    sonnet = card.versions.get().prices.get(name="claude-sonnet-4-5")
    short = {"input_tokens": 1000, "output_tokens": 1000}
    long = {"input_tokens": 150_000, "cached_input_tokens": 60_000, "output_tokens": 1000}

    assert cost(sonnet, short) == Decimal("0.018")  # 1000 * 3/1M + 1000 * 15/1M
    # over 200K input: 150,000 * 6/1M + 60,000 cached * 0.30/1M + 1,000 * 22.50/1M
    assert cost(sonnet, long) == Decimal("0.9405")


def test_rate_cards_and_the_catalog_are_shown_in_the_admin(admin_client, version):
    gpt_4o(version)
    catalog_load()

    pages = [
        "/admin/contracts/ratecard/",
        f"/admin/contracts/ratecardversion/{version.pk}/change/",
        "/admin/contracts/catalogprice/?provider=openai",
    ]
    bodies = [admin_client.get(url).content.decode() for url in pages]

    assert ">Standard</a>" in bodies[0]
    assert STANDARD in bodies[1]
    assert "gpt-4o-mini" in bodies[2]


def test_the_catalog_command_makes_a_rate_card_with_a_markup(db, capsys):
    call_command(
        "load_price_catalog",
        "--rate-card",
        "OpenAI + 20%",
        "--markup",
        "0.20",
        "--provider",
        "openai",
    )

    card = RateCard.objects.get(name="OpenAI + 20%")
    gpt = card.versions.get().prices.get(name="gpt-4o")
    assert gpt.rates["rate_in"] == {"amount": "3", "per": PER_1M}
    # 12 OpenAI rows, o3 twice (before and after its price cut): 11 models.
    assert card.versions.get().prices.count() == 11
    assert "Rate card 'OpenAI + 20%' (USD): 11 prices." in capsys.readouterr().out


def test_the_catalog_command_refuses_a_bad_markup_and_creates_nothing(db):
    with pytest.raises(CommandError, match="--markup 'lots' is not a number"):
        call_command("load_price_catalog", "--rate-card", "X", "--markup", "lots")

    assert RateCard.objects.count() == 0


def test_a_rate_card_from_prices_in_two_currencies_is_refused(db):
    catalog_load()
    CatalogPrice.objects.filter(provider="google").update(currency="EUR")

    with pytest.raises(ValidationError, match="prices are in EUR, USD"):
        rate_card_create_from_catalog(name="Mixed", markup=Decimal(0))

    assert RateCard.objects.count() == 0
