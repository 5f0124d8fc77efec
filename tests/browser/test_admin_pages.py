"""The billing admin in a real browser, on the demo's data (`manage.py load_demo`, its past
periods closed): every main list and page fits a 1280-pixel screen, nothing sticking out
past its right edge (a list's columns included: the admin scrolls a wide list inside its
box, which hides columns as surely), with its key columns on screen; money reads as people
read it; and the quick choices fill the admin's own date and time pickers.

Screenshots of each page at 1280x800 and 390x844 go to test-artifacts/ (admin_*.png).
"""

import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.invoicing.closing import periods_close_due
from billing.invoicing.credit_notes import credit_note_issue
from billing.models import (
    BillingPeriod,
    CreditNote,
    Invoice,
    InvoiceLine,
    RatedEvent,
    UsageDrawDown,
    UsageRollup,
)
from billing.rating.rater import usage_rate_pending
from contracts.models import Contract, Customer
from metering.models import EventArchive, UsageEvent
from pricing.cycles import period_bounds
from wallets.alerts import alert_settings_update
from wallets.models import Alert, AlertSettings, TopUpRequest, Wallet
from wallets.services import hold_place, wallet_draw_down

try:
    from playwright.sync_api import Page, expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
ADMIN = "/admin"
#: Money as the admin writes it: billed (the currency's minor places) or exact (12).
MONEY = re.compile(r"(-?[\d,]+(?:\.\d+)?) (USD|EUR|JPY)\b")
CENTS = re.compile(r"-?\d{1,3}(,\d{3})*\.\d{2}")
BILLED = {"USD": CENTS, "EUR": CENTS, "JPY": re.compile(r"-?\d{1,3}(,\d{3})*")}
EXACT = re.compile(r"-?\d{1,3}(,\d{3})*\.\d{12}")


@pytest.fixture
def demo(db):
    """The demo as `scripts/demo` leaves it, rated, with its past periods closed into
    invoices, a credit note, acme's alert settings (a budget, a low balance, top-ups), a
    top-up asked for and a hold of initech's."""
    call_command("load_demo", stdout=StringIO())
    usage_rate_pending()
    assert periods_close_due() >= 1
    acme = Customer.objects.get(external_id="acme")
    invoice = Invoice.objects.filter(customer=acme).order_by("-period_start").first()
    credit_note_issue(
        invoice=invoice, amount=Decimal("12.50"), memo="Outage on the 12th",
        destination=CreditNote.Destination.NONE, created_by="admin",
    )  # fmt: skip
    alert_settings_update(
        customer=acme, budget=Decimal("1500"), balance_below=Decimal("150"),
        topup_below=Decimal("120"), topup_amount=Decimal("250"),
    )  # fmt: skip
    wallet_draw_down(wallet=Wallet.objects.get(customer=acme), amount="5.5", reason="demo")
    hold_place(
        customer=Customer.objects.get(external_id="initech"), amount="3.25", reference="call"
    )
    EventArchive.objects.create(
        month=datetime(2025, 10, 1).date(), file_name="/var/lib/tokentill/events-2025-10.parquet",
        row_count=1_284_311, file_sha256="9f2c" * 16, dropped=True,
        archived_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
    )  # fmt: skip
    return acme


def pages(acme: Customer) -> dict[str, tuple[str, list[str]]]:
    """Each page: its path, and the column headings a person must see on screen."""
    usage_line = InvoiceLine.objects.filter(kind=InvoiceLine.Kind.USAGE).first()
    invoice = usage_line.invoice
    contract = Contract.objects.get(customer=acme)
    wallet = Wallet.objects.get(customer=acme)

    def first(model) -> int:
        return model.objects.order_by("pk").values_list("pk", flat=True)[0]

    return {
        "invoices": ("/billing/invoice/", ["number", "customer", "period", "total", "status"]),
        "invoice": (f"/billing/invoice/{invoice.pk}/change/", ["#", "description", "amount"]),
        "invoice_line_events": (
            f"/billing/invoice/{invoice.pk}/lines/{usage_line.position}/events/",
            ["event id", "amount"],
        ),
        "invoice_preview": (f"/billing/invoice/preview/{acme.pk}/", ["description", "amount"]),
        "revenue_report": ("/billing/invoice/revenue-report/?customer=", ["invoice total"]),
        "billing_periods": (
            "/billing/billingperiod/",
            ["customer", "period", "invoice", "charges billed", "credits applied"],
        ),
        "billing_period": (f"/billing/billingperiod/{first(BillingPeriod)}/change/", []),
        "credit_notes": ("/billing/creditnote/", ["number", "invoice", "amount", "reason"]),
        "credit_note": (f"/billing/creditnote/{first(CreditNote)}/change/", []),
        "usage_rollups": (
            "/billing/usagerollup/",
            ["customer", "period", "model · feature · price", "events", "amount (exact)"],
        ),
        "usage_rollup": (f"/billing/usagerollup/{first(UsageRollup)}/change/", []),
        "rated_events": ("/billing/ratedevent/", ["event", "amount (exact)", "reason"]),
        "rated_event": (f"/billing/ratedevent/{first(RatedEvent)}/change/", []),
        "draw_downs": (
            "/billing/usagedrawdown/",
            ["customer", "credits drawn", "short (in arrears)", "allowance left"],
        ),
        "draw_down": (f"/billing/usagedrawdown/{first(UsageDrawDown)}/change/", []),
        "contracts": ("/contracts/contract/", ["customer", "starts (UTC)", "rate card now"]),
        "contract": (
            f"/contracts/contract/{contract.pk}/change/",
            ["from (UTC)", "fixed fee", "allowance", "minimum", "discount", "note"],
        ),
        "contract_add": ("/contracts/contract/add/", []),
        "contract_amend": (f"/contracts/contract/{contract.pk}/amend/", ["fixed fee", "note"]),
        "contract_end": (f"/contracts/contract/{contract.pk}/end/", []),
        "rate_cards": ("/contracts/ratecard/", ["name", "currency"]),
        "rate_card_versions": ("/contracts/ratecardversion/", ["rate card", "number"]),
        "catalog_prices": ("/contracts/catalogprice/", ["model", "rates", "batch discount"]),
        "wallets": ("/wallets/wallet/", ["customer", "balance", "held", "available"]),
        "wallet": (
            f"/wallets/wallet/{wallet.pk}/change/",
            ["source", "amount", "remaining", "expires (UTC)", "grant or hold"],
        ),
        "wallet_grant": ("/wallets/wallet/grant/", []),
        "wallet_adjust": (f"/wallets/wallet/{wallet.pk}/adjust/", []),
        "alert_settings": ("/wallets/alertsettings/", ["customer", "budget", "balance below"]),
        "alert_setting": (f"/wallets/alertsettings/{first(AlertSettings)}/change/", []),
        "alerts": ("/wallets/alert/", ["fired (UTC)", "customer", "message"]),
        "alert": (f"/wallets/alert/{first(Alert)}/change/", []),
        "alert_deliveries": (
            "/wallets/alertdelivery/",
            ["created (UTC)", "status", "next attempt (UTC)"],
        ),
        "topups": ("/wallets/topuprequest/", ["customer", "amount", "balance then", "status"]),
        "topup": (f"/wallets/topuprequest/{first(TopUpRequest)}/change/", []),
        "usage_events": ("/metering/usageevent/", ["event id", "customer", "model"]),
        "usage_event": (f"/metering/usageevent/{first(UsageEvent)}/change/", []),
        "event_seals": ("/metering/eventseal/", ["sequence", "event count", "hash"]),
        "event_archives": ("/metering/eventarchive/", ["month", "events", "file name", "dropped"]),
    }


#: Pages of rated usage: exact figures (12 places) only. Every other page: billed money.
RATED_PAGES = {"invoice_line_events", "usage_rollups", "usage_rollup", "rated_events",
               "rated_event"}  # fmt: skip

#: What sticks out past the screen's right edge, visible.
STICKING_OUT = """() => [...document.querySelectorAll('body *')].filter(e => {
    const box = e.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && box.right > window.innerWidth + 1
        && getComputedStyle(e).visibility !== 'hidden';
}).slice(0, 6).map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}px`)"""

#: The right edges of the page's column headings (lists, inlines and tables), by text.
HEADINGS = """() => [...document.querySelectorAll('#content thead th')].map(th => [
    (th.querySelector('.text') || th).textContent.trim().replace(/\\s+/g, ' ').toLowerCase(),
    Math.round(th.getBoundingClientRect().right),
])"""


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}{ADMIN}/")
    page.get_by_label("Username:", exact=True).fill("admin")
    page.get_by_label("Password:", exact=True).fill("tokentill-demo")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_every_list_and_page_fits_1280_pixels_with_money_as_people_read_it(
    live_server, browser, settings, demo, artifacts
):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    problems: list[str] = []
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        page = context.new_page()
        log_in(page, live_server.url)
        for name, (path, key_columns) in pages(demo).items():
            answer = page.goto(f"{live_server.url}{ADMIN}{path}")
            where = f"{name} ({size})"
            if answer is None or answer.status != 200:
                problems.append(f"{where}: {answer and answer.status}")
                continue
            page.screenshot(path=artifacts / f"admin_{name}_{size}.png", full_page=True)
            scroll = page.evaluate("() => document.documentElement.scrollWidth")
            if scroll > width:
                problems.append(f"{where}: the page is {scroll}px wide")
            if size == "desktop":
                problems += _cut_off(page, where, key_columns)
                problems += _money_misread(page, where, rated=name in RATED_PAGES)
        context.close()
    assert problems == [], "\n".join(problems)


def _cut_off(page: Page, where: str, key_columns: list[str]) -> list[str]:
    """What a person at 1280 px could not see: anything past the right edge, and the key
    columns (by heading) anywhere but on screen."""
    problems = []
    sticking_out = page.evaluate(STICKING_OUT)
    if sticking_out:
        problems.append(f"{where}: past the screen's edge: {sticking_out}")
    headings = dict(page.evaluate(HEADINGS))
    for column in key_columns:
        right = headings.get(column.lower())
        if right is None or right > 1280:
            problems.append(f"{where}: the column {column!r} is not on screen ({right})")
    return problems


def _money_misread(page: Page, where: str, *, rated: bool) -> list[str]:
    """Money written otherwise than the page's kind says: billed figures with the
    currency's minor places and thousands separators, or (rated usage) exact figures
    with 12 places, never both on one page."""
    text = page.locator("#content").inner_text()
    wrong = []
    for number, currency in MONEY.findall(text):
        rule = EXACT if rated else BILLED[currency]
        if not rule.fullmatch(number):
            wrong.append(f"{number} {currency}")
    return [f"{where}: money misread: {wrong[:5]}"] if wrong else []


def test_quick_choices_fill_the_admins_pickers_in_utc(live_server, page, demo):
    log_in(page, live_server.url)

    # a grant's expiry: in 30 days, to the minute
    page.goto(f"{live_server.url}{ADMIN}/wallets/wallet/grant/")
    # the admin's own picker, beside the expiry (after the grant's effective instant)
    expect(page.get_by_role("link", name="Today").last).to_be_visible()
    page.get_by_role("button", name="in 30 days").click()
    in_30_days = datetime.now(UTC) + timedelta(days=30)
    expect(page.locator("#id_expires_at_0")).to_have_value(f"{in_30_days:%Y-%m-%d}")
    expect(page.locator("#id_expires_at_1")).to_have_value(re.compile(r"^\d\d:\d\d:00$"))

    # a contract's start: the period the cycle and anchors typed so far count
    page.goto(f"{live_server.url}{ADMIN}/contracts/contract/add/")
    page.get_by_label("Billing cycle:").select_option("quarterly")
    page.get_by_label("Anchor day:").fill("15")
    page.get_by_role("button", name="start of this period").click()
    start, _ = period_bounds(timezone.now(), cycle="quarterly", anchor_day=15, anchor_month=1)
    expect(page.locator("#id_starts_at_0")).to_have_value(f"{start:%Y-%m-%d}")
    expect(page.locator("#id_starts_at_1")).to_have_value("00:00:00")
    page.get_by_label("Anchor month:").select_option("February")
    page.get_by_role("button", name="start of this period").click()
    start, _ = period_bounds(timezone.now(), cycle="quarterly", anchor_day=15, anchor_month=2)
    expect(page.locator("#id_starts_at_0")).to_have_value(f"{start:%Y-%m-%d}")

    # an amendment: from the start of the contract's current period, worked out by the server
    contract = Contract.objects.get(customer=demo)
    start, _ = contract.period_bounds(timezone.now())
    page.goto(f"{live_server.url}{ADMIN}/contracts/contract/{contract.pk}/amend/")
    page.get_by_role("button", name=f"start of this period ({start:%Y-%m-%d})").click()
    expect(page.locator("#id_effective_from_0")).to_have_value(f"{start:%Y-%m-%d}")
    expect(page.locator("#id_effective_from_1")).to_have_value("00:00:00")
