"""A customer opens a credit note from its invoice's page in the portal and downloads its
PDF. Screenshots of the credit note's page at desktop and phone widths go to
test-artifacts/."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from django.utils import timezone
from pypdf import PdfReader

from billing.invoicing.credit_notes import credit_note_issue
from billing.models import Invoice
from portal.models import PortalUser

from .test_portal import PASSWORD, customers, expect

pytestmark = pytest.mark.browser
__all__ = ["customers"]  # the fixture, used by name


def test_a_customer_opens_a_credit_note_and_downloads_it(live_server, page, customers, artifacts):
    now = timezone.now()
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    invoice = Invoice.objects.create(
        customer=PortalUser.objects.get().customer,
        number="INV-ACME-1",
        currency="USD",
        status=Invoice.Status.FINALIZED,
        period_start=month - timedelta(days=28),
        period_end=month,
        total="1234.50",
        created_at=now,
        finalized_at=now,
        due_at=now + timedelta(days=30),
    )
    credit_note_issue(
        invoice=invoice,
        amount=Decimal("234.50"),
        memo="Outage on the 12th: four hours of failed calls",
        destination="none",
        created_by="ops",
    )

    # Given acme's admin opens the invoice
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/portal/invoices/{invoice.number}/")

    # When they follow its credit note
    page.get_by_role("link", name="CN-000001").click()

    # Then the credit note's page shows it, with money as billed
    expect(page.locator("h1")).to_have_text("Credit note CN-000001")
    expect(page.locator("#credit-note-amount")).to_have_text("234.50 USD")
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=artifacts / f"portal-credit-note-{width}.png", full_page=True)

    # And its PDF downloads
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download credit note CN-000001 as PDF").click()
    download = download_info.value
    assert download.suggested_filename == "CN-000001.pdf"
    pdf = PdfReader(BytesIO(Path(download.path()).read_bytes()))
    text = " ".join(pdf.pages[0].extract_text().split())
    assert "CREDIT NOTE Number CN-000001" in text
    assert "Amount credited 234.50 USD" in text
