"""A customer in a real browser: log in to the portal, watch the spend move as events are
rated (without reloading the page), find another customer's invoice not found, and
download an invoice's PDF.
Screenshots of the dashboard at desktop and phone widths go to test-artifacts/."""

import os
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from pypdf import PdfReader

from billing.models import Invoice
from billing.rating.rater import usage_rate_pending
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create, customer_create
from metering.services import events_ingest
from portal.models import PortalUser

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

PASSWORD = "a-long-portal-password-7"
MILLION_OUT = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's rates


def calls(*event_ids: str, customer: str = "acme", feature: str = "chat") -> None:
    at = timezone.now() - timedelta(seconds=30)
    items = [
        {
            "event_id": event_id,
            "customer_id": customer,
            "timestamp": at.isoformat(),
            "model": "gpt-4o",
            "feature": feature,
            "metrics": MILLION_OUT,
        }
        for event_id in event_ids
    ]
    assert events_ingest(items=items).count("accepted") == len(items)
    usage_rate_pending()


@pytest.fixture
def customers(db):
    """acme and globex on gpt-4o at list prices since this month began; acme's portal
    user; globex's invoice."""
    now = timezone.now()
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    card = rate_card_create(name="Standard", currency="USD", effective_from=month)
    price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates={
            "rate_in": {"amount": "2.50", "per": 1_000_000},
            "rate_out": {"amount": "10.00", "per": 1_000_000},
        },
        formula="input_tokens * rate_in + output_tokens * rate_out",
    )
    acme = customer_create(external_id="acme", name="Acme Corp", currency="USD")
    globex = customer_create(external_id="globex", name="Globex Inc", currency="USD")
    for customer in (acme, globex):
        contract_create(customer=customer, starts_at=month, rate_card=card, anchor_day=1)
    user = get_user_model().objects.create_user(
        username="ada@acme.example", email="ada@acme.example", password=PASSWORD
    )
    PortalUser.objects.create(user=user, customer=acme, role="admin", invited_at=now)
    return Invoice.objects.create(
        customer=globex,
        number="INV-GLOBEX-1",
        currency="USD",
        status=Invoice.Status.FINALIZED,
        period_start=month - timedelta(days=28),
        period_end=month,
        total="12.00",
        created_at=now,
    )


def test_a_customer_watches_the_spend_move_and_cannot_open_another_customers_invoice(
    live_server, page, customers, artifacts
):
    globex_invoice = customers
    calls("e1", "e2")
    calls("s1", feature="search")

    # Given acme's admin logs in
    page.goto(f"{live_server.url}/portal/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Then the dashboard shows the spend so far: three calls of 10.00
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#spend")).to_have_text("30.00")
    page.screenshot(path=artifacts / "portal_dashboard_desktop.png", full_page=True)
    page.evaluate("window.notReloaded = true")

    # When two more calls are ingested and rated
    calls("e3", "e4")

    # Then the spend moves within a refresh, and the page was never reloaded
    expect(page.locator("#spend")).to_have_text("50.00", timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_role("img", name="Usage by model")).to_be_visible()

    # And at phone width the dashboard fits the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#spend")).to_have_text("50.00")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the dashboard is {width} px wide at 390 px"
    page.screenshot(path=artifacts / "portal_dashboard_phone.png", full_page=True)

    # When they try another customer's invoice, it is not found
    response = page.goto(f"{live_server.url}/portal/invoices/{globex_invoice.number}/")
    assert response.status == 404
    assert "INV-GLOBEX-1" not in page.content()


def test_a_customer_downloads_an_invoice_pdf_showing_its_total(live_server, page, customers):
    now = timezone.now()
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    invoice = Invoice.objects.create(
        customer=PortalUser.objects.get().customer,
        number="INV-ACME-1",
        currency="USD",
        status=Invoice.Status.FINALIZED,
        period_start=month - timedelta(days=28),
        period_end=month,
        total="42.50",
        created_at=now,
        finalized_at=now,
    )

    # Given acme's admin logs in and opens the invoice
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Invoices").click()
    page.get_by_role("link", name=invoice.number).click()
    expect(page.locator("#invoice-total")).to_have_text("42.50 USD")

    # When they download its PDF
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"Download invoice {invoice.number} as PDF").click()
    download = download_info.value

    # Then it is the invoice's PDF, with its total
    assert download.suggested_filename == "INV-ACME-1.pdf"
    pdf = PdfReader(BytesIO(Path(download.path()).read_bytes()))
    text = "\n".join(pdf_page.extract_text() for pdf_page in pdf.pages)
    assert "Invoice INV-ACME-1" in text
    assert "Total 42.50 USD" in text
