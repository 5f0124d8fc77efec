"""Billing ops correct a price from last week in a real browser: open the rate card, correct
gpt-4o's output price, read the diff per customer and period, apply it. Then every page of
re-rating and corrections, at desktop (1280 x 800) and phone (390 x 844) widths, is saved to
test-artifacts/ to be looked at, and checked for what a person must be able to read.

The scenario and its figures: tests/billing/correction_support.py (now is December 4 2026,
noon; output 10.00 -> 5.00 per 1M from November 27).
"""

import os
from decimal import Decimal

import pytest

from billing.rating.rater import usage_rate_pending
from billing.selectors import usage_for_period
from contracts.models import PriceCorrection
from contracts.price_corrections import price_correction_create
from contracts.services import customer_create
from tests.billing.conftest import standard_card
from tests.billing.correction_support import LAST_WEEK, NOW, REASON, clock_set, two_customers

from .conftest import admin_log_in, staff_with

try:
    from playwright.sync_api import Page, expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

PERMISSIONS = (
    "view_ratecard",
    "view_ratecardversion",
    "add_pricecorrection",
    "view_pricecorrection",
    "view_customer",
    "view_usagerollup",
    "change_usagerollup",
)
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def scenario(db, monkeypatch):
    """acme (November invoiced, December open) and globex on the Standard card, now."""
    clock = clock_set(monkeypatch)
    card = standard_card()
    acme = customer_create(external_id="acme", name="Acme Corp", currency="USD")
    two_customers(clock, acme, card)
    return card, acme


@pytest.fixture
def billing_ops(django_user_model):
    return staff_with(django_user_model, PERMISSIONS)


def test_billing_ops_correct_a_price_from_last_week_read_the_diff_and_apply_it(
    live_server, page, scenario, billing_ops, artifacts
):
    _, acme = scenario
    admin_log_in(page, live_server.url)

    # Given the rate card's page
    page.locator("#content").get_by_role("link", name="Rate cards", exact=True).click()
    page.get_by_role("link", name="Standard", exact=True).click()

    # When they correct gpt-4o's output from a week ago (the form's default) to 5.00
    page.get_by_role("link", name="Correct a price from…").click()
    expect(
        page.get_by_role("heading", name="Correct the price “gpt-4o” of “Standard”")
    ).to_be_visible()
    expect(page.get_by_label("Correct from (UTC):")).to_have_value("2026-11-27T00:00")
    expect(page.get_by_label("Output price:")).to_have_value("10.00")
    page.get_by_label("Output price:").fill("5.00")
    page.get_by_label("Reason:").fill(REASON)
    page.get_by_role("button", name="Preview the correction").click()

    # Then the diff shows each customer and period, and what the next closing does
    diff = page.locator("#tt-diff")
    expect(diff).to_contain_text("2 customers, 3 periods (1 already invoiced), 5 events re-rated.")
    november = diff.get_by_role("region", name="2026-11-01 to 2026-11-30")
    expect(november).to_contain_text("closed, invoice INV-000001")
    expect(november.locator("tbody td").nth(1)).to_have_text("30.00 USD")
    expect(november.locator("tbody td").nth(2)).to_have_text("20.00 USD")
    expect(november.locator(".tt-outcome")).to_have_text(
        "At the next closing: a credit note of 10.00 USD on INV-000001 (recorded on the "
        "invoice, lowering what is due)."
    )
    assert PriceCorrection.objects.count() == 0  # nothing stored yet

    # When they apply it
    page.get_by_role("button", name="Apply the correction").click()

    # Then the card's page says so and lists the correction with who and why
    expect(page.locator(".messagelist")).to_contain_text(
        "Correction applied: gpt-4o from 2026-11-27 00:00 UTC (v2)."
    )
    corrections = page.get_by_role("region", name="Price corrections")
    expect(corrections).to_contain_text(REASON)
    expect(corrections).to_contain_text("By ops, 2026-12-04 12:00 UTC")
    correction = PriceCorrection.objects.get()
    assert (correction.created_by, correction.effective_from) == ("ops", LAST_WEEK)
    usage_rate_pending()
    assert usage_for_period(customer=acme, at=NOW).charges.total == Decimal(35)


def test_every_page_reads_at_desktop_and_phone_widths(
    live_server, browser, settings, scenario, billing_ops, artifacts
):
    """Screenshots of each page added or changed, at both widths; nothing is cut off: no
    page is wider than the screen but for the diff's own table, which scrolls."""
    card, acme = scenario
    price_correction_create(
        rate_card=card, price="gpt-4o", effective_from=LAST_WEEK, rates={"rate_out": "5.00"},
        reason=REASON, created_by="ops",
    )  # fmt: skip
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    base = live_server.url
    pages = {
        "rate_card": f"/admin/contracts/ratecard/{card.pk}/change/",
        "customer": f"/admin/contracts/customer/{acme.pk}/change/",
        "correct_form": f"/admin/billing/usagerollup/correct/{card.pk}/",
        "correct_choose": f"/admin/billing/usagerollup/correct/{card.pk}/?price=gpt-5",
        "rerate_customer": f"/admin/billing/usagerollup/rerate/customer/{acme.pk}/"
        "?at=2026-11-28T00:00",
        "rerate_card": f"/admin/billing/usagerollup/rerate/rate-card/{card.pk}/"
        "?at=2026-12-04T12:00",
    }
    problems = pages_read(browser, base, pages, "corrections", artifacts)
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        page = context.new_page()
        admin_log_in(page, base)
        # The correction's diff, previewed (gpt-4o's input too, from last week)
        page.goto(base + pages["correct_form"])
        page.get_by_label("Input price:", exact=True).fill("2.00")
        page.get_by_label("Reason:").fill("Input is 2.00 per 1M since November 27 too")
        page.get_by_role("button", name="Preview the correction").click()
        expect(page.locator("#tt-diff")).to_contain_text("At the next closing")
        problems += _unreadable(page, f"correct_preview ({size})")
        page.screenshot(path=artifacts / f"corrections_correct_preview_{size}.png", full_page=True)
        page.locator("#tt-diff").screenshot(path=artifacts / f"corrections_diff_{size}.png")
        context.close()
    assert problems == []


def pages_read(browser, base: str, pages: dict[str, str], prefix: str, artifacts) -> list[str]:
    """Each page at both widths, signed in: what a person could not read on it, and a
    screenshot of it in test-artifacts/ (``{prefix}_{name}_{size}.png``)."""
    problems: list[str] = []
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        page = context.new_page()
        admin_log_in(page, base)
        for name, path in pages.items():
            page.goto(base + path)
            problems += _unreadable(page, f"{name} ({size})")
            page.screenshot(path=artifacts / f"{prefix}_{name}_{size}.png", full_page=True)
        context.close()
    return problems


#: What sticks out past the screen's right edge, to say where a page is too wide.
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8)
    .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def _unreadable(page: Page, name: str) -> list[str]:
    """What a person could not read: the page is wider than the screen (a table that
    scrolls inside its own box is fine), or a money cell of a diff is cut off."""
    problems = []
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        wide = page.evaluate(WIDE_ELEMENTS)
        problems.append(f"{name}: {overflow}px wider than the screen: {wide}")
    cut = page.locator(".tt-diff .tt-num").evaluate_all(
        "cells => cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent)"
    )
    if cut:
        problems.append(f"{name}: money cut off: {cut}")
    return problems
