"""Billing ops set a customer up from the customer page, in a real browser: a contract from
the 1st of this month on a rate card made this morning, credits, and a price for the model
the card leaves unpriced. Every action is one click from the customer page and comes back
to it; the page reads at 1280x800 and at 390x844."""

import os
from datetime import UTC, datetime

import pytest

from billing.models import UsageRollup
from billing.rating.rater import usage_rate_pending
from contracts.models import Contract, Price
from contracts.services import customer_create
from metering.services import events_ingest
from tests.billing.correction_support import clock_set
from tests.contracts.contract_support import card_create

from .conftest import admin_log_in, staff_with

try:
    from playwright.sync_api import Page, expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

NOW = datetime(2026, 12, 14, 10, 30, tzinfo=UTC)
CARD_START = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)  # the card was made this morning
PERMISSIONS = (
    "view_customer", "change_customer", "view_contract", "add_contract", "change_contract",
    "view_ratecard", "add_price", "add_ratecardversion", "view_wallet", "add_creditgrant",
    "view_invoice", "view_usagerollup", "view_alert", "view_portaluser",
)  # fmt: skip
MILLION_EACH = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}


@pytest.fixture
def acme(db, monkeypatch):
    """acme, billed in USD, has called gpt-4o once and llama-3.3-70b twice this morning,
    with no contract yet; "List prices" prices gpt-4o (2.50 in, 10.00 out per 1M) since
    09:00 today, and no llama."""
    clock_set(monkeypatch, NOW)
    card_create("List prices", effective_from=CARD_START)
    acme = customer_create(external_id="acme", name="Acme Corp", currency="USD")
    at = "2026-12-14T10:00:00Z"
    calls = [("gpt-4o", {"input_tokens": 1_000_000}), ("llama-3.3-70b", MILLION_EACH),
             ("llama-3.3-70b", MILLION_EACH)]  # fmt: skip
    events_ingest(
        items=[
            {"event_id": f"call-{n}", "customer_id": "acme", "timestamp": at, "model": model,
             "metrics": metrics}
            for n, (model, metrics) in enumerate(calls)
        ]
    )  # fmt: skip
    usage_rate_pending()
    return acme


@pytest.fixture
def billing_ops(django_user_model):
    return staff_with(django_user_model, PERMISSIONS)


def section(page: Page, name: str):
    return page.get_by_role("region", name=name)


def figures(page: Page) -> list[list[str]]:
    return (
        section(page, "This period's invoice so far")
        .locator("tr")
        .evaluate_all(
            "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
        )
    )


def test_billing_ops_set_a_customer_up_from_the_customer_page(
    live_server, page, acme, billing_ops, artifacts
):
    page.set_viewport_size({"width": 1280, "height": 800})
    admin_log_in(page, live_server.url)
    page.get_by_role("link", name="Customers", exact=True).click()
    page.get_by_role("link", name="acme", exact=True).click()
    customer_page = f"{live_server.url}/admin/contracts/customer/{acme.pk}/change/"
    assert page.url == customer_page
    expect(section(page, "Contract and terms")).to_contain_text("No contract")
    unpriced = section(page, "Unpriced and failed usage")
    expect(unpriced).to_contain_text("no contract in force")

    # When they add a contract from the 1st of this month: one click to the form (the
    # customer already chosen), "Start of this period", the card and a fee, save
    section(page, "Contract and terms").get_by_role("link", name="New contract").click()
    expect(page.get_by_role("heading", name="Add contract")).to_be_visible()
    page.get_by_role("button", name="start of this period").click()
    expect(page.locator("#id_starts_at_0")).to_have_value("2026-12-01")
    expect(page.locator("#id_starts_at_1")).to_have_value("00:00:00")
    screenshots(page, artifacts, "contract_add")
    page.get_by_label("Rate card:").select_option(label="List prices (USD)")
    page.get_by_label("Fixed fee:").fill("30.00")
    page.get_by_role("button", name="Add contract").click()

    # Then they are back on the customer page, told that the card's prices start later
    assert page.url == customer_page
    expect(page.locator(".messagelist")).to_contain_text("Contract acme from 2026-12-01 added.")
    expect(page.locator(".messagelist")).to_contain_text(
        "List prices has prices from 2026-12-14 09:00 UTC"
    )
    contract = Contract.objects.get()
    assert (contract.starts_at, contract.anchor_day) == (datetime(2026, 12, 1, tzinfo=UTC), 1)
    usage_rate_pending()  # the worker rates the usage again under the new terms
    page.reload()
    terms_row = section(page, "Contract and terms").locator("tbody tr")
    expect(terms_row).to_contain_text("2026-12-01 00:00")
    expect(terms_row).to_contain_text("30.00 USD")
    page.screenshot(path=artifacts / "customer_page_unpriced_1280.png", full_page=True)
    assert cut_off(page, 1280) == []

    # When they grant 100.00 of credits: one click to the form (acme chosen), save
    section(page, "Prepaid credits").get_by_role("link", name="Grant credits").click()
    page.get_by_label("Amount:").fill("100.00")
    page.get_by_label("Source:").select_option("purchased")
    page.get_by_role("button", name="Save").click()
    assert page.url == customer_page
    expect(page.locator(".messagelist")).to_contain_text("Granted 100.00 USD to Acme Corp (acme).")

    # When they price llama-3.3-70b, which the card leaves unpriced: "Price this" opens
    # the price builder for that model on acme's card, from the start of the period
    row = unpriced.locator("tr", has_text="llama-3.3-70b")
    expect(row).to_contain_text("no price of List prices v1 matches 'llama-3.3-70b'")
    row.get_by_role("link", name="Price this").click()
    expect(page.get_by_label("Model:", exact=True)).to_have_value("llama-3.3-70b")
    expect(page.get_by_label("Effective from (UTC):")).to_have_value("2026-12-14T09:00")
    screenshots(page, artifacts, "price_this", phone_checked=False)
    page.get_by_label("Input price:", exact=True).fill("1.00")
    page.get_by_label("Output price:", exact=True).fill("2.00")
    page.get_by_role("button", name="Save").click()
    assert page.url == customer_page
    expect(page.locator(".messagelist")).to_contain_text("Price “llama-3.3-70b” added to")

    # Then, once the worker has rated again, nothing is unpriced and the figures add up:
    # usage 2.50 (gpt-4o) + 2 x 3.00 (llama) = 8.50, paid by credits; the fee is due
    usage_rate_pending()
    price = Price.objects.get(name="llama-3.3-70b")
    assert (price.version.number, price.version.effective_from) == (2, CARD_START)
    assert not UsageRollup.objects.filter(customer=acme, event_count__gt=0).exclude(
        status=UsageRollup.Status.RATED
    )
    page.reload()
    expect(unpriced).to_contain_text("All usage is priced.")
    assert figures(page) == [
        ["Fixed fees", "30.00 USD"],
        ["Usage", "8.50 USD"],
        ["Included allowance used", "0.00 USD"],
        ["Minimum commitment true-up", "0.00 USD"],
        ["Prepaid credits applied", "-8.50 USD"],
        ["Amount due", "30.00 USD"],
    ]
    expect(page.locator("#tt-wallet-available")).to_have_text("91.50 USD")

    # And the page reads on a laptop and on a phone: nothing wider than the screen, no
    # table scrolled out of its box
    page.screenshot(path=artifacts / "customer_page_1280.png", full_page=True)
    assert cut_off(page, 1280) == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.screenshot(path=artifacts / "customer_page_390.png", full_page=True)
    assert cut_off(page, 390) == []


def cut_off(page: Page, width: int) -> list[str]:
    """What a person could not see at this width: the page wider than the screen, or a
    section's table wider than its box (it would have to be scrolled to be read)."""
    problems = []
    page_width = page.evaluate("document.documentElement.scrollWidth")
    if page_width > width:
        problems.append(f"the page is {page_width}px wide")
    problems += page.locator(".tt-section .tt-scroll").evaluate_all(
        "boxes => boxes.filter(box => box.scrollWidth > box.clientWidth + 1)"
        ".map(box => box.closest('section').id + ': ' + box.scrollWidth + 'px in '"
        " + box.clientWidth + 'px')"
    )
    return problems


def screenshots(page: Page, artifacts, name: str, *, phone_checked: bool = True) -> None:
    """The page as it is, at 390x844 and at 1280x800 (the size the test goes on at), each
    checked for anything past the screen's right edge (the price builder is checked at
    1280 only: its other-metrics table is wider than a phone)."""
    for width, height in ((390, 844), (1280, 800)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=artifacts / f"{name}_{width}.png", full_page=True)
        if width > 390 or phone_checked:
            assert page.evaluate(WIDE, width) == [], f"{name} at {width} px"


#: The elements that stick out past the right edge of a screen this wide.
WIDE = """width => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1).slice(0, 6)
    .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""
