"""Rate cards over the API: create (with prices of every kind, from a past instant), read,
list, clone (into another currency too), schedule versions with their prices changed, and
add, change and remove prices while a version has rated nothing. Refusals are 400s naming
where (`prices[2].rates.rate_out`) with nothing stored; operator keys only.

The clock is frozen at T0, 15 January 2025 09:30 UTC (the `clock` fixture).
"""

from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from common.models import AuditEntry
from contracts.models import Price, RateCard
from contracts.rate_cards import rate_card_version_lock
from contracts.services import customer_api_key_create

from .rate_card_api_support import (
    EMBEDDINGS,
    GPT_4O,
    GPT_4O_RATES,
    IMAGES,
    PER_1M,
    SEARCHES,
    answered,
    cost,
    rows,
)

CARDS = "/api/v1/rate-cards"
FIRST_OF_JANUARY = "2025-01-01T00:00:00Z"  # before T0: the card starts in the past
CREATED = "2025-01-15T09:30:00Z"  # T0
#: The price builder's sample call.
SAMPLE = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}


@pytest.fixture
def standard(api, clock) -> dict:
    """The Standard card in USD from 1 January, with gpt-4o and graduated embeddings."""
    body = {
        "name": "Standard",
        "currency": "USD",
        "effective_from": FIRST_OF_JANUARY,
        "prices": [GPT_4O, EMBEDDINGS],
    }
    response = api.post(CARDS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def version_1(card: str = "Standard"):
    return RateCard.objects.get(name=card).versions.get(number=1)


# --- creating ------------------------------------------------------------------------------


def test_a_card_is_created_from_a_past_instant_with_prices_of_every_kind(api, clock):
    body = {
        "name": "Standard",
        "currency": "USD",
        "description": "List prices",
        "effective_from": FIRST_OF_JANUARY,
        "prices": [GPT_4O, EMBEDDINGS, IMAGES, SEARCHES],
    }

    response = api.post(CARDS, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json() == {
        "name": "Standard",
        "currency": "USD",
        "description": "List prices",
        "created_at": CREATED,
        "versions": [
            {
                "number": 1,
                "effective_from": FIRST_OF_JANUARY,
                "note": "",
                "locked_at": None,
                "correction": None,
                "prices": [
                    answered(GPT_4O, 0),
                    answered(EMBEDDINGS, 1),
                    answered(IMAGES, 2),
                    answered(SEARCHES, 3),
                ],
            }
        ],
    }
    gpt = version_1().prices.get(name="gpt-4o")
    # 1,000 input at 2.50/1M + 500 output at 10.00/1M + 2,000 cached at 1.25/1M
    assert cost(gpt, SAMPLE) == Decimal("0.01")
    package = version_1().prices.get(name="web search")
    assert (package.package_size, package.package_price) == (Decimal(1000), Decimal(10))


def test_a_card_without_prices_has_an_empty_first_version_from_now(api, clock):
    response = api.post(CARDS, {"name": "Empty", "currency": "EUR"}, format="json")

    assert response.status_code == 201
    assert response.json()["versions"] == [
        {
            "number": 1,
            "effective_from": "2025-01-15T09:30:00Z",
            "note": "",
            "locked_at": None,
            "correction": None,
            "prices": [],
        }
    ]


def test_a_refused_card_names_every_mistake_where_it_is_and_stores_nothing(api, standard):
    before = rows()
    body = {
        "name": "Standard",
        "currency": "usd",
        "effective_from": "2025-02-01T00:00:00Z",
        "prices": [
            # a typo on the formula's second line
            {**GPT_4O, "formula": "input_tokens * rate_in +\n  output_tokens * rate_ou"},
            {"model_pattern": "o3", "rates": {"rate_in": {"amount": "2", "per": 7}},
             "formula": "input_tokens * rate_in"},
            {**EMBEDDINGS, "tiers": [{"up_to": "100", "unit_price": "0.02"}]},
            {**SEARCHES, "package_size": None},
            {**GPT_4O, "name": "gpt-4o"},
        ],
    }  # fmt: skip

    response = api.post(CARDS, body, format="json", HTTP_IDEMPOTENCY_KEY="card-1")

    assert response.status_code == 400
    assert response.json() == {
        "name": ["Rate card with this Name already exists."],
        "currency": ["'usd' is not an ISO 4217 currency code."],
        "prices[0].formula": [
            "unknown name 'rate_ou' at line 2, column 19 (did you mean 'rate_out'?)"
        ],
        "prices[1].rates.rate_in": ["'rate_in': the unit must be per 1, 1000 or 1000000 units."],
        "prices[2].tiers": ["tier 1: the last tier must have no upper bound (up_to None), got 100"],
        "prices[3].package_size": ["A package price needs a size above 0 and a price."],
        "prices[4].name": ["prices[0] is named 'gpt-4o' too: names are unique within a version."],
    }
    assert rows() == before


def test_the_shape_is_checked_first_naming_where(api, clock):
    body = {
        "name": "Standard",
        "currency": "USD",
        "prices": [
            {**GPT_4O, "rates": {**GPT_4O_RATES, "rate_out": {"amount": 10.0, "per": PER_1M}}},
            {**EMBEDDINGS, "tiers": [{"up_to": None, "unit_price": 0.01}], "size": 1},
        ],
    }

    response = api.post(CARDS, body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "prices[0].rates.rate_out": [
            'Write the amount as a string, e.g. "2.50": money is never a JSON number.'
        ],
        "prices[1].size": ["Unknown field."],
    }
    assert RateCard.objects.count() == 0
    unknown = api.post(CARDS, {"name": "S", "currency": "USD", "colour": "blue"}, format="json")
    assert unknown.json() == {"colour": ["Unknown field."]}


def test_a_nested_shape_error_names_the_tier(api, clock):
    body = {
        "name": "Standard",
        "currency": "USD",
        "prices": [{**EMBEDDINGS, "tiers": [{"up_to": "100", "unit_price": 0.02}]}],
    }

    response = api.post(CARDS, body, format="json")

    assert response.json() == {
        "prices[0].tiers[0].unit_price": [
            'Write the amount as a string, e.g. "500.00": money is never a JSON number.'
        ]
    }


def test_a_create_sent_twice_with_one_key_makes_one_card(api, clock):
    body = {"name": "Standard", "currency": "USD", "prices": [GPT_4O]}

    first = api.post(CARDS, body, format="json", HTTP_IDEMPOTENCY_KEY="card-1")
    again = api.post(CARDS, body, format="json", HTTP_IDEMPOTENCY_KEY="card-1")
    other = api.post(CARDS, {**body, "name": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="card-1")

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert (RateCard.objects.count(), Price.objects.count()) == (1, 1)


def test_creating_records_the_card_and_each_price_with_the_key(api, standard):
    entries = list(AuditEntry.objects.order_by("pk"))

    assert [(e.action, e.object_repr, e.before) for e in entries] == [
        ("rate_card.create", "Standard (USD)", None),
        ("price.create", "gpt-4o", None),
        ("price.create", "embeddings", None),
    ]
    assert entries[0].actor.startswith("key:test operator (")
    assert entries[1].after["rates"] == (
        '{"rate_cached": {"amount": "1.25", "per": 1000000}, '
        '"rate_in": {"amount": "2.50", "per": 1000000}, '
        '"rate_out": {"amount": "10.00", "per": 1000000}}'
    )


# --- reading -------------------------------------------------------------------------------


def test_a_card_is_read_with_its_versions_and_prices(api, standard):
    response = api.get(f"{CARDS}/Standard")

    assert response.status_code == 200
    assert response.json() == standard
    assert [p["name"] for p in standard["versions"][0]["prices"]] == ["gpt-4o", "embeddings"]


def test_an_unknown_card_is_404(api, db):
    response = api.get(f"{CARDS}/Standrad")

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No rate card named 'Standrad'."},
    )


def test_cards_are_listed_by_name_a_page_at_a_time(api, standard):
    api.post(CARDS, {"name": "Europe", "currency": "EUR"}, format="json")
    api.post(CARDS, {"name": "Asia", "currency": "USD"}, format="json")

    first = api.get(CARDS, {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    in_usd = api.get(CARDS, {"currency": "USD"}).json()

    assert [card["name"] for card in first["results"]] == ["Asia", "Europe"]
    assert [card["name"] for card in second["results"]] == ["Standard"]
    assert second["results"][0]["versions"] == [
        {
            "number": 1,
            "effective_from": FIRST_OF_JANUARY,
            "note": "",
            "locked_at": None,
            "correction": None,
            "price_count": 2,
        }
    ]
    assert [card["name"] for card in in_usd["results"]] == ["Asia", "Standard"]


# --- cloning -------------------------------------------------------------------------------


def test_a_clone_copies_the_latest_prices_with_the_changes_given(api, standard):
    body = {
        "name": "Enterprise",
        "effective_from": "2025-02-01T00:00:00Z",
        "prices": [{"name": "gpt-4o", "rates": {"rate_out": "8.00"}}],
        "remove": ["embeddings"],
    }

    response = api.post(f"{CARDS}/Standard/clone", body, format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["name"], answer["currency"], answer["description"]) == (
        "Enterprise",
        "USD",
        "Cloned from Standard.",
    )
    rates = {**GPT_4O_RATES, "rate_out": {"amount": "8.00", "per": PER_1M}}
    assert answer["versions"][0]["prices"] == [answered(GPT_4O, 0, rates=rates)]
    assert version_1().prices.get(name="gpt-4o").rates == GPT_4O_RATES  # the original stays


def test_a_clone_into_another_currency_takes_every_price_s_money_anew(api, standard):
    body = {
        "name": "Europe",
        "currency": "EUR",
        "prices": [
            {"name": "gpt-4o", "rates": {"rate_in": "2.30", "rate_out": "9.20",
                                         "rate_cached": "1.15"}},
            {"name": "embeddings", "tiers": [{"up_to": "100", "unit_price": "0.018"},
                                             {"up_to": None, "unit_price": "0.009"}]},
        ],
    }  # fmt: skip

    response = api.post(f"{CARDS}/Standard/clone", body, format="json")

    assert response.status_code == 201, response.content
    europe = version_1("Europe")
    gpt = europe.prices.get(name="gpt-4o")
    assert gpt.rates == {
        "rate_in": {"amount": "2.30", "per": PER_1M},
        "rate_out": {"amount": "9.20", "per": PER_1M},
        "rate_cached": {"amount": "1.15", "per": PER_1M},
    }
    # 1,000 * 2.30/1M + 500 * 9.20/1M + 2,000 * 1.15/1M = 0.0023 + 0.0046 + 0.0023
    assert cost(gpt, SAMPLE) == Decimal("0.0092")
    assert europe.prices.get(name="embeddings").tiers == [
        {"up_to": "100", "unit_price": "0.018"},
        {"up_to": None, "unit_price": "0.009"},
    ]
    assert response.json()["currency"] == "EUR"
    clone = AuditEntry.objects.get(action="rate_card.clone")
    assert (clone.after["currency"], clone.after["cloned_from"], clone.after["copied"]) == (
        "EUR",
        "Standard",
        "Standard v1",
    )
    changed = AuditEntry.objects.filter(action="price.change", object_id=str(gpt.pk)).get()
    assert '"rate_in": {"amount": "2.50"' in changed.before["rates"]
    assert '"rate_in": {"amount": "2.30"' in changed.after["rates"]


def test_a_clone_into_another_currency_without_its_money_is_refused_by_name(api, standard):
    before = rows()
    body = {
        "name": "Europe",
        "currency": "EUR",
        "prices": [{"name": "gpt-4o", "rates": {"rate_in": "2.30", "rate_out": "9.20"}}],
    }

    response = api.post(f"{CARDS}/Standard/clone", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "prices": [
            "Give the prices in EUR of embeddings (tiers): money does not convert from USD. "
            "Or remove them."
        ],
        "prices[0].rates.rate_cached": [
            "Give rate_cached in EUR: money does not convert from USD."
        ],
    }
    assert rows() == before


def test_every_price_left_out_of_a_clone_into_another_currency_is_named(api, clock):
    """The example of docs/guide/pricing.md, "Cloning": three prices, two left out."""
    prices = [GPT_4O, EMBEDDINGS, SEARCHES]
    api.post(CARDS, {"name": "Standard", "currency": "USD", "prices": prices}, format="json")
    body = {
        "name": "Europe",
        "currency": "EUR",
        "prices": [{"name": "gpt-4o", "rates": {"rate_in": "2.30", "rate_out": "9.20"}}],
    }

    response = api.post(f"{CARDS}/Standard/clone", body, format="json")

    assert response.json() == {
        "prices": [
            "Give the prices in EUR of embeddings (tiers); web search (package_price): money "
            "does not convert from USD. Or remove them."
        ],
        "prices[0].rates.rate_cached": [
            "Give rate_cached in EUR: money does not convert from USD."
        ],
    }
    assert RateCard.objects.count() == 1


def test_a_clone_into_another_currency_may_drop_what_it_does_not_price(api, standard):
    body = {"name": "Europe", "currency": "EUR", "remove": ["gpt-4o", "embeddings"]}

    response = api.post(f"{CARDS}/Standard/clone", body, format="json")

    assert response.status_code == 201
    assert response.json()["versions"][0]["prices"] == []


# --- versions ------------------------------------------------------------------------------


def test_a_version_is_scheduled_with_prices_changed_added_and_removed(api, standard):
    body = {
        "effective_from": "2025-02-01T00:00:00Z",
        "note": "February prices",
        "prices": [
            {"name": "gpt-4o", "rates": {"rate_out": "8.00", "rate_cached": None},
             "formula": "input_tokens * rate_in + output_tokens * rate_out"},
            {"name": "gpt-4o-mini", "model_pattern": "gpt-4o-mini",
             "rates": {"rate_in": {"amount": "0.15", "per": PER_1M},
                       "rate_out": {"amount": "0.60", "per": PER_1M}},
             "formula": "input_tokens * rate_in + output_tokens * rate_out"},
        ],
        "remove": ["embeddings"],
    }  # fmt: skip

    response = api.post(f"{CARDS}/Standard/versions", body, format="json")

    assert response.status_code == 201, response.content
    formula = "input_tokens * rate_in + output_tokens * rate_out"
    assert response.json() == {
        "number": 2,
        "effective_from": "2025-02-01T00:00:00Z",
        "note": "February prices",
        "locked_at": None,
        "correction": None,
        "prices": [
            answered(
                GPT_4O,
                0,
                rates={
                    "rate_in": {"amount": "2.50", "per": PER_1M},
                    "rate_out": {"amount": "8.00", "per": PER_1M},
                },
                formula=formula,
            ),
            answered(
                {"name": "gpt-4o-mini", "model_pattern": "gpt-4o-mini", "formula": formula,
                 "rates": {"rate_in": {"amount": "0.15", "per": PER_1M},
                           "rate_out": {"amount": "0.60", "per": PER_1M}}},
                2,
            ),
        ],
    }  # fmt: skip
    assert list(version_1().prices.values_list("name", "rates")) == [
        ("gpt-4o", GPT_4O_RATES),
        ("embeddings", EMBEDDINGS["rates"]),
    ]
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "object_repr"))[3:]
    assert actions == [
        ("rate_card_version.create", "Standard v2"),
        ("price.change", "gpt-4o"),
        ("price.create", "gpt-4o-mini"),
        ("price.delete", "embeddings"),
    ]


def test_a_version_after_rated_usage_cannot_start_in_the_past_and_stores_nothing(api, standard):
    rate_card_version_lock(version=version_1())
    before = rows()
    body = {
        "effective_from": "2025-01-10T00:00:00Z",
        "prices": [{"name": "gpt-5", "rates": {"rate_in": "1.25"}}],
        "remove": ["embedings"],
    }

    response = api.post(f"{CARDS}/Standard/versions", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "effective_from": ["Standard v1 has rated usage: a new version cannot start in the past."],
        "prices[0].rates.rate_in": [
            "'rate_in': give an amount and a unit (per 1, 1000 or 1000000)."
        ],
        "prices[0].model_pattern": ["This field cannot be blank."],
        "prices[0].formula": ["This field cannot be blank."],
        "remove[0]": [
            "Standard v1 has no price named 'embedings' (its prices: gpt-4o, embeddings)."
        ],
    }
    assert rows() == before


# --- prices --------------------------------------------------------------------------------


def test_a_price_is_added_changed_and_removed_while_its_version_rated_nothing(api, standard):
    prices = f"{CARDS}/Standard/versions/1/prices"

    added = api.post(prices, SEARCHES, format="json")
    changed = api.patch(
        f"{prices}/gpt-4o", {"rates": {"rate_out": "8.00"}, "feature": "chat"}, format="json"
    )
    removed = api.delete(f"{prices}/embeddings")

    assert (added.status_code, changed.status_code, removed.status_code) == (201, 200, 204)
    assert added.json() == answered(SEARCHES, 2)
    rates = {**GPT_4O_RATES, "rate_out": {"amount": "8.00", "per": PER_1M}}
    assert changed.json() == answered(GPT_4O, 0, rates=rates, feature="chat")
    assert list(version_1().prices.values_list("name", flat=True)) == ["gpt-4o", "web search"]
    gpt = version_1().prices.get(name="gpt-4o")
    # 500 output tokens at 8.00/1M
    assert cost(gpt, {"output_tokens": 500}) == Decimal("0.004")
    change, delete = AuditEntry.objects.filter(action__in=["price.change", "price.delete"])
    assert (change.before["feature"], change.after["feature"]) == ("", "chat")
    assert (delete.object_repr, delete.before["name"], delete.after) == (
        "embeddings",
        "embeddings",
        None,
    )


def test_a_price_named_with_a_slash_is_reached_by_its_name(api, standard):
    prices = f"{CARDS}/Standard/versions/1/prices"
    api.post(prices, {**GPT_4O, "name": "openai/gpt-4o"}, format="json")

    response = api.patch(f"{prices}/openai/gpt-4o", {"feature": "chat"}, format="json")

    assert (response.status_code, response.json()["name"]) == (200, "openai/gpt-4o")


def test_a_formula_error_gives_its_line_and_column(api, standard):
    before = rows()
    formula = "input_tokens * rate_in\n+ output_tokens * rate_outt"

    response = api.patch(
        f"{CARDS}/Standard/versions/1/prices/gpt-4o", {"formula": formula}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "formula": ["unknown name 'rate_outt' at line 2, column 19 (did you mean 'rate_out'?)"]
    }
    assert rows() == before


def test_a_price_change_names_the_rate_it_refuses(api, standard):
    before = rows()

    response = api.patch(
        f"{CARDS}/Standard/versions/1/prices/gpt-4o",
        {"rates": {"rate_out": "-1", "rate_audio": "0.10", "rate_cached": 1.25}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "rates.rate_cached": [
            'Write the amount as a string, e.g. "2.50": money is never a JSON number.'
        ]
    }
    response = api.patch(
        f"{CARDS}/Standard/versions/1/prices/gpt-4o",
        {"rates": {"rate_out": "-1"}},
        format="json",
    )
    assert response.json() == {
        "rates.rate_out": ["'rate_out': the amount must be a number of at least 0."]
    }
    assert rows() == before


def test_a_version_that_rated_usage_refuses_every_price_change_with_409(api, standard):
    rate_card_version_lock(version=version_1())
    before = rows()
    prices = f"{CARDS}/Standard/versions/1/prices"
    locked = "Standard v1 has rated usage and cannot change: schedule a new version instead."

    answers = [
        api.post(prices, SEARCHES, format="json"),
        api.patch(f"{prices}/gpt-4o", {"feature": "chat"}, format="json"),
        api.delete(f"{prices}/gpt-4o"),
    ]

    assert [(a.status_code, a.json()) for a in answers] == [(409, {"detail": locked})] * 3
    assert rows() == before


def test_unknown_versions_and_prices_are_404(api, standard):
    prices = f"{CARDS}/Standard/versions"

    assert api.post(f"{prices}/7/prices", SEARCHES, format="json").json() == {
        "detail": "Standard has no version 7."
    }
    assert api.delete(f"{prices}/1/prices/gpt-5").json() == {
        "detail": "Standard v1 has no price named 'gpt-5'."
    }


def test_a_price_added_twice_with_one_key_is_added_once(api, standard):
    prices = f"{CARDS}/Standard/versions/1/prices"

    first = api.post(prices, SEARCHES, format="json", HTTP_IDEMPOTENCY_KEY="search-1")
    again = api.post(prices, SEARCHES, format="json", HTTP_IDEMPOTENCY_KEY="search-1")

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (
        201,
        201,
        "true",
    )
    assert version_1().prices.filter(name="web search").count() == 1


# --- who may call --------------------------------------------------------------------------


def test_a_customer_s_key_is_refused_everywhere(standard, acme):
    _, key = customer_api_key_create(customer=acme, name="acme reader", created_by="ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    before = rows()
    prices = f"{CARDS}/Standard/versions/1/prices"
    calls = [
        client.get(CARDS),
        client.get(f"{CARDS}/Standard"),
        client.get("/api/v1/catalog"),
        client.post(CARDS, {"name": "Mine", "currency": "USD"}, format="json"),
        client.post(f"{CARDS}/Standard/clone", {"name": "Mine"}, format="json"),
        client.post(
            f"{CARDS}/Standard/versions", {"effective_from": "2026-01-01T00:00:00Z"}, format="json"
        ),
        client.post(prices, SEARCHES, format="json"),
        client.patch(f"{prices}/gpt-4o", {"feature": "x"}, format="json"),
        client.delete(f"{prices}/gpt-4o"),
        client.post(f"{CARDS}/from-catalog", {"name": "Mine", "markup": "0"}, format="json"),
    ]

    assert {call.status_code for call in calls} == {403}
    assert calls[0].json() == {"detail": "A customer's API key cannot call this endpoint."}
    assert rows() == before


@pytest.mark.parametrize(
    ("path", "method", "status", "component"),
    [
        ("/api/v1/rate-cards", "get", "200", "PaginatedRateCardSummaryList"),
        ("/api/v1/rate-cards", "post", "201", "RateCard"),
        ("/api/v1/rate-cards/{name}", "get", "200", "RateCard"),
        ("/api/v1/rate-cards/{name}/clone", "post", "201", "RateCard"),
        ("/api/v1/rate-cards/{name}/versions", "post", "201", "RateCardVersion"),
        ("/api/v1/rate-cards/{name}/versions/{version}/prices", "post", "201", "Price"),
        ("/api/v1/rate-cards/{name}/versions/{version}/prices/{price}", "patch", "200", "Price"),
        ("/api/v1/rate-cards/from-catalog", "post", "201", "RateCard"),
    ],
)
def test_the_schema_names_each_answer(path, method, status, component):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    content = schema["paths"][path][method]["responses"][status]["content"]
    assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{component}"}
    if method == "post":
        header = [p for p in schema["paths"][path][method]["parameters"] if p["in"] == "header"]
        assert [p["name"] for p in header] == ["Idempotency-Key"]


# --- the name on invoices -----------------------------------------------------------------


def test_a_prices_display_name_is_set_changed_and_follows_it_into_versions_and_clones(
    api, standard
):
    prices = f"{CARDS}/Standard/versions/1/prices"

    added = api.post(prices, {**SEARCHES, "display_name": "Web searches"}, format="json")
    changed = api.patch(f"{prices}/gpt-4o", {"display_name": "GPT-4o"}, format="json")
    version = api.post(
        f"{CARDS}/Standard/versions",
        {"effective_from": "2025-02-01T00:00:00Z", "prices": [{"name": "gpt-4o", "rates":
         {"rate_out": "8.00"}}, {"name": "web search", "display_name": ""}]},
        format="json",
    )  # fmt: skip
    clone = api.post(f"{CARDS}/Standard/clone", {"name": "Copy"}, format="json")

    assert (added.status_code, changed.status_code) == (201, 200)
    assert added.json() == answered(SEARCHES, 2, display_name="Web searches")
    assert changed.json()["display_name"] == "GPT-4o"
    assert version.status_code == 201, version.content
    # copied with the other fields; "" sets it back to the price's name
    assert {p["name"]: p["display_name"] for p in version.json()["prices"]} == {
        "gpt-4o": "GPT-4o", "embeddings": "", "web search": "",
    }  # fmt: skip
    assert clone.status_code == 201, clone.content
    assert {p["name"]: p["display_name"] for p in clone.json()["versions"][0]["prices"]} == {
        "gpt-4o": "GPT-4o", "embeddings": "", "web search": "",
    }  # fmt: skip
    assert Price.objects.get(version=version_1(), name="gpt-4o").shown_name == "GPT-4o"
    assert Price.objects.get(version=version_1(), name="embeddings").shown_name == "embeddings"


@pytest.mark.parametrize("display_name", [" GPT-4o", "GPT-4o\n", "GPT\t4o"])
def test_a_display_name_off_one_line_is_refused_and_nothing_is_stored(api, standard, display_name):
    before = rows()
    message = (
        "Write the display name on one line, without spaces at either end "
        "(empty: the price's name)."
    )

    changed = api.patch(
        f"{CARDS}/Standard/versions/1/prices/gpt-4o", {"display_name": display_name}, format="json"
    )
    created = api.post(
        CARDS,
        {"name": "Other", "currency": "USD", "prices": [{**GPT_4O, "display_name": display_name}]},
        format="json",
    )

    assert (changed.status_code, changed.json()) == (400, {"display_name": [message]})
    assert (created.status_code, created.json()) == (400, {"prices[0].display_name": [message]})
    assert rows() == before
