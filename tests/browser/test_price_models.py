"""Billing ops price several models at once in a real browser, 1280 x 800: a new rate card
from the catalog at list price + 20 %, two models ticked and one typed by hand, on one
page, saved, and read back on the card's page. Then the page and the card's page at phone
width (390 x 844). Screenshots of both widths go to test-artifacts/ to be looked at."""

import os
from decimal import Decimal

import pytest

from contracts.catalog.services import catalog_load
from contracts.models import RateCard
from tests.browser.test_price_corrections import _unreadable

from .conftest import admin_log_in, staff_with

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

PERMISSIONS = ("view_ratecard", "add_ratecard", "add_price", "view_ratecardversion")
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
PER_1M = 1_000_000


@pytest.fixture
def billing_ops(django_user_model):
    return staff_with(django_user_model, PERMISSIONS)


def test_billing_ops_price_several_models_from_the_catalog_on_one_page(
    live_server, browser, settings, billing_ops, artifacts
):
    catalog_load()
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    width, height = SIZES["desktop"]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = context.new_page()
    admin_log_in(page, live_server.url)

    # Given the rate cards' list, they open the page for several models
    page.locator("#content").get_by_role("link", name="Rate cards", exact=True).click()
    page.get_by_role("link", name="Price several models").click()
    expect(page.get_by_role("heading", name="Price several models: new rate card")).to_be_visible()

    # When they name the card, start it on the 1st, tick two catalog models at +20 %
    page.get_by_label("Rate card name:", exact=True).fill("List + 20%")
    page.get_by_label("Effective from (UTC):").fill("2026-12-01T00:00")
    page.get_by_label("Markup (%):").fill("20")
    page.get_by_label("gpt-4o: 2.50 in, 10.00 out, 1.25 cached per 1M USD").check()
    page.get_by_label("claude-sonnet-4-5: 3.00 in, 15.00 out, 0.30 cached per 1M USD").check()
    # and type a model of their own by hand
    page.get_by_label("Model, row 1", exact=True).fill("acme-llm-*")
    page.get_by_label("Input, row 1", exact=True).fill("1.00")
    page.get_by_label("Output, row 1", exact=True).fill("2.00")
    problems = _unreadable(page, "models (desktop)")
    page.screenshot(path=artifacts / "price_models_desktop.png", full_page=True)
    page.get_by_role("button", name="Save").click()

    # Then the card's page says what was priced and lists the three prices
    expect(page.locator(".messagelist")).to_have_text(
        "3 prices in List + 20% v1: claude-sonnet-4-5, gpt-4o, acme-llm-*."
    )
    version = page.get_by_role("region", name="Version 1, from 2026-12-01 00:00 UTC")
    expect(version.locator("tbody tr")).to_have_count(3)
    expect(version).to_contain_text("rate_in 3/1M, rate_out 12/1M, rate_cached 1.5/1M")
    expect(version).to_contain_text("rate_in 1.00/1M, rate_out 2.00/1M")
    problems += _unreadable(page, "card (desktop)")
    page.screenshot(path=artifacts / "price_models_card_desktop.png", full_page=True)
    card = RateCard.objects.get(name="List + 20%")
    sonnet = card.versions.get().prices.get(name="claude-sonnet-4-5")
    assert sonnet.rates["rate_out_long"] == {"amount": "27", "per": PER_1M}  # 22.50 + 20 %
    assert Decimal(sonnet.rates["rate_in"]["amount"]) == Decimal("3.6")

    # At phone width the page and the card read without sideways scrolling
    page.set_viewport_size(dict(zip(("width", "height"), SIZES["phone"], strict=True)))
    page.goto(f"{live_server.url}/admin/contracts/ratecard/models/")
    page.get_by_label("gpt-4o: 2.50 in, 10.00 out, 1.25 cached per 1M USD").check()
    problems += _unreadable(page, "models (phone)")
    page.screenshot(path=artifacts / "price_models_phone.png", full_page=True)
    page.goto(f"{live_server.url}/admin/contracts/ratecard/{card.pk}/change/")
    problems += _unreadable(page, "card (phone)")
    page.screenshot(path=artifacts / "price_models_card_phone.png", full_page=True)
    context.close()
    assert problems == []


def test_the_clone_page_asks_for_each_price_in_the_new_currency_at_both_widths(
    live_server, browser, settings, billing_ops, artifacts
):
    """Clone a card into EUR leaving one price out: the page says, on that field, that
    money does not convert; nothing is stored. At desktop and phone widths."""
    from contracts.rate_cards import rate_card_create
    from tests.contracts.rate_card_api_support import EMBEDDINGS, GPT_4O, SEARCHES

    standard = rate_card_create(
        name="Standard", currency="USD", prices=[{**GPT_4O, "name": "gpt-4o"}, EMBEDDINGS, SEARCHES]
    )
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    problems: list[str] = []
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        page = context.new_page()
        admin_log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/contracts/ratecard/{standard.pk}/clone/")
        page.get_by_label("New rate card name:").fill("Europe")
        page.get_by_label("Currency:").fill("EUR")
        for label, amount in [("rate_in (per 1M)", "2.30"), ("rate_out (per 1M)", "9.20"),
                              ("package price", "9.20")]:  # fmt: skip
            page.get_by_label(f"{label}:", exact=True).fill(amount)
        page.get_by_role("button", name="Clone").click()
        expect(page.locator(".errornote")).to_have_text(
            "Nothing was saved: please correct the errors below."
        )
        expect(page.locator(".field-p0_rate_cached .errorlist")).to_have_text(
            "Give rate_cached in EUR: money does not convert from USD."
        )
        problems += _unreadable(page, f"clone ({size})")
        page.screenshot(path=artifacts / f"clone_currency_{size}.png", full_page=True)
        context.close()
    assert problems == []
    assert RateCard.objects.count() == 1
