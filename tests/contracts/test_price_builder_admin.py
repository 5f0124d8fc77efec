"""The price builder in the admin: pricing a model, its live preview, cloning, scheduling."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from contracts.catalog.services import catalog_load, rate_card_create_from_catalog
from contracts.models import CatalogPrice, Price, RateCard, RateCardVersion
from contracts.rate_cards import price_create, rate_card_create, rate_card_version_lock

from .support import T0

ADD_URL = "/admin/contracts/ratecard/add/"
PREVIEW_URL = "/admin/contracts/ratecard/preview/"
PER_1M = 1_000_000
STANDARD = "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
GPT_4O_RATES = {
    "rate_in": {"amount": "2.50", "per": PER_1M},
    "rate_out": {"amount": "10.00", "per": PER_1M},
    "rate_cached": {"amount": "1.25", "per": PER_1M},
}
GPT_4O_TERMS = [
    {"label": "input", "text": "input_tokens * rate_in", "amount": "0.0025"},
    {"label": "output", "text": "output_tokens * rate_out", "amount": "0.005"},
    {"label": "cached input", "text": "cached_input_tokens * rate_cached", "amount": "0.0025"},
]
EMPTY_ROW = {
    "other-0-metric": "",
    "other-0-amount": "",
    "other-0-per": "1000000",
    "other-0-rate": "",
}


def formset(rows: list[dict] | None = None) -> dict:
    """The other-metric rows as the page posts them (one empty row by default)."""
    rows = rows if rows is not None else [{}]
    data = {
        "other-TOTAL_FORMS": str(len(rows)),
        "other-INITIAL_FORMS": "0",
        "other-MIN_NUM_FORMS": "0",
        "other-MAX_NUM_FORMS": "20",
    }
    for index, row in enumerate(rows):
        values = {"metric": "", "amount": "", "per": "1000000", "rate": "", **row}
        data.update({f"other-{index}-{key}": value for key, value in values.items()})
    return data


def price_data(*, rows=None, **fields) -> dict:
    """What the builder posts for gpt-4o at 2.50 / 10.00 / 1.25 per 1M, unless told otherwise."""
    data = {
        "model_pattern": "gpt-4o",
        "name": "",
        "display_name": "",
        "feature": "",
        "property_filters": "",
        "rate_in": "2.50",
        "rate_out": "10.00",
        "rate_cached": "1.25",
        "rate_cache_write": "",
        "formula": "",
        "extra_metrics": "",
        **formset(rows),
    }
    data.update(fields)
    return data


def builder_data(**fields) -> dict:
    return {"rate_card_name": "List prices", "currency": "USD", "effective_from": ""} | price_data(
        **fields
    )


def pricing_snapshot() -> tuple[list, list, list]:
    return (
        list(RateCard.objects.order_by("pk").values()),
        list(RateCardVersion.objects.order_by("pk").values()),
        list(Price.objects.order_by("pk").values()),
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def form_errors(response) -> dict:
    return response.context["form"].errors


def stored_price(price: Price) -> dict:
    return {
        "name": price.name,
        "display_name": price.display_name,
        "model_pattern": price.model_pattern,
        "feature": price.feature,
        "property_filters": price.property_filters,
        "rates": price.rates,
        "extra_metrics": price.extra_metrics,
        "kind": price.kind,
        "formula": price.formula,
    }


def gpt_4o_stored(**changes) -> dict:
    return {
        "name": "gpt-4o",
        "display_name": "",
        "model_pattern": "gpt-4o",
        "feature": "",
        "property_filters": {},
        "rates": GPT_4O_RATES,
        "extra_metrics": [],
        "kind": "per_event",
        "formula": STANDARD,
    } | changes


@pytest.fixture
def card(db):
    return rate_card_create(
        name="Standard", currency="USD", effective_from=datetime(2026, 11, 1, tzinfo=UTC)
    )


@pytest.fixture
def version(card):
    return card.versions.get()


@pytest.fixture
def gpt_4o(version):
    return price_create(
        version=version, name="gpt-4o", model_pattern="gpt-4o", rates=GPT_4O_RATES, formula=STANDARD
    )


def staff(django_user_model, *codenames):
    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


PRICING_PERMISSIONS = (
    "view_ratecard",
    "add_ratecard",
    "add_price",
    "change_price",
    "add_ratecardversion",
    "view_ratecardversion",
)


# --- a new rate card with its first price -------------------------------------------------


def test_the_add_page_is_the_builder_with_effective_from_defaulting_to_now(clock, admin_client):
    catalog_load()

    response = admin_client.get(ADD_URL)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/contracts/ratecard/price_builder.html"
    content = response.content.decode()
    assert 'value="2025-01-15T09:30"' in content  # the effective_from input: now, to the minute
    assert response.context["card_form"]["currency"].value() == "USD"
    assert list(response.context["form"].fields) == [
        "model_pattern",
        "name",
        "display_name",
        "feature",
        "property_filters",
        "rate_in",
        "rate_out",
        "rate_cached",
        "rate_cache_write",
        "custom_formula",
        "formula",
        "extra_metrics",
    ]
    assert '<option value="gpt-4o">openai gpt-4o</option>' in content  # the model picker
    assert '<option value="claude-3-5-haiku*">anthropic claude-3-5-haiku</option>' in content
    assert '<label for="id_rate_in">Input price:</label>' in content
    assert '<label for="id_sample_input_tokens">Input tokens</label>' in content
    assert 'id="tt-preview-result" aria-live="polite"' in content


def test_a_rate_card_is_created_with_its_first_price_in_one_step(clock, admin_client):
    response = admin_client.post(ADD_URL, builder_data())

    card = RateCard.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/contracts/ratecard/{card.pk}/change/"
    assert (card.name, card.currency) == ("List prices", "USD")
    assert list(card.versions.values_list("number", "effective_from", "locked_at")) == [
        (1, T0, None)
    ]
    assert [stored_price(price) for price in Price.objects.all()] == [gpt_4o_stored()]
    assert messages_of(response) == [
        "Rate card “List prices” created: version 1 prices gpt-4o from 2025-01-15 09:30 UTC."
    ]
    assert list(LogEntry.objects.values_list("object_repr", "change_message")) == [
        ("List prices (USD)", "Created with the price “gpt-4o”.")
    ]


def test_the_card_page_lists_its_versions_and_prices_with_links_to_the_builder(
    admin_client, gpt_4o
):
    version = gpt_4o.version

    content = admin_client.get(f"/admin/contracts/ratecard/{version.rate_card_id}/change/")
    content = content.content.decode()

    assert "Version 1, from 2026-11-01 00:00 UTC" in content
    assert f"<code>{STANDARD}</code>" in content
    assert "rate_in 2.50/1M, rate_out 10.00/1M, rate_cached 1.25/1M" in content
    assert f'href="/admin/contracts/ratecard/price/{gpt_4o.pk}/change/"' in content
    assert f'href="/admin/contracts/ratecard/version/{version.pk}/price/add/"' in content
    assert f'href="/admin/contracts/ratecard/{version.rate_card_id}/clone/">Clone</a>' in content
    assert f'href="/admin/contracts/ratecard/{version.rate_card_id}/schedule/"' in content


def test_effective_from_feature_and_properties_are_stored_as_typed(admin_client):
    data = builder_data(
        effective_from="2026-12-01T00:00",
        model_pattern="gpt-4o*",
        name="gpt-4o batch",
        feature="support-bot",
        property_filters="inference = batch\n\nenvironment=production\n",
    )

    admin_client.post(ADD_URL, data)

    price = Price.objects.get()
    assert price.version.effective_from == datetime(2026, 12, 1, tzinfo=UTC)
    assert stored_price(price) == gpt_4o_stored(
        name="gpt-4o batch",
        model_pattern="gpt-4o*",
        feature="support-bot",
        property_filters={"inference": "batch", "environment": "production"},
    )


def test_other_metrics_are_priced_per_1m_per_1k_or_per_unit(admin_client):
    rows = [
        {"metric": "web_search_requests", "amount": "10", "per": "1000"},
        {"metric": "images", "amount": "0.04", "per": "1"},
    ]

    admin_client.post(ADD_URL, builder_data(rate_cached="", rate_cache_write="3.75", rows=rows))

    assert stored_price(Price.objects.get()) == gpt_4o_stored(
        rates={
            "rate_in": {"amount": "2.50", "per": PER_1M},
            "rate_out": {"amount": "10.00", "per": PER_1M},
            "rate_cache_write": {"amount": "3.75", "per": PER_1M},
            "rate_web_search_requests": {"amount": "10", "per": 1000},
            "rate_images": {"amount": "0.04", "per": 1},
        },
        extra_metrics=["images"],
        formula="input_tokens * rate_in + output_tokens * rate_out"
        " + cache_creation_input_tokens * rate_cache_write"
        " + web_search_requests * rate_web_search_requests + images * rate_images",
    )


def test_a_formula_written_by_hand_is_saved_exactly_as_typed(admin_client):
    formula = "max(input_tokens * rate_in, 0.001)\n  + output_tokens * rate_out + pages * 0.01"
    data = builder_data(rate_cached="", custom_formula="on", formula=formula, extra_metrics="pages")

    admin_client.post(ADD_URL, data)

    assert stored_price(Price.objects.get()) == gpt_4o_stored(
        rates={name: GPT_4O_RATES[name] for name in ("rate_in", "rate_out")},
        extra_metrics=["pages"],
        formula=formula,
    )


def test_without_the_tick_a_typed_formula_is_replaced_by_the_written_one(admin_client):
    admin_client.post(ADD_URL, builder_data(formula="input_tokens * 0"))

    assert Price.objects.get().formula == STANDARD


BAD_FORMS = [
    pytest.param(
        {"custom_formula": "on", "formula": "input_tokens * rate_inn + output_tokens * rate_out"},
        "formula",
        "Formula: unknown name 'rate_inn' at column 16 (did you mean 'rate_in'?)",
        id="unknown-rate",
    ),
    pytest.param(
        {"custom_formula": "on", "formula": "input_tokens ** 2"},
        "formula",
        "Formula: operator '**' is not allowed at column 14 (write the multiplication out, "
        "e.g. x * x)",
        id="refused-operator",
    ),
    pytest.param(
        {"custom_formula": "on", "formula": "input_tokens * rate_in +\n  rate_out * (2"},
        "formula",
        "Formula: '(' was never closed at line 2, column 14",
        id="second-line",
    ),
    pytest.param(
        {
            "rate_cache_write": "",
            "custom_formula": "on",
            "formula": "input_tokens * rate_in + cache_creation_input_tokens * rate_cache_write",
        },
        "formula",
        "Formula: the formula uses rate_cache_write: enter the cache write price",
        id="unpriced-rate",
    ),
    pytest.param(
        {"custom_formula": "on", "formula": "  "},
        "formula",
        "Write a formula, or untick “Write the formula myself”.",
        id="empty-formula",
    ),
    pytest.param(
        {"rate_in": "2,50"},
        "rate_in",
        "'2,50' is not an amount: write it like 2.50 (digits and a point).",
        id="comma",
    ),
    pytest.param(
        {"rate_out": "-1"},
        "rate_out",
        "'-1' is not an amount: write it like 2.50 (digits and a point).",
        id="negative",
    ),
    pytest.param(
        {"rate_in": "0.0000000000001"}, "rate_in", "Use at most 12 decimal places.", id="places"
    ),
    pytest.param(
        {"rate_in": "", "rate_out": "", "rate_cached": ""},
        "__all__",
        "Enter at least one price.",
        id="no-price",
    ),
    pytest.param({"model_pattern": "  "}, "model_pattern", "This field is required.", id="model"),
    pytest.param(
        {"property_filters": "inference=batch\nbatch"},
        "property_filters",
        "Line 2: write name=value, e.g. inference=batch.",
        id="property-line",
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_FORMS)
def test_a_bad_price_is_a_form_error_saying_what_and_where_and_nothing_is_stored(
    admin_client, change, field, message
):
    response = admin_client.post(ADD_URL, builder_data(**change))

    assert response.status_code == 200
    assert form_errors(response) == {field: [message]}
    assert "Nothing was saved: please correct the errors below." in response.content.decode()
    assert pricing_snapshot() == ([], [], [])


def test_a_formula_error_opens_the_advanced_part_and_points_at_the_column(admin_client):
    data = builder_data(custom_formula="on", formula="input_tokens * rate_inn")

    content = admin_client.post(ADD_URL, data).content.decode()

    assert '<details class="module tt-advanced" open>' in content
    assert "unknown name &#x27;rate_inn&#x27; at column 16" in content


BAD_ROWS = [
    ([{"metric": "web_search_requests"}], "amount", "Enter the price of web_search_requests."),
    ([{"amount": "10"}], "metric", "Which metric does this price charge?"),
    (
        [{"metric": "Web Searches", "amount": "1"}],
        "metric",
        "'Web Searches' is not a metric "
        "name: lowercase letters, digits and _, starting with a letter.",
    ),
    (
        [{"metric": "input_tokens", "amount": "1"}],
        "metric",
        "input_tokens has its own price above.",
    ),
]


@pytest.mark.parametrize(("rows", "field", "message"), BAD_ROWS)
def test_a_bad_other_metric_row_is_shown_on_its_row_and_nothing_is_stored(
    admin_client, rows, field, message
):
    response = admin_client.post(ADD_URL, builder_data(rows=rows))

    assert response.status_code == 200
    assert response.context["other_rates"].errors == [{field: [message]}]
    assert pricing_snapshot() == ([], [], [])


def test_two_rows_for_one_rate_are_refused(admin_client):
    rows = [{"metric": "images", "amount": "1", "per": "1"}, {"metric": "images", "amount": "2"}]

    response = admin_client.post(ADD_URL, builder_data(rows=rows))

    assert response.context["other_rates"].non_form_errors() == [
        "Rows 1 and 2 both price rate_images: keep one of them."
    ]
    assert pricing_snapshot() == ([], [], [])


def test_a_token_price_in_a_row_must_not_be_priced_above_too(admin_client):
    rows = [{"amount": "0.0025", "per": "1000", "rate": "rate_in"}]

    response = admin_client.post(ADD_URL, builder_data(rows=rows))

    assert form_errors(response) == {
        "__all__": ["rate_in is priced twice, as the input price and in a row: keep one."]
    }
    assert pricing_snapshot() == ([], [], [])


def test_a_price_per_1k_round_trips_through_the_builder(admin_client, version):
    rates = {"rate_in": {"amount": "0.0025", "per": 1000}}
    price = price_create(
        version=version,
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=rates,
        formula="input_tokens * rate_in",
    )
    url = f"/admin/contracts/ratecard/price/{price.pk}/change/"

    page = admin_client.get(url)
    row = page.context["other_rates"].forms[0]
    data = price_data(
        rate_in="",
        rate_out="",
        rate_cached="",
        custom_formula="on",
        formula=page.context["form"]["formula"].value(),
        rows=[{name: row[name].value() for name in row.fields}],
    )
    response = admin_client.post(url, data)

    assert {name: row[name].value() for name in row.fields} == {
        "metric": "",
        "amount": "0.0025",
        "per": 1000,
        "rate": "rate_in",
    }
    assert response.status_code == 302
    price.refresh_from_db()
    assert (price.rates, price.formula) == (rates, "input_tokens * rate_in")


def test_card_and_price_errors_are_shown_together_and_nothing_is_stored(admin_client, card):
    before = pricing_snapshot()

    response = admin_client.post(
        ADD_URL, builder_data(rate_card_name="Standard", currency="usdollar", rate_out="ten")
    )

    assert response.context["card_form"].errors == {
        "currency": ["Ensure this value has at most 3 characters (it has 8)."]
    }
    assert form_errors(response) == {
        "rate_out": ["'ten' is not an amount: write it like 2.50 (digits and a point)."]
    }
    response = admin_client.post(ADD_URL, builder_data(rate_card_name="Standard", currency="usd"))
    assert response.context["card_form"].errors == {
        "rate_card_name": ["Rate card with this Name already exists."]
    }
    assert pricing_snapshot() == before


def test_a_currency_that_is_not_iso_4217_is_refused(admin_client):
    response = admin_client.post(ADD_URL, builder_data(currency="ABC"))

    assert response.context["card_form"].errors == {
        "currency": ["'ABC' is not an ISO 4217 currency code."]
    }
    assert pricing_snapshot() == ([], [], [])


# --- the live preview --------------------------------------------------------------------


def preview(client, **fields):
    return client.post(PREVIEW_URL, {"currency": "USD", **price_data(**fields)})


def test_the_preview_prices_the_sample_call_exactly_term_by_term(admin_client):
    response = preview(admin_client)

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "currency": "USD",
        "written_formula": STANDARD,
        "formula": STANDARD,
        "terms": GPT_4O_TERMS,
        "total": "0.01",
        "rated_total": "0.01",
        "samples": [
            {
                "metric": "input_tokens",
                "field": "sample_input_tokens",
                "label": "Input tokens",
                "value": "1000",
            },
            {
                "metric": "output_tokens",
                "field": "sample_output_tokens",
                "label": "Output tokens",
                "value": "500",
            },
            {
                "metric": "cached_input_tokens",
                "field": "sample_cached_input_tokens",
                "label": "Cached input tokens",
                "value": "2000",
            },
            {
                "metric": "cache_creation_input_tokens",
                "field": "sample_cache_creation_input_tokens",
                "label": "Cache-write tokens",
                "value": "0",
            },
        ],
        "warnings": [],
        "errors": [],
    }


def test_the_preview_prices_the_counts_typed_and_shows_every_sub_cent_digit(admin_client):
    response = preview(
        admin_client,
        rate_in="0.15",
        sample_input_tokens="7",
        sample_output_tokens="1,000,000",
        sample_cached_input_tokens="",
    )

    data = response.json()
    assert [term["amount"] for term in data["terms"]] == ["0.00000105", "10.00", "0.00"]
    assert (data["total"], data["rated_total"]) == ("10.00000105", "10.00000105")


def test_the_preview_shows_the_rated_amount_when_12_places_round_it(admin_client):
    response = preview(
        admin_client, rate_in="0.000000000001", rate_out="", rate_cached="", sample_input_tokens="3"
    )

    data = response.json()
    assert data["terms"] == [
        {"label": "input", "text": "input_tokens * rate_in", "amount": "0.000000000000000003"}
    ]
    assert (data["total"], data["rated_total"]) == ("0.000000000000000003", "0.00")


def test_the_preview_of_a_hand_written_formula_uses_it_and_asks_for_its_metrics(admin_client):
    response = preview(
        admin_client,
        custom_formula="on",
        formula="input_tokens * rate_in + pages * 0.01 - 0.001",
        extra_metrics="pages",
        sample_pages="3",
    )

    data = response.json()
    assert data["written_formula"] == STANDARD
    assert data["terms"] == [
        {"label": "input", "text": "input_tokens * rate_in", "amount": "0.0025"},
        {"label": "pages * 0.01", "text": "pages * 0.01", "amount": "0.03"},
        {"label": "0.001", "text": "0.001", "amount": "-0.001"},
    ]
    assert data["total"] == "0.0315"
    assert data["samples"][-1] == {
        "metric": "pages",
        "field": "sample_pages",
        "label": "Pages",
        "value": "3",
    }


def test_the_preview_warns_of_a_negative_amount(admin_client):
    response = preview(admin_client, custom_formula="on", formula="0 - input_tokens * rate_in")

    assert response.json()["total"] == "-0.0025"
    assert response.json()["warnings"] == [
        "This call would cost less than nothing: rating refuses a negative amount."
    ]


def test_the_preview_gives_a_formula_error_with_its_line_and_column(admin_client):
    formula = "input_tokens * rate_in +\n  output_tokens * rate_outt"

    response = preview(admin_client, custom_formula="on", formula=formula)

    data = response.json()
    assert (data["ok"], data["terms"], data["total"]) == (False, [], None)
    assert data["errors"] == [
        {
            "field": "formula",
            "label": "Formula",
            "message": "Formula: unknown name 'rate_outt' at line 2, column 19 "
            "(did you mean 'rate_out'?)",
            "what": "unknown name 'rate_outt'",
            "line": 2,
            "column": 19,
            "hint": "did you mean 'rate_out'?",
            "text": formula,
        }
    ]


def test_the_preview_gives_an_evaluation_error_too(admin_client):
    response = preview(
        admin_client,
        custom_formula="on",
        formula="input_tokens / output_tokens",
        sample_output_tokens="0",
    )

    assert response.json()["errors"] == [
        {
            "field": "formula",
            "label": "Formula",
            "message": "Formula: division by zero in 'input_tokens / output_tokens' at column 14",
            "what": "division by zero in 'input_tokens / output_tokens'",
            "line": 1,
            "column": 14,
            "hint": None,
            "text": "input_tokens / output_tokens",
        }
    ]


def test_the_preview_names_a_bad_price_and_a_bad_sample(admin_client):
    response = preview(admin_client, rate_out="1e-6", sample_input_tokens="lots")

    data = response.json()
    assert data["ok"] is False
    assert data["written_formula"] is None
    assert data["errors"] == [
        {
            "field": "sample_input_tokens",
            "label": "Sample input tokens",
            "message": "'lots' is not a count: write it like 1000 or 1,000.",
        },
        {
            "field": "rate_out",
            "label": "Output price",
            "message": "'1e-6' is not an amount: write it like 2.50 (digits and a point).",
        },
    ]


def test_the_preview_stores_nothing(admin_client, gpt_4o):
    before = pricing_snapshot()

    preview(admin_client, rate_in="5")

    assert pricing_snapshot() == before


def test_the_preview_is_for_staff_who_may_price(client, django_user_model):
    anonymous = client.post(PREVIEW_URL, price_data())
    client.force_login(django_user_model.objects.create_user("customer", password="pw"))
    not_staff = client.post(PREVIEW_URL, price_data())
    client.force_login(staff(django_user_model, "view_ratecard"))
    viewer = client.post(PREVIEW_URL, price_data())
    read = client.get(PREVIEW_URL)

    assert (anonymous.status_code, not_staff.status_code) == (302, 302)
    assert anonymous["Location"].startswith("/admin/login/")
    assert not_staff["Location"].startswith("/admin/login/")
    assert (viewer.status_code, read.status_code) == (403, 403)


def test_the_preview_only_answers_posts(admin_client):
    assert admin_client.get(PREVIEW_URL).status_code == 405


# --- adding and changing prices of a version ----------------------------------------------


def test_a_price_is_added_to_a_version(admin_client, gpt_4o):
    version = gpt_4o.version
    url = f"/admin/contracts/ratecard/version/{version.pk}/price/add/"

    page = admin_client.get(url)
    response = admin_client.post(
        url,
        price_data(
            model_pattern="gpt-4o-mini", rate_in="0.15", rate_out="0.60", rate_cached="0.075"
        ),
    )

    assert page.status_code == 200
    assert '<input type="hidden" name="currency" value="USD">' in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/contracts/ratecard/{version.rate_card_id}/change/"
    assert [stored_price(price) for price in version.prices.order_by("position")] == [
        gpt_4o_stored(),
        gpt_4o_stored(
            name="gpt-4o-mini",
            model_pattern="gpt-4o-mini",
            rates={
                "rate_in": {"amount": "0.15", "per": PER_1M},
                "rate_out": {"amount": "0.60", "per": PER_1M},
                "rate_cached": {"amount": "0.075", "per": PER_1M},
            },
        ),
    ]
    assert messages_of(response) == ["Price “gpt-4o-mini” added to Standard v1."]


def test_a_price_name_already_in_the_version_is_refused(admin_client, gpt_4o):
    before = pricing_snapshot()
    url = f"/admin/contracts/ratecard/version/{gpt_4o.version_id}/price/add/"

    response = admin_client.post(url, price_data(rate_in="3"))

    assert form_errors(response) == {
        "model_pattern": [
            "Version 1 already has a price named “gpt-4o”: give this one another Price name."
        ]
    }
    assert pricing_snapshot() == before


def test_a_price_is_changed_in_the_builder(admin_client, gpt_4o):
    url = f"/admin/contracts/ratecard/price/{gpt_4o.pk}/change/"

    page = admin_client.get(url)
    response = admin_client.post(url, price_data(rate_in="2.00", rate_cached=""))

    form = page.context["form"]
    assert {name: form[name].value() for name in form.fields} == {
        "model_pattern": "gpt-4o",
        "name": "",
        "display_name": "",
        "feature": "",
        "property_filters": "",
        "rate_in": "2.50",
        "rate_out": "10.00",
        "rate_cached": "1.25",
        "rate_cache_write": None,
        "custom_formula": False,
        "formula": STANDARD,
        "extra_metrics": "",
    }
    assert response.status_code == 302
    gpt_4o.refresh_from_db()
    assert stored_price(gpt_4o) == gpt_4o_stored(
        rates={
            "rate_in": {"amount": "2.00", "per": PER_1M},
            "rate_out": {"amount": "10.00", "per": PER_1M},
        },
        formula="input_tokens * rate_in + output_tokens * rate_out",
    )


def test_the_name_on_invoices_is_set_and_changed_in_the_builder(admin_client, gpt_4o):
    version = gpt_4o.version
    add = f"/admin/contracts/ratecard/version/{version.pk}/price/add/"
    change = f"/admin/contracts/ratecard/price/{gpt_4o.pk}/change/"

    added = admin_client.post(
        add, price_data(model_pattern="gpt-4o-mini", display_name="  GPT-4o mini  ")
    )
    changed = admin_client.post(change, price_data(display_name="GPT-4o"))
    page = admin_client.get(change)
    card_page = admin_client.get(f"/admin/contracts/ratecard/{version.rate_card_id}/change/")

    assert (added.status_code, changed.status_code) == (302, 302)
    assert dict(version.prices.values_list("name", "display_name")) == {
        "gpt-4o": "GPT-4o",
        "gpt-4o-mini": "GPT-4o mini",  # as typed, less the spaces at either end
    }
    assert page.context["form"]["display_name"].value() == "GPT-4o"
    assert "on invoices: GPT-4o mini" in card_page.content.decode()


def test_a_name_on_invoices_over_two_lines_is_refused_and_nothing_is_stored(admin_client, gpt_4o):
    change = f"/admin/contracts/ratecard/price/{gpt_4o.pk}/change/"
    before = stored_price(gpt_4o)

    response = admin_client.post(change, price_data(display_name="GPT-4o\nby OpenAI"))

    assert response.status_code == 200
    assert form_errors(response) == {
        "display_name": [
            "Write the display name on one line, without spaces at either end "
            "(empty: the price's name)."
        ]
    }
    gpt_4o.refresh_from_db()
    assert stored_price(gpt_4o) == before


def test_a_catalog_price_round_trips_through_the_builder_unchanged(clock, admin_client):
    catalog_load()
    card = rate_card_create_from_catalog(
        name="List", markup=Decimal("0.20"), providers=["anthropic"], on=date(2026, 11, 1)
    )
    price = card.versions.get().prices.get(name="claude-sonnet-4-5")
    before = stored_price(price)
    url = f"/admin/contracts/ratecard/price/{price.pk}/change/"

    page = admin_client.get(url)
    form, rows = page.context["form"], page.context["other_rates"]
    data = {name: form[name].value() or "" for name in form.fields}
    data["custom_formula"] = "on" if form["custom_formula"].value() else ""
    filled = rows.forms[: rows.initial_form_count()]
    rows_data = [{name: row[name].value() for name in row.fields} for row in filled]
    response = admin_client.post(url, {**data, **formset([*rows_data, {}])})

    assert form["custom_formula"].value() is True  # its formula switches at a threshold
    assert [row["rate"] for row in rows_data] == [  # as the formula names them
        "rate_in_long",
        "rate_out_long",
        "rate_cache_write_1h",
    ]
    assert response.status_code == 302
    price.refresh_from_db()
    assert stored_price(price) == before


def test_amounts_are_shown_as_plain_decimals_whatever_their_stored_spelling(admin_client, version):
    price = price_create(
        version=version,
        name="opus",
        model_pattern="claude-opus-4*",
        rates={
            "rate_in": {"amount": "1.8E+1", "per": PER_1M},
            "rate_x": {"amount": "9E+1", "per": 1},
        },
        extra_metrics=["x"],
        formula="input_tokens * rate_in + x * rate_x",
    )

    card_page = admin_client.get(f"/admin/contracts/ratecard/{version.rate_card_id}/change/")
    builder = admin_client.get(f"/admin/contracts/ratecard/price/{price.pk}/change/")

    assert "rate_in 18/1M, rate_x 90</td>" in card_page.content.decode()
    assert builder.context["form"]["rate_in"].value() == "18"
    assert [row["amount"].value() for row in builder.context["other_rates"].forms[:1]] == ["90"]


def test_a_tiered_price_is_left_to_the_services(admin_client, version):
    price = price_create(
        version=version,
        name="embeddings",
        model_pattern="text-embedding-3-small",
        kind=Price.Kind.GRADUATED,
        rates={"rate_in": {"amount": "0.02", "per": PER_1M}},
        formula="input_tokens",
        tiers=[{"up_to": None, "unit_price": "0.00000002"}],
    )

    response = admin_client.get(f"/admin/contracts/ratecard/price/{price.pk}/change/")

    assert response.status_code == 302
    assert messages_of(response) == [
        "“embeddings” is a graduated tiers price: the builder edits per-event prices only."
    ]


def test_a_locked_version_cannot_change_and_the_page_offers_a_new_version(admin_client, gpt_4o):
    version = gpt_4o.version
    rate_card_version_lock(version=version)
    before = pricing_snapshot()
    change_url = f"/admin/contracts/ratecard/price/{gpt_4o.pk}/change/"
    add_url = f"/admin/contracts/ratecard/version/{version.pk}/price/add/"

    page = admin_client.get(change_url)
    changed = admin_client.post(change_url, price_data(rate_in="3"))
    added = admin_client.post(add_url, price_data(model_pattern="gpt-4o-mini"))

    content = page.content.decode()
    assert page.status_code == 200
    assert "Version 1 of “Standard” has rated usage" in content
    assert "The price “gpt-4o” was not changed." in content
    assert f'action="/admin/contracts/ratecard/{version.rate_card_id}/schedule/"' in content
    assert "Schedule a new version from a date" in content
    assert (changed.status_code, added.status_code) == (409, 409)
    assert "No price was added." in added.content.decode()
    assert pricing_snapshot() == before


def test_staff_without_price_permissions_cannot_open_the_builder(client, django_user_model, gpt_4o):
    client.force_login(staff(django_user_model, "view_ratecard", "view_ratecardversion"))
    before = pricing_snapshot()

    responses = [
        client.get(ADD_URL),
        client.post(ADD_URL, builder_data()),
        client.post(
            f"/admin/contracts/ratecard/version/{gpt_4o.version_id}/price/add/",
            price_data(model_pattern="x"),
        ),
        client.post(f"/admin/contracts/ratecard/price/{gpt_4o.pk}/change/", price_data()),
        client.post(
            f"/admin/contracts/ratecard/{gpt_4o.version.rate_card_id}/clone/", {"name": "Copy"}
        ),
        client.post(
            f"/admin/contracts/ratecard/{gpt_4o.version.rate_card_id}/schedule/",
            {"effective_from": "2027-01-01T00:00"},
        ),
    ]
    page = client.get(f"/admin/contracts/ratecard/{gpt_4o.version.rate_card_id}/change/")

    assert [response.status_code for response in responses] == [403] * 6
    assert pricing_snapshot() == before
    content = page.content.decode()
    assert page.status_code == 200
    assert "/clone/" not in content
    assert "/price/" not in content


def test_staff_with_pricing_permissions_price_a_model(client, django_user_model):
    client.force_login(staff(django_user_model, *PRICING_PERMISSIONS))

    response = client.post(ADD_URL, builder_data())

    assert response.status_code == 302
    assert [stored_price(price) for price in Price.objects.all()] == [gpt_4o_stored()]


# --- cloning and scheduling ---------------------------------------------------------------


def test_a_rate_card_is_cloned_under_a_new_name(clock, admin_client, gpt_4o):
    card = gpt_4o.version.rate_card
    url = f"/admin/contracts/ratecard/{card.pk}/clone/"

    page = admin_client.get(url)
    response = admin_client.post(url, {"name": "Enterprise", "effective_from": ""})

    clone = RateCard.objects.get(name="Enterprise")
    assert page.context["form"]["name"].value() == "Standard (copy)"
    assert response["Location"] == f"/admin/contracts/ratecard/{clone.pk}/change/"
    assert (clone.currency, clone.description) == ("USD", "Cloned from Standard.")
    assert list(clone.versions.values_list("number", "effective_from")) == [(1, T0)]
    assert [stored_price(price) for price in Price.objects.filter(version__rate_card=clone)] == [
        gpt_4o_stored()
    ]
    assert messages_of(response) == ["Rate card “Enterprise” created as a copy of “Standard”."]


def test_a_clone_needs_a_name_not_taken(admin_client, gpt_4o):
    before = pricing_snapshot()
    url = f"/admin/contracts/ratecard/{gpt_4o.version.rate_card_id}/clone/"

    taken = admin_client.post(url, {"name": "Standard"})
    empty = admin_client.post(url, {"name": "  "})

    assert taken.context["form"].errors == {"name": ["Rate card with this Name already exists."]}
    assert empty.context["form"].errors == {"name": ["This field is required."]}
    assert pricing_snapshot() == before


def test_a_new_version_is_scheduled_from_an_instant(clock, admin_client, gpt_4o):
    card = gpt_4o.version.rate_card
    url = f"/admin/contracts/ratecard/{card.pk}/schedule/"

    page = admin_client.get(url)
    response = admin_client.post(
        url, {"effective_from": "2027-01-01T00:00", "note": "New list prices"}
    )

    assert 'value="2025-01-16T00:00"' in page.content.decode()  # next midnight, UTC
    assert response["Location"] == f"/admin/contracts/ratecard/{card.pk}/change/"
    assert list(card.versions.values_list("number", "effective_from", "note")) == [
        (1, datetime(2026, 11, 1, tzinfo=UTC), ""),
        (2, datetime(2027, 1, 1, tzinfo=UTC), "New list prices"),
    ]
    assert [stored_price(price) for price in card.versions.get(number=2).prices.all()] == [
        gpt_4o_stored()
    ]
    assert messages_of(response) == [
        "Standard v2 scheduled from 2027-01-01 00:00 UTC with the latest version's prices: "
        "change them below."
    ]


def test_a_new_version_must_start_after_the_latest_and_nothing_is_stored(admin_client, gpt_4o):
    before = pricing_snapshot()
    url = f"/admin/contracts/ratecard/{gpt_4o.version.rate_card_id}/schedule/"

    early = admin_client.post(url, {"effective_from": "2026-11-01T00:00"})
    missing = admin_client.post(url, {"effective_from": ""})

    assert early.context["form"].errors == {
        "effective_from": ["Must be after Standard v1 starts (2026-11-01 00:00 UTC)."]
    }
    assert missing.context["form"].errors == {"effective_from": ["This field is required."]}
    assert pricing_snapshot() == before


def test_the_actions_ask_for_one_rate_card(admin_client, gpt_4o):
    card = gpt_4o.version.rate_card
    other = rate_card_create(name="Other", currency="EUR")

    clone = admin_client.post(
        "/admin/contracts/ratecard/", {"action": "clone_selected", "_selected_action": [card.pk]}
    )
    schedule = admin_client.post(
        "/admin/contracts/ratecard/",
        {"action": "schedule_selected", "_selected_action": [card.pk]},
    )
    two = admin_client.post(
        "/admin/contracts/ratecard/",
        {"action": "clone_selected", "_selected_action": [card.pk, other.pk]},
    )

    assert clone["Location"] == f"/admin/contracts/ratecard/{card.pk}/clone/"
    assert schedule["Location"] == f"/admin/contracts/ratecard/{card.pk}/schedule/"
    assert messages_of(two) == ["Select exactly one rate card."]


def test_the_catalog_feeds_the_model_picker_with_the_price_in_force(clock, admin_client):
    catalog_load()
    CatalogPrice.objects.filter(model="gpt-4o").update(effective_from=datetime(2030, 1, 1).date())

    content = admin_client.get(ADD_URL).content.decode()

    assert '<option value="gpt-4o-mini">openai gpt-4o-mini</option>' in content
    assert '<option value="gpt-4o">' not in content
