"""Billing ops price a model in a real browser: log in, open the builder, type three prices,
watch the preview, save. The steps a person takes are counted; it must stay a few."""

import os
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import RatedEvent
from billing.rating.rater import usage_rate_pending
from billing.selectors import usage_for_period
from contracts.models import Price
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create, customer_create
from metering.models import UnratedEvent
from metering.services import events_ingest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

STANDARD = "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
PRICING_PERMISSIONS = (
    "view_ratecard",
    "add_ratecard",
    "add_price",
    "change_price",
    "view_ratecardversion",
    "add_ratecardversion",
)
#: Log in (3), reach the builder (2), type the card's name, the model, three prices (5), save (1).
STEPS_TO_PRICE_A_MODEL = 11


class Person:
    """Uses the page as a person does, finding things by what they are called (labels and
    roles, as a screen reader does) and counting each step: a fill or a click."""

    def __init__(self, page: Page):
        self.page = page
        self.steps: list[str] = []

    def fill(self, label: str, text: str) -> None:
        self.page.get_by_label(label, exact=True).fill(text)
        self.steps.append(f"type {text!r} into {label!r}")

    def type(self, label: str, text: str) -> None:
        """Key by key, so the live preview sees every intermediate value (2, 2., 2.5, 2.50)."""
        self.page.get_by_label(label, exact=True).press_sequentially(text)
        self.steps.append(f"type {text!r} into {label!r}")

    def click(self, role: str, name: str, within: str = "#content") -> None:
        self.page.locator(within).get_by_role(role, name=name, exact=True).click()
        self.steps.append(f"click {name!r}")


@pytest.fixture
def billing_ops(django_user_model):
    """A staff member allowed to price models: not a superuser."""
    user = django_user_model.objects.create_user("ops", password="price-a-model-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=PRICING_PERMISSIONS))
    return user


def log_in(person: Person, url: str) -> None:
    person.page.goto(f"{url}/admin/")
    person.fill("Username:", "ops")
    person.fill("Password:", "price-a-model-1")
    person.click("button", "Log in")
    expect(person.page.get_by_role("heading", name="Site administration")).to_be_visible()


def preview_rows(page: Page) -> list[list[str]]:
    return page.locator("#tt-preview-terms tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
    )


def test_billing_ops_price_gpt_4o_in_a_few_steps_with_the_preview(
    live_server, page, billing_ops, artifacts
):
    """The whole path of a new price, from the login page to the stored Price; what is
    done with that price afterwards (usage rated at exactly these rates) follows on from
    its last step."""
    person = Person(page)

    # Given a member of billing ops logs in and opens the builder from the rate cards
    log_in(person, live_server.url)
    person.click("link", "Rate cards")
    person.click("link", "Add rate card")
    expect(page.get_by_role("heading", name="Price a model: new rate card")).to_be_visible()

    # When they name the card and type gpt-4o's prices per million tokens
    person.fill("Rate card name:", "List prices 2026")
    person.fill("Model:", "gpt-4o")
    person.type("Input price:", "2.50")
    person.type("Output price:", "10.00")
    person.type("Cached input price:", "1.25")

    # Then the preview prices the sample call (1,000 input, 500 output, 2,000 cached) exactly
    expect(page.locator("#tt-preview-total")).to_have_text("0.01")
    assert preview_rows(page) == [
        ["input", "input_tokens * rate_in", "0.0025"],
        ["output", "output_tokens * rate_out", "0.005"],
        ["cached input", "cached_input_tokens * rate_cached", "0.0025"],
    ]
    expect(page.locator("#tt-preview-terms thead")).to_contain_text("Amount (USD)")
    expect(page.locator("#tt-preview-status")).to_have_text("The sample call costs 0.01 USD.")
    # And the formula is written for them
    expect(page.get_by_label("Formula:", exact=True)).to_have_value(STANDARD)
    page.screenshot(path=artifacts / "price_builder.png", full_page=True)

    # When they save
    person.click("button", "Save")

    # Then the rate card's page says so, and the price is stored exactly as typed
    expect(page.locator(".messagelist")).to_contain_text("Rate card “List prices 2026” created")
    price = Price.objects.select_related("version__rate_card").get()
    assert (price.version.rate_card.name, price.version.rate_card.currency) == (
        "List prices 2026",
        "USD",
    )
    assert price.version.number == 1
    assert (price.name, price.model_pattern, price.feature, price.property_filters) == (
        "gpt-4o",
        "gpt-4o",
        "",
        {},
    )
    assert price.rates == {
        "rate_in": {"amount": "2.50", "per": 1_000_000},
        "rate_out": {"amount": "10.00", "per": 1_000_000},
        "rate_cached": {"amount": "1.25", "per": 1_000_000},
    }
    assert (price.kind, price.formula, price.extra_metrics) == ("per_event", STANDARD, [])

    # And it took a person a few steps
    print(f"\nPricing gpt-4o took {len(person.steps)} steps:", *person.steps, sep="\n  ")
    assert len(person.steps) == STEPS_TO_PRICE_A_MODEL

    # When a customer on that card makes calls, they rate at exactly those prices
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    contract_create(
        customer=acme, starts_at=price.version.effective_from, rate_card=price.version.rate_card
    )
    at = timezone.now().isoformat()
    calls = [
        {"input_tokens": 1_000, "output_tokens": 500, "cached_input_tokens": 2_000},
        {"input_tokens": 1_000_000},
        {"output_tokens": 1_000_000, "cached_input_tokens": 1_000_000},
    ]
    result = events_ingest(
        items=[
            {"event_id": f"call-{n}", "customer_id": "acme", "timestamp": at, "model": "gpt-4o",
             "metrics": metrics}
            for n, metrics in enumerate(calls)
        ]
    )  # fmt: skip
    assert result.count("accepted") == 3
    usage_rate_pending()  # with no broker, ingestion already rated them after its commit
    assert UnratedEvent.objects.count() == 0
    amounts = RatedEvent.objects.order_by("event__event_id").values_list("amount", flat=True)
    assert list(amounts) == [Decimal("0.01"), Decimal("2.5"), Decimal("11.25")]
    usage = usage_for_period(customer=acme)
    assert [(group.name, group.events, group.amount) for group in usage.by_price] == [
        ("gpt-4o", 3, Decimal("13.76"))
    ]


def test_a_formula_typed_by_hand_is_checked_as_it_is_typed(live_server, page, billing_ops):
    person = Person(page)
    log_in(person, live_server.url)
    page.goto(f"{live_server.url}/admin/contracts/ratecard/add/")

    # Given the prices are typed and the advanced part is opened
    person.fill("Input price:", "2.50")
    person.fill("Output price:", "10.00")
    expect(page.locator("#tt-preview-total")).to_have_text("0.0075")
    page.get_by_text("Advanced: the formula").click()

    # When they write the formula themselves, with a typo
    person.click("checkbox", "Write the formula myself:")
    formula = page.get_by_label("Formula:", exact=True)
    formula.fill("input_tokens * rate_in + output_tokens * rate_outt")

    # Then the preview says what is wrong and points at the column
    errors = page.locator("#tt-preview-errors")
    expect(errors).to_contain_text(
        "Formula: unknown name 'rate_outt' at column 42 (did you mean 'rate_out'?)"
    )
    expect(errors.locator("pre")).to_have_text(
        "input_tokens * rate_in + output_tokens * rate_outt\n" + " " * 41 + "^"
    )
    expect(page.locator("#tt-preview-terms")).to_be_hidden()

    # When they correct it and price a sample call of their own
    formula.fill("input_tokens * rate_in + max(output_tokens, 100) * rate_out")
    page.get_by_label("Output tokens", exact=True).fill("0")

    # Then the preview follows, and the prices typed no longer rewrite the formula
    expect(page.locator("#tt-preview-total")).to_have_text("0.0035")
    assert preview_rows(page) == [
        ["input", "input_tokens * rate_in", "0.0025"],
        ["max(output_tokens, 100) * rate_out", "0.001"],  # no name of its own: its text
    ]
    person.fill("Input price:", "3")
    expect(page.locator("#tt-preview-total")).to_have_text("0.004")
    expect(formula).to_have_value("input_tokens * rate_in + max(output_tokens, 100) * rate_out")


def test_another_metric_gets_a_row_of_its_own_and_a_sample_count(live_server, page, billing_ops):
    person = Person(page)
    log_in(person, live_server.url)
    page.goto(f"{live_server.url}/admin/contracts/ratecard/add/")
    person.fill("Input price:", "2.50")

    # When they price web searches at 10 per 1K in the first row, then add a second row
    person.fill("Metric, other metric 1", "web_search_requests")
    person.fill("Price, other metric 1", "10")
    page.get_by_label("Unit, other metric 1", exact=True).select_option(label="per 1K")
    person.click("button", "Add another metric")

    # Then a new row is ready, the formula charges the metric and the sample asks how many
    expect(page.get_by_label("Metric, other metric 2", exact=True)).to_be_focused()
    expect(page.get_by_label("Formula:", exact=True)).to_have_value(
        "input_tokens * rate_in + web_search_requests * rate_web_search_requests"
    )
    page.get_by_label("Web search requests", exact=True).fill("3")
    expect(page.locator("#tt-preview-total")).to_have_text("0.0325")


def test_billing_ops_give_a_price_its_name_on_invoices(live_server, page, billing_ops, artifacts):
    card = rate_card_create(name="List prices", currency="USD")
    price = price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates={"rate_in": {"amount": "2.50", "per": 1_000_000}},
        formula="input_tokens * rate_in",
    )
    person = Person(page)
    log_in(person, live_server.url)

    # Given the builder of gpt-4o's price
    page.goto(f"{live_server.url}/admin/contracts/ratecard/price/{price.pk}/change/")

    # When they give it the name the customer's invoices should say
    person.fill("Name on invoices:", "GPT-4o")
    for name, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        page.screenshot(path=artifacts / f"price_builder_display_name_{name}.png")
    page.set_viewport_size({"width": 1280, "height": 1000})
    person.click("button", "Save")

    # Then it is stored, and the card's page shows it under the price's name
    expect(page.get_by_text("on invoices: GPT-4o")).to_be_visible()
    price.refresh_from_db()
    assert (price.name, price.display_name, price.shown_name) == ("gpt-4o", "GPT-4o", "GPT-4o")
