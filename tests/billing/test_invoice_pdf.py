"""An invoice as a PDF (billing.invoicing.pdf) and its download, GET .../invoices/{number}/pdf.

The scenario is test_invoice_api.py's: acme's November invoiced as INV-000001, 59.00.
"""

from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from billing.invoicing.credit_notes import credit_note_issue
from billing.invoicing.pdf.invoice import invoice_pdf
from billing.models import Invoice, InvoiceLine
from contracts.services import customer_api_key_create, customer_create

from . import test_invoice_api as scenario

clock, amended, invoice = scenario.clock, scenario.amended, scenario.invoice
URL = "/api/v1/customers/acme/invoices/INV-000001/pdf"


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)


def test_the_pdf_names_the_invoice_and_shows_each_amount_and_the_total_as_billed(invoice):
    pdf = invoice_pdf(invoice=invoice)
    text = text_of(pdf)

    assert pdf.startswith(b"%PDF-")
    assert "Invoice number INV-000001" in text
    assert "BILL TO\nAcme Corp\n" in text
    assert "Period 2026-11-01 to 2026-11-30" in text
    assert "Total 59.00 USD" in text
    for amount in ("15.00", "30.00", "20.00", "10.00", "-1.00", "-10.00", "-5.00"):
        assert f"{amount} USD" in text
    assert "gpt-4o, 2026-11-01 to 2026-11-15 2 10.00 20.00 USD" in text  # quantity, unit price


def test_the_pdf_shows_the_stored_amounts_never_recomputed_ones(invoice):
    # A line stored as 20.00 whose exact figures would say otherwise: the PDF shows 20.00.
    InvoiceLine.objects.filter(invoice=invoice, position=3).update(
        exact_amount=Decimal("19.994"), unit_price=Decimal("9.997")
    )
    invoice = Invoice.objects.get(pk=invoice.pk)

    text = text_of(invoice_pdf(invoice=invoice))

    assert "20.00 USD" in text
    assert "19.99 USD" not in text
    assert "Total 59.00 USD" in text


def test_the_pdf_lists_the_credit_notes(invoice):
    credit_note_issue(
        invoice=invoice,
        amount=Decimal("10.00"),
        memo="Outage on Nov 12",
        destination="none",
        created_by="ops",
    )

    text = text_of(invoice_pdf(invoice=invoice))

    assert "Credit notes" in text
    assert "CN-000001, 2026-12-02, Goodwill: Outage on Nov 12: 10.00 USD" in text


@pytest.mark.parametrize(
    ("currency", "stored", "unit_price", "amount"),
    [
        ("JPY", "1235", "15", "1,235 JPY"),  # with thousands separators, as people read it
        ("BHD", "1.235", "15.000", "1.235 BHD"),
        ("USD", "7", "15.00", "7.00 USD"),
    ],
)
def test_amounts_carry_the_currencys_minor_places(invoice, currency, stored, unit_price, amount):
    Invoice.objects.filter(pk=invoice.pk).update(currency=currency)
    InvoiceLine.objects.filter(invoice=invoice, position=1).update(amount=Decimal(stored))
    invoice = Invoice.objects.get(pk=invoice.pk)

    text = text_of(invoice_pdf(invoice=invoice))

    assert f"Monthly fee, 2026-11-01 to 2026-11-15 1 {unit_price} {amount}" in text


def test_the_download_is_an_attachment_named_after_the_invoice(api, invoice):
    response = api.get(URL, HTTP_ACCEPT="application/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'
    assert response.content == invoice_pdf(invoice=invoice)


def test_the_customers_own_key_downloads_it_and_another_customers_cannot(api, invoice):
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    _, own = customer_api_key_create(customer=invoice.customer, name="k", created_by="a")
    _, theirs = customer_api_key_create(customer=globex, name="k", created_by="b")

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {own}")
    mine = api.get(URL)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {theirs}")
    not_mine = api.get(URL)
    via_own_id = api.get("/api/v1/customers/globex/invoices/INV-000001/pdf")

    assert mine.status_code == 200
    assert mine.content.startswith(b"%PDF-")
    assert (not_mine.status_code, not_mine.json()) == (
        404,
        {"detail": "No customer with external_id 'acme'."},
    )
    assert (via_own_id.status_code, via_own_id.json()) == (
        404,
        {"detail": "No invoice INV-000001 for customer 'globex'."},
    )


def test_an_unknown_invoice_is_a_json_404_even_when_asking_for_a_pdf(api, invoice):
    response = api.get(
        "/api/v1/customers/acme/invoices/INV-999999/pdf", HTTP_ACCEPT="application/pdf"
    )

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "No invoice INV-999999 for customer 'acme'."}


def test_a_credit_note_downloads_as_a_pdf_with_the_invoices_access_rules(api, invoice):
    credit_note_issue(
        invoice=invoice, amount=Decimal("3.00"), memo="Outage", destination="none", created_by="o"
    )
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    _, own = customer_api_key_create(customer=invoice.customer, name="k", created_by="a")
    _, theirs = customer_api_key_create(customer=globex, name="k", created_by="b")
    url = f"{URL.removesuffix('/pdf')}/credit-notes/CN-000001/pdf"

    operator = api.get(url)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {own}")
    mine = api.get(url)
    unknown = api.get(url.replace("CN-000001", "CN-000002"))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {theirs}")
    not_mine = api.get(url)

    assert operator.status_code == 200
    assert operator["Content-Disposition"] == 'attachment; filename="CN-000001.pdf"'
    assert "Amount credited 3.00 USD" in text_of(operator.content)
    assert mine.content == operator.content
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"detail": "Invoice INV-000001 has no credit note CN-000002."},
    )
    assert (not_mine.status_code, not_mine.json()) == (
        404,
        {"detail": "No customer with external_id 'acme'."},
    )
