"""The invoice and credit-note documents (billing.invoicing.pdf): seller, bill-to, dates,
what a usage line billed per metric, the amount due, any script, page numbers.

The scenario is test_invoice_api.py's: acme's November invoiced as INV-000001 on
2026-12-02, 59.00 USD: fees 15.00 + 30.00, usage 20.00 + 10.00, discount -1.00, allowance
-10.00 (a subtotal of 64.00), prepaid credits -5.00, total 59.00.
"""

import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from billing.invoicing.credit_notes import credit_note_issue
from billing.invoicing.pdf.credit_note import credit_note_pdf
from billing.invoicing.pdf.fonts import PdfFontMissing
from billing.invoicing.pdf.invoice import invoice_pdf
from billing.models import Invoice, InvoiceLine, SellerDetails
from contracts.models import Customer

from . import test_invoice_api as scenario

clock, amended, invoice = scenario.clock, scenario.amended, scenario.invoice
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
JAPANESE, GREEK = "株式会社テスト", "Ελληνική Εταιρεία"


def pages_of(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(pdf)).pages]


def text_of(pdf: bytes) -> str:
    return "\n".join(pages_of(pdf))


def flat(text: str) -> str:
    """The text with its line breaks as spaces: a wrapped value reads as one."""
    return " ".join(text.split())


@pytest.fixture
def seller(settings):
    settings.TOKENTILL_SELLER_NAME = "Tokentill Networks Ltd"
    settings.TOKENTILL_SELLER_ADDRESS = "1 Harbour Street\nLondon E1 6AN\nUnited Kingdom"
    settings.TOKENTILL_SELLER_TAX_ID = "GB123456789"
    settings.TOKENTILL_SELLER_EMAIL = "billing@tokentill.example"


@pytest.fixture
def billed_to(invoice) -> Customer:
    customer = invoice.customer
    Customer.objects.filter(pk=customer.pk).update(
        legal_name="Acme Corporation Ltd",
        billing_address="42 Main Street\nSpringfield 12345",
        tax_id="US-98-7654321",
        email="ap@acme.example",
    )
    customer.refresh_from_db()
    return customer


def test_the_invoice_names_the_seller_and_whom_it_bills(seller, billed_to, invoice):
    text = flat(text_of(invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk))))

    assert "Tokentill Networks Ltd 1 Harbour Street London E1 6AN United Kingdom" in text
    assert "Tax ID: GB123456789 billing@tokentill.example" in text
    assert "BILL TO Acme Corporation Ltd 42 Main Street Springfield 12345" in text
    assert "Tax ID: US-98-7654321 ap@acme.example Customer ID: acme" in text


def test_the_seller_saved_in_the_admin_wins_over_the_settings(seller, invoice):
    SellerDetails.objects.create(name="Till GmbH", address="Hauptstraße 1\n10115 Berlin")

    text = flat(text_of(invoice_pdf(invoice=invoice)))

    assert "Till GmbH Hauptstraße 1 10115 Berlin" in text
    assert "Tokentill Networks" not in text
    assert "GB123456789" not in text  # the saved row has no tax id: none is printed


def test_without_a_legal_name_the_bill_to_is_the_customers_name(invoice):
    text = flat(text_of(invoice_pdf(invoice=invoice)))

    assert "BILL TO Acme Corp billing@acme.example Customer ID: acme" in text


def test_number_dates_period_and_the_sums_from_subtotal_to_amount_due(invoice):
    credit_note_issue(
        invoice=invoice, amount=Decimal("9.50"), memo="Outage", destination="none", created_by="o"
    )

    text = flat(text_of(invoice_pdf(invoice=invoice)))

    assert "Invoice number INV-000001 Issue date 2026-12-02" in text
    assert "Due date 2027-01-01" in text  # 2 December + 30 days (29 in December, 1 in January)
    assert "Period 2026-11-01 to 2026-11-30" in text
    # 15 + 30 + 20 + 10 - 1 - 10 = 64.00; 64.00 - 5.00 = 59.00; 59.00 - 9.50 = 49.50
    assert (
        "Subtotal 64.00 USD Prepaid credits applied, 2026-11-01 to 2026-11-30 -5.00 USD "
        "Total 59.00 USD Credit note CN-000001 (2026-12-02) -9.50 USD Amount due 49.50 USD"
    ) in text
    assert "CN-000001, 2026-12-02, Goodwill: Outage: 9.50 USD" in text


def test_a_usage_line_shows_what_it_billed_per_metric_beneath_it(invoice):
    text = text_of(invoice_pdf(invoice=invoice))

    # Two calls of 1,000,000 output tokens at 10.00 per 1M: 20.00
    assert (
        "gpt-4o, 2026-11-01 to 2026-11-15 2 10.00 20.00 USD\n"
        "    Output tokens 2,000,000 10.00 / 1M tokens\n"
    ) in text


def test_a_metric_without_a_single_rate_prints_tiered(invoice):
    InvoiceLine.objects.filter(invoice=invoice, position=3).update(
        details=[{"metric": "output_tokens", "label": "Output tokens", "quantity": "2000000",
                  "rate": None, "per": None}]
    )  # fmt: skip

    assert "Output tokens 2,000,000 tiered" in text_of(invoice_pdf(invoice=invoice))


@pytest.mark.parametrize("name", [JAPANESE, GREEK, "Société Générale € Ωmega 東京"])
def test_any_script_prints_as_written(invoice, name):
    Customer.objects.filter(pk=invoice.customer_id).update(legal_name=name)

    text = text_of(invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk)))

    assert f"BILL TO\n{name}\n" in text
    assert "?" not in text


def test_a_japanese_name_embeds_only_the_glyphs_it_uses(invoice):
    plain = invoice_pdf(invoice=invoice)
    Customer.objects.filter(pk=invoice.customer_id).update(legal_name=JAPANESE)

    japanese = invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk))

    # The CJK font is subset: seven characters add a few KB, not its 4 MB.
    assert len(plain) < 40_000
    assert len(japanese) - len(plain) < 20_000


def test_a_long_invoice_breaks_across_pages_numbered_with_the_header_repeated(invoice):
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=100 + number,
            kind=InvoiceLine.Kind.USAGE,
            description=f"model-{number:03d}",
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            quantity=Decimal(1),
            unit_price=Decimal(0),
            exact_amount=Decimal(0),
            amount=Decimal(0),
        )
        for number in range(120)
    )

    pages = pages_of(invoice_pdf(invoice=invoice))

    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"Invoice INV-000001 · Page {number} of {len(pages)}" in page
        assert "Description Quantity Unit price Amount" in page
    every = "\n".join(pages)
    assert all(f"model-{number:03d} " in every for number in range(120))
    assert "Amount due 59.00 USD" in flat(pages[-1])


def test_the_due_date_reads_on_receipt_for_terms_of_zero_days(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(due_at=invoice.finalized_at)

    text = flat(text_of(invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk))))

    assert "Due date 2026-12-02 (on receipt)" in text


def test_a_paid_invoice_says_so_and_links_to_stripe_only_while_open(invoice):
    url = "https://invoice.stripe.com/i/acct_1/test_abc"
    Invoice.objects.filter(pk=invoice.pk).update(stripe_hosted_url=url)
    open_text = flat(text_of(invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk))))
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=invoice.finalized_at + timedelta(days=3)
    )

    paid_text = flat(text_of(invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk))))

    assert f"Pay online: {url}" in open_text
    assert "Paid on 2026-12-05. Thank you." in paid_text
    assert "Pay online" not in paid_text


def test_the_credit_note_document(seller, billed_to, invoice):
    note = credit_note_issue(
        invoice=invoice,
        amount=Decimal("12.34"),
        memo="Outage on Nov 12",
        destination="none",
        created_by="ops",
    )

    text = flat(text_of(credit_note_pdf(credit_note=note)))

    assert "Tokentill Networks Ltd 1 Harbour Street" in text
    assert "CREDIT NOTE Number CN-000001 Date 2026-12-02 Invoice INV-000001 of 2026-12-02" in text
    assert "BILL TO Acme Corporation Ltd 42 Main Street Springfield 12345" in text
    assert "Reason Goodwill: Outage on Nov 12" in text
    assert "Amount credited 12.34 USD" in text
    assert "Where the credit went Deducted from the amount due on the invoice." in text
    assert "Credit note CN-000001 for invoice INV-000001 · Page 1 of 1" in text


def test_a_missing_font_is_an_error_naming_the_package(settings, invoice, tmp_path):
    settings.TOKENTILL_PDF_FONT = str(tmp_path / "gone.ttf")

    with pytest.raises(PdfFontMissing, match=r"apt-get install fonts-dejavu-core"):
        invoice_pdf(invoice=invoice)


def test_a_missing_cjk_font_stops_only_a_document_that_needs_it(settings, invoice, tmp_path):
    settings.TOKENTILL_PDF_FONT_CJK = str(tmp_path / "gone.ttf")
    assert invoice_pdf(invoice=invoice).startswith(b"%PDF-")
    Customer.objects.filter(pk=invoice.customer_id).update(legal_name=JAPANESE)

    with pytest.raises(PdfFontMissing, match=r"apt-get install fonts-droid-fallback"):
        invoice_pdf(invoice=Invoice.objects.get(pk=invoice.pk))


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="pdftoppm (poppler-utils) is missing")
def test_the_documents_render_as_pictures(seller, billed_to, invoice):
    """Renders the invoice (Japanese bill-to, a credit note, details) and a credit note to
    PNG in test-artifacts/, to look at."""
    Customer.objects.filter(pk=invoice.customer_id).update(legal_name=JAPANESE)
    note = credit_note_issue(
        invoice=invoice, amount=Decimal("9.50"), memo="Outage", destination="none", created_by="o"
    )
    invoice = Invoice.objects.get(pk=invoice.pk)
    ARTIFACTS.mkdir(exist_ok=True)
    for name, pdf in (
        ("invoice-pdf", invoice_pdf(invoice=invoice)),
        ("credit-note-pdf", credit_note_pdf(credit_note=note)),
    ):
        path = ARTIFACTS / f"{name}.pdf"
        path.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", path, ARTIFACTS / name],
            check=True,
        )
        assert (ARTIFACTS / f"{name}-1.png").stat().st_size > 10_000
