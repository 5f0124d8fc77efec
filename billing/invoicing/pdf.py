"""An invoice as a PDF document, for the customer to download and file.

Every figure is the invoice's own, as stored: each line's rounded `amount`, the `total`
(the sum of the rounded lines) and the credit notes' amounts, shown with the currency's
minor places (pricing.money.minor_places). Nothing is recomputed here, so the PDF, the
invoice API and Stripe agree to the cent. Quantities and unit prices are the lines' exact
figures, as the API shows them.

fpdf2 writes the document in pure Python. Its built-in Helvetica covers Latin-1 (and the
Windows-1252 extras such as the euro sign); any other character prints as "?".
"""

from datetime import datetime
from decimal import Decimal

from fpdf import FPDF

from pricing.cycles import span_text
from pricing.money import minor_places, money_label, plain

from ..models import Invoice

_ENCODING = "windows-1252"
_LINE_HEADINGS = ("Description", "Quantity", "Unit price", "Amount")
_LINE_WIDTHS = (92, 30, 34, 34)  # mm, of A4's 190 between 10 mm margins


def invoice_pdf(*, invoice: Invoice) -> bytes:
    """The invoice, its lines, total and credit notes as PDF bytes."""
    currency = invoice.currency
    places = minor_places(currency)

    def billed(value: Decimal) -> str:
        return money_label(value, currency)

    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_creation_date(invoice.finalized_at or invoice.created_at)
    pdf.set_margins(10, 10, 10)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 16)
    _text_line(pdf, f"Invoice {invoice.number}", height=10)
    pdf.set_font("Helvetica", size=10)
    _text_line(pdf, f"Customer: {invoice.customer.name} ({invoice.customer.external_id})")
    _text_line(pdf, f"Period: {span_text(invoice.period_start, invoice.period_end)}")
    _text_line(pdf, f"Status: {invoice.get_status_display()}")
    if invoice.finalized_at:
        _text_line(pdf, f"Issued: {_day(invoice.finalized_at)}")
    pdf.ln(4)

    pdf.set_font("Helvetica", size=9)
    with pdf.table(
        col_widths=_LINE_WIDTHS,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        first_row_as_headings=True,
    ) as table:
        table.row([_safe(heading) for heading in _LINE_HEADINGS])
        for line in invoice.lines.all():
            table.row(
                [
                    _safe(line.description),
                    _exact(line.quantity),
                    _exact(line.unit_price, places),
                    billed(line.amount),
                ]
            )
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    _text_line(pdf, f"Total: {billed(invoice.total)}", align="R")

    notes = list(invoice.credit_notes.all())
    if notes:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 11)
        _text_line(pdf, "Credit notes")
        pdf.set_font("Helvetica", size=9)
        for note in notes:
            memo = f": {note.memo}" if note.memo else ""
            _text_line(
                pdf,
                f"{note.number}, {_day(note.created_at)}, {note.get_reason_display()}{memo}: "
                f"{billed(note.amount)}",
            )
    return bytes(pdf.output())


def _text_line(pdf: FPDF, text: str, *, height: float = 6, align: str = "L") -> None:
    pdf.multi_cell(0, height, _safe(text), align=align, new_x="LMARGIN", new_y="NEXT")


def _safe(text: str) -> str:
    """`text` with what Helvetica cannot print replaced by "?"."""
    return text.encode(_ENCODING, "replace").decode(_ENCODING)


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _exact(value: Decimal | None, places: int = 0) -> str:
    """An exact figure with no trailing zeros past `places`: 2.000000000000 as "2", a unit
    price of 15 in USD as "15.00", 0.000002500000 as "0.0000025"."""
    return "" if value is None else plain(value, places)
