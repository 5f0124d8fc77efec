"""A customer in a real browser: log in to the portal, read the estimated invoice (the API's
preview to the cent), watch the spend move as events are rated (without reloading the
page), chart another range of days, find another customer's invoice not found, open an
invoice and download its PDF.
Screenshots of the dashboard, an invoice and the wallet at 1280x800 and 390x844 go to
test-artifacts/; at 390 px nothing is wider than the screen."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from billing.models import Invoice, InvoiceLine
from billing.rating.rater import usage_rate_pending
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create, customer_api_key_create, customer_create
from metering.services import events_ingest
from portal.models import PortalUser
from pricing.cycles import span_text
from wallets.services import credit_grant

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

PASSWORD = "a-long-portal-password-7"
MILLION_OUT = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's rates
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


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
    """acme and globex on gpt-4o at list prices since this month began, acme with a fee of
    500.00, an allowance of 20.00, a minimum of 1,000.00 and 25.00 of credits; acme's
    portal user; globex's invoice."""
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
    contract_create(
        customer=acme,
        starts_at=month,
        rate_card=card,
        anchor_day=1,
        fixed_fee=Decimal("500"),
        included_allowance=Decimal("20"),
        minimum_commitment=Decimal("1000"),
    )
    credit_grant(customer=acme, amount="25", source="purchased")
    contract_create(customer=globex, starts_at=month, rate_card=card, anchor_day=1)
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


def preview_total(customer: str) -> str:
    """The invoice preview's total, read with the customer's own read-only key."""
    _, key = customer_api_key_create(
        customer=PortalUser.objects.get().customer, name="check", created_by="test"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    answer = client.get(f"/api/v1/customers/{customer}/invoice-preview")
    assert answer.status_code == 200
    return answer.json()["total"]


def log_in(page, url: str) -> None:
    page.goto(f"{url}/portal/login/")
    page.get_by_label("Username").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def fits_the_phone(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{what} is {width} px wide at 390 px"


def test_a_customer_watches_the_spend_move_and_cannot_open_another_customers_invoice(
    live_server, page, customers, artifacts
):
    globex_invoice = customers
    calls("e1", "e2")
    calls("s1", feature="search")

    # Given acme's admin logs in
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/portal/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Then the dashboard leads with the invoice so far, the API's preview to the cent:
    # 500.00 fee + 30.00 usage - 20.00 allowance + (1,000.00 - 30.00) true-up - 10.00 of
    # credits for the billable usage (30.00 - 20.00) = 1,470.00
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert preview_total("acme") == "1470.00"
    expect(page.locator("#estimate-total")).to_have_text("1,470.00 USD")
    # And the spend so far: three calls of 10.00
    expect(page.locator("#spend")).to_have_text("30.00 USD")
    page.screenshot(path=artifacts / "portal_dashboard_desktop.png", full_page=True)
    page.evaluate("window.notReloaded = true")

    # When two more calls are ingested and rated
    calls("e3", "e4")

    # Then the spend and the estimate move within a refresh, and the page was never
    # reloaded: 500 + 50 - 20 + 950 - 25 (the credits ran out at 25.00) = 1,455.00
    expect(page.locator("#spend")).to_have_text("50.00 USD", timeout=15_000)
    expect(page.locator("#estimate-total")).to_have_text("1,455.00 USD", timeout=15_000)
    assert preview_total("acme") == "1455.00"
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_role("img", name="Usage by model")).to_be_visible()

    # When they chart today alone, with custom dates
    today = timezone.now().date().isoformat()
    page.get_by_label("Range").select_option("custom")
    page.get_by_label("From").fill(today)
    page.get_by_label("To").fill(today)
    page.get_by_role("button", name="Show").click()

    # Then the range is in the address and the by-day chart and its table give today's 50.00
    expect(page).to_have_url(f"{live_server.url}/portal/?range=custom&from={today}&to={today}")
    day_chart = page.get_by_role("img", name="Usage by day")
    expect(day_chart.locator("g > title")).to_have_text([f"{today}: 50.00"])
    expect(page.locator("#usage-by-day tbody tr")).to_have_text([f"{today}550.00"])
    expect(page.locator("#usage-by-model tbody td").last).to_have_text("50.00")

    # And at phone width the dashboard fits the screen
    page.goto(f"{live_server.url}/portal/")
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("#spend")).to_have_text("50.00 USD")
    fits_the_phone(page, "the dashboard")
    page.screenshot(path=artifacts / "portal_dashboard_phone.png", full_page=True)

    # When they try another customer's invoice, it is not found
    response = page.goto(f"{live_server.url}/portal/invoices/{globex_invoice.number}/")
    assert response.status == 404
    assert "INV-GLOBEX-1" not in page.content()


def test_a_customer_opens_an_invoice_downloads_its_pdf_and_reads_the_wallet(
    live_server, page, customers, artifacts
):
    now = timezone.now()
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    acme = PortalUser.objects.get().customer
    invoice = Invoice.objects.create(
        customer=acme,
        number="INV-ACME-1",
        currency="USD",
        status=Invoice.Status.FINALIZED,
        period_start=month - timedelta(days=28),
        period_end=month,
        total="542.50",
        created_at=now,
        finalized_at=now,
    )
    span = {"period_start": invoice.period_start, "period_end": invoice.period_end}
    InvoiceLine.objects.create(
        invoice=invoice, position=1, kind="fixed_fee",
        description=f"Monthly fee, {span_text(invoice.period_start, invoice.period_end)}",
        exact_amount=500, amount=500, unit_price=500, **span,
    )  # fmt: skip
    InvoiceLine.objects.create(
        invoice=invoice, position=2, kind="usage",
        description="GPT-4o", exact_amount=Decimal("42.5"),
        amount=Decimal("42.50"), quantity=17, unit_price=Decimal("2.5"), event_count=17,
        details=[
            {"label": "Input tokens", "quantity": "9000000", "rate": "2.50", "per": "1M tokens"},
            {"label": "Output tokens", "quantity": "2000000", "rate": "10.00",
             "per": "1M tokens"},
        ], **span,
    )  # fmt: skip

    # Given acme's admin logs in and opens the invoice
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url)
    page.get_by_role("link", name="Invoices").click()
    page.get_by_role("link", name=invoice.number).click()
    expect(page.locator("#invoice-total")).to_have_text("542.50 USD")
    expect(page.get_by_text("Output tokens: 2,000,000 at 10.00 USD per 1M tokens")).to_be_visible()
    page.screenshot(path=artifacts / "portal_invoice_desktop.png", full_page=True)

    # When they download its PDF
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"Download invoice {invoice.number} as PDF").click()
    download = download_info.value

    # Then it is the invoice's PDF, with its total
    assert download.suggested_filename == "INV-ACME-1.pdf"
    pdf = PdfReader(BytesIO(Path(download.path()).read_bytes()))
    text = "\n".join(pdf_page.extract_text() for pdf_page in pdf.pages)
    assert "Invoice INV-ACME-1" in text
    assert "Total 542.50 USD" in text

    # And on a phone the invoice is a stack of lines, nothing cut off
    page.set_viewport_size(PHONE)
    page.reload()
    fits_the_phone(page, "the invoice")
    page.screenshot(path=artifacts / "portal_invoice_phone.png", full_page=True)

    # And the wallet, at both widths
    page.get_by_role("link", name="Wallet").click()
    expect(page.locator("#wallet-balance")).to_have_text("25.00 USD")
    fits_the_phone(page, "the wallet")
    page.screenshot(path=artifacts / "portal_wallet_phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.reload()
    page.screenshot(path=artifacts / "portal_wallet_desktop.png", full_page=True)
