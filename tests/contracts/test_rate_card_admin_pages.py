"""The admin's pages about a whole rate card: a card that starts in the past, several models
priced on one page (from the catalog with a markup, or by hand), and a clone into another
currency with the prices to give. Each saves through a service and returns to the card's
page; a refusal stores nothing.

The clock is frozen at T0, 15 January 2025 09:30 UTC.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.models import AuditEntry
from contracts.catalog.services import catalog_load
from contracts.models import Price, RateCard
from contracts.rate_cards import price_create, rate_card_create, rate_card_version_lock

from .rate_card_api_support import EMBEDDINGS, PER_1M, SEARCHES, cost, rows
from .support import T0
from .test_price_builder_admin import (
    ADD_URL,
    GPT_4O_RATES,
    PRICING_PERMISSIONS,
    STANDARD,
    builder_data,
    messages_of,
    staff,
)

MODELS_URL = "/admin/contracts/ratecard/models/"
FIRST_OF_JANUARY = datetime(2025, 1, 1, tzinfo=UTC)
SAMPLE = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}


@pytest.fixture
def standard(db):
    """Standard, USD, from 1 January 2025: gpt-4o per call, graduated embeddings and web
    searches in packages."""
    card = rate_card_create(name="Standard", currency="USD", effective_from=FIRST_OF_JANUARY)
    version = card.versions.get()
    price_create(
        version=version, name="gpt-4o", model_pattern="gpt-4o", rates=GPT_4O_RATES,
        formula=STANDARD,
    )  # fmt: skip
    price_create(version=version, **EMBEDDINGS)
    price_create(version=version, **SEARCHES)
    return card


def card_page(card: RateCard) -> str:
    return f"/admin/contracts/ratecard/{card.pk}/change/"


def rows_data(*typed: dict, extra: int = 3) -> dict:
    """The by-hand rows as the page posts them: those given, then empty ones."""
    data = {
        "rows-TOTAL_FORMS": str(len(typed) + extra),
        "rows-INITIAL_FORMS": "0",
        "rows-MIN_NUM_FORMS": "0",
        "rows-MAX_NUM_FORMS": "50",
    }
    blank = {"model_pattern": "", "name": "", "rate_in": "", "rate_out": "", "rate_cached": "",
             "rate_cache_write": ""}  # fmt: skip
    for index, row in enumerate([*typed, *[{}] * extra]):
        data.update({f"rows-{index}-{key}": value for key, value in {**blank, **row}.items()})
    return data


def models_data(*typed: dict, models=(), markup="", **card) -> dict:
    fields = {"markup": markup, "models": list(models), **rows_data(*typed)}
    if card is not None:
        fields.update(card)
    return fields


# --- a card that starts in the past ------------------------------------------------------------


def test_a_new_card_may_start_in_the_past_on_the_builder(clock, admin_client):
    response = admin_client.post(ADD_URL, builder_data(effective_from="2025-01-01T00:00"))

    card = RateCard.objects.get()
    assert response["Location"] == card_page(card)
    assert list(card.versions.values_list("number", "effective_from")) == [(1, FIRST_OF_JANUARY)]
    assert messages_of(response) == [
        "Rate card “List prices” created: version 1 prices gpt-4o from 2025-01-01 00:00 UTC."
    ]


def test_a_clone_may_start_in_the_past(clock, admin_client, standard):
    url = f"/admin/contracts/ratecard/{standard.pk}/clone/"

    response = admin_client.post(url, {"name": "Enterprise", "effective_from": "2025-01-01T00:00"})

    clone = RateCard.objects.get(name="Enterprise")
    assert response["Location"] == card_page(clone)
    assert clone.versions.get().effective_from == FIRST_OF_JANUARY


# --- several models at once --------------------------------------------------------------------


def test_several_models_are_priced_on_one_page_from_the_catalog_and_by_hand(
    clock, admin_client, admin_user
):
    catalog_load()
    data = models_data(
        {"model_pattern": "acme-llm-*", "name": "acme", "rate_in": "1.00", "rate_out": "2.00"},
        models=["gpt-4o", "gpt-4o-mini"],
        markup="20",
        rate_card_name="List + 20%",
        currency="USD",
        effective_from="2025-01-01T00:00",
    )

    response = admin_client.post(MODELS_URL, data)

    card = RateCard.objects.get()
    assert response["Location"] == card_page(card)
    version = card.versions.get()
    assert version.effective_from == FIRST_OF_JANUARY
    prices = {price.name: price for price in version.prices.all()}
    assert list(prices) == ["gpt-4o", "gpt-4o-mini", "acme"]
    # gpt-4o at 2.50 / 10.00 / 1.25 + 20 %: 3 / 12 / 1.5
    assert prices["gpt-4o"].rates == {
        "rate_in": {"amount": "3", "per": PER_1M},
        "rate_out": {"amount": "12", "per": PER_1M},
        "rate_cached": {"amount": "1.5", "per": PER_1M},
    }
    # the sample call: 1,000 * 3/1M + 500 * 12/1M + 2,000 * 1.5/1M = 0.003 + 0.006 + 0.003
    assert cost(prices["gpt-4o"], SAMPLE) == Decimal("0.012")
    # gpt-4o-mini at 0.15 / 0.60 / 0.075 + 20 %: 0.18 / 0.72 / 0.09
    assert [r["amount"] for r in prices["gpt-4o-mini"].rates.values()] == ["0.18", "0.72", "0.09"]
    acme = prices["acme"]
    assert (acme.model_pattern, acme.formula) == (
        "acme-llm-*",
        "input_tokens * rate_in + output_tokens * rate_out",
    )
    assert acme.rates == {
        "rate_in": {"amount": "1.00", "per": PER_1M},
        "rate_out": {"amount": "2.00", "per": PER_1M},
    }
    assert messages_of(response) == ["3 prices in List + 20% v1: gpt-4o, gpt-4o-mini, acme."]
    actor = f"user:{admin_user.username}"
    assert list(AuditEntry.objects.values_list("actor", "action", "object_repr")) == [
        (actor, "rate_card.create", "List + 20% (USD)"),
        (actor, "price.create", "gpt-4o"),
        (actor, "price.create", "gpt-4o-mini"),
        (actor, "price.create", "acme"),
    ]


def test_several_models_are_added_to_a_version_that_rated_nothing(clock, admin_client, standard):
    catalog_load()
    version = standard.versions.get()
    url = f"/admin/contracts/ratecard/version/{version.pk}/models/"

    page = admin_client.get(url)
    response = admin_client.post(url, models_data(models=["claude-3-5-haiku"], markup="0"))

    assert page.status_code == 200
    assert 'value="claude-3-5-haiku"' in page.content.decode()
    assert "claude-3-5-haiku: 0.80 in, 4.00 out, 0.08 cached per 1M USD" in page.content.decode()
    assert response["Location"] == card_page(standard)
    haiku = version.prices.get(name="claude-3-5-haiku")
    assert (haiku.position, haiku.model_pattern) == (3, "claude-3-5-haiku*")
    assert haiku.rates["rate_cache_write_1h"] == {"amount": "1.6", "per": PER_1M}  # 1.60 * 1


def test_a_name_the_version_has_is_refused_on_its_row_and_nothing_is_stored(admin_client, standard):
    catalog_load()
    version = standard.versions.get()
    before = rows()
    typed = {"model_pattern": "gpt-4o", "rate_in": "9"}

    response = admin_client.post(
        f"/admin/contracts/ratecard/version/{version.pk}/models/",
        models_data(typed, models=["gpt-4o-mini"], markup="0"),
    )

    assert response.status_code == 200
    assert response.context["rows"].forms[0].errors == {
        "name": ["Standard v1 already has a price named 'gpt-4o'."]
    }
    assert rows() == before


def test_catalog_prices_in_another_currency_are_refused(clock, admin_client):
    catalog_load()
    before = rows()
    data = models_data(models=["gpt-4o"], rate_card_name="Europe", currency="EUR")

    response = admin_client.post(MODELS_URL, data)

    assert response.context["catalog_form"].errors == {
        "models": [
            "The catalog's prices are in USD and the card in EUR: money does not convert; "
            "type the prices by hand below."
        ]
    }
    assert rows() == before


def test_what_a_row_lacks_is_said_on_the_row(clock, admin_client):
    before = rows()
    data = models_data(
        {"model_pattern": "", "rate_in": "1"},
        {"model_pattern": "acme-llm"},
        {"model_pattern": "x", "rate_out": "1,5"},
        rate_card_name="Hand",
        currency="USD",
    )

    response = admin_client.post(MODELS_URL, data)

    assert [form.errors for form in response.context["rows"].forms[:3]] == [
        {"model_pattern": ["Which model does this row price?"]},
        {"rate_in": ["Enter at least one price of acme-llm."]},
        {"rate_out": ["'1,5' is not an amount: write it like 2.50 (digits and a point)."]},
    ]
    assert "Nothing was saved" in response.content.decode()
    assert rows() == before


def test_an_empty_page_asks_for_a_model(clock, admin_client):
    response = admin_client.post(MODELS_URL, models_data(rate_card_name="X", currency="USD"))

    assert response.context["catalog_form"].non_field_errors() == [
        "Pick models from the catalog or type a model's prices."
    ]
    assert RateCard.objects.count() == 0


def test_a_version_that_rated_usage_offers_a_new_version_instead(admin_client, standard):
    version = standard.versions.get()
    rate_card_version_lock(version=version)
    before = rows()

    response = admin_client.post(
        f"/admin/contracts/ratecard/version/{version.pk}/models/",
        models_data({"model_pattern": "o3", "rate_in": "2"}),
    )

    assert response.status_code == 409
    assert "has rated usage and cannot change" in response.content.decode()
    assert rows() == before


def test_the_pages_link_to_pricing_several_models(admin_client, standard):
    version = standard.versions.get()

    listing = admin_client.get("/admin/contracts/ratecard/").content.decode()
    page = admin_client.get(card_page(standard)).content.decode()

    assert f'href="{MODELS_URL}" class="addlink">Price several models</a>' in listing
    assert (
        f'href="/admin/contracts/ratecard/version/{version.pk}/models/">'
        "Price several models in version 1</a>"
    ) in page


def test_pricing_several_models_needs_the_pricing_permissions(client, django_user_model, standard):
    client.force_login(staff(django_user_model, "view_ratecard"))
    version = standard.versions.get()
    before = rows()

    answers = [
        client.get(MODELS_URL),
        client.post(MODELS_URL, models_data({"model_pattern": "o3", "rate_in": "2"})),
        client.get(f"/admin/contracts/ratecard/version/{version.pk}/models/"),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert rows() == before


def test_staff_with_pricing_permissions_price_several_models(client, django_user_model, clock):
    client.force_login(staff(django_user_model, *PRICING_PERMISSIONS))
    data = models_data({"model_pattern": "o3", "rate_in": "2"}, rate_card_name="Hand",
                       currency="USD")  # fmt: skip

    response = client.post(MODELS_URL, data)

    assert response.status_code == 302
    assert list(Price.objects.values_list("name", "formula")) == [("o3", "input_tokens * rate_in")]


# --- a clone into another currency -------------------------------------------------------------


def clone_url(card: RateCard) -> str:
    return f"/admin/contracts/ratecard/{card.pk}/clone/"


def test_the_clone_page_shows_each_price_s_money_as_it_is_now(admin_client, standard):
    form = admin_client.get(clone_url(standard)).context["form"]

    assert [(price.name, [f.label for f in fields]) for price, fields in form.price_groups()] == [
        ("gpt-4o", ["rate_in (per 1M)", "rate_out (per 1M)", "rate_cached (per 1M)"]),
        (
            "embeddings",
            [
                "tier 1 (up to 100), unit price",
                "tier 1, flat fee",
                "tier 2 (and above), unit price",
                "tier 2, flat fee",
            ],
        ),
        ("web search", ["package price"]),
    ]
    assert form["p0_rate_out"].help_text == "now 10.00 USD"
    assert form["p1_t1_fee"].help_text == "now 5.00 USD"


def test_a_clone_into_another_currency_gets_the_prices_given(clock, admin_client, standard):
    data = {
        "name": "Europe", "currency": "eur", "effective_from": "",
        "p0_rate_in": "2.30", "p0_rate_out": "9.20", "p0_rate_cached": "1.15",
        "p1_t0_unit": "0.018", "p1_t0_fee": "0", "p1_t1_unit": "0.009", "p1_t1_fee": "4.60",
        "p2_package_price": "9.20",
    }  # fmt: skip

    response = admin_client.post(clone_url(standard), data)

    europe = RateCard.objects.get(name="Europe")
    assert response["Location"] == card_page(europe)
    assert messages_of(response) == ["Rate card “Europe” created as a copy of “Standard” in EUR."]
    prices = {price.name: price for price in europe.versions.get().prices.all()}
    assert europe.currency == "EUR"
    # 1,000 * 2.30/1M + 500 * 9.20/1M + 2,000 * 1.15/1M = 0.0023 + 0.0046 + 0.0023
    assert cost(prices["gpt-4o"], SAMPLE) == Decimal("0.0092")
    assert prices["embeddings"].tiers == [
        {"up_to": "100", "unit_price": "0.018", "flat_fee": "0"},
        {"up_to": None, "unit_price": "0.009", "flat_fee": "4.60"},
    ]
    assert prices["web search"].package_price == Decimal("9.20")
    assert prices["embeddings"].rates == EMBEDDINGS["rates"]  # a quantity, not money


def test_a_clone_into_another_currency_without_every_price_is_refused_field_by_field(
    admin_client, standard
):
    before = rows()
    data = {"name": "Europe", "currency": "EUR", "p0_rate_in": "2.30", "p1_t0_unit": "0.018"}

    response = admin_client.post(clone_url(standard), data)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors == {
        "p0_rate_out": ["Give rate_out in EUR: money does not convert from USD."],
        "p0_rate_cached": ["Give rate_cached in EUR: money does not convert from USD."],
        "p1_t0_fee": ["Give the tiers in EUR: money does not convert from USD."],
        "p2_package_price": ["Give the package price in EUR: money does not convert from USD."],
    }
    assert rows() == before


def test_a_clone_in_its_own_currency_keeps_what_is_left_empty(clock, admin_client, standard):
    response = admin_client.post(clone_url(standard), {"name": "Enterprise", "p0_rate_out": "8"})

    clone = RateCard.objects.get(name="Enterprise")
    assert response["Location"] == card_page(clone)
    gpt = clone.versions.get().prices.get(name="gpt-4o")
    assert gpt.rates == {**GPT_4O_RATES, "rate_out": {"amount": "8", "per": PER_1M}}
    assert Price.objects.filter(version__rate_card=clone).count() == 3
    assert clone.versions.get().effective_from == T0
