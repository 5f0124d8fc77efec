"""An invoice as a PDF document, for the customer to download, file and pay.

Every figure is the invoice's own, as stored: each line's rounded `amount`, the `total`
(the sum of the rounded lines) and the credit notes' amounts, with the currency's minor
places (`pricing.money.money_label`). Nothing is re-rated or rounded again here, so the
PDF, the invoice API and Stripe agree to the cent. The face reads top to bottom as a
person checks it: the lines before credits add up to the subtotal; the prepaid credits
applied (the invoice's credits lines) take it to the total; the credit notes issued
against the invoice take the total to the amount due (`pricing.invoice.amount_due`).
Quantities and unit prices are the lines' exact figures, as the API shows them; beneath a
usage line, what it billed per metric (`InvoiceLine.details`).
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from fpdf.fonts import FontFace

from pricing.cycles import span_text
from pricing.money import minor_places, money_label, plain

from ...models import Invoice, InvoiceLine
from ...selectors import invoice_face, seller_details
from .document import MARGIN, WIDTH, Document, Fact, bill_to, day, header

_HEADINGS = ("Description", "Quantity", "Unit price", "Amount")
_WIDTHS = (88, 30, 30, 32)  # mm, of the 180 between the margins
_DETAIL = FontFace(size_pt=8, color=(90, 90, 90))


def invoice_pdf(*, invoice: Invoice) -> bytes:
    """The invoice as PDF bytes: seller, bill-to, number and dates, lines (with what each
    usage line billed per metric), subtotal, credits, total, credit notes and amount due."""
    currency = invoice.currency
    face = invoice_face(invoice=invoice)

    def billed(value: Decimal) -> str:
        return money_label(value, currency)

    doc = Document(
        title=f"Invoice {invoice.number}",
        footer=f"Invoice {invoice.number}",
        created=invoice.finalized_at or invoice.created_at,
    )
    facts = [
        Fact("Invoice number", invoice.number or "draft"),
        Fact("Issue date", day(invoice.finalized_at)),
        Fact("Due date", _due_text(invoice)),
        Fact("Period", span_text(invoice.period_start, invoice.period_end)),
        Fact("Status", invoice.get_status_display()),
    ]
    header(doc, seller=seller_details(), title="INVOICE", facts=facts)
    bill_to(doc, invoice.customer)

    doc.use(9)
    with doc.table(
        col_widths=_WIDTHS,
        width=WIDTH,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        first_row_as_headings=True,
        borders_layout="HORIZONTAL_LINES",
        padding=(1, 1),
    ) as table:
        table.row(_HEADINGS)
        places = minor_places(currency)
        for line in face.charges:
            table.row(
                [
                    line.description,
                    _exact(line.quantity),
                    _exact(line.unit_price, places),
                    billed(line.amount),
                ]
            )
            for detail in _details(line):
                row = table.row()
                row.cell(f"    {detail['label']}", style=_DETAIL)
                row.cell(detail["quantity"], style=_DETAIL)
                row.cell(detail["rate"], style=_DETAIL)
                row.cell("", style=_DETAIL)

    doc.ln(3)
    sums = [("Subtotal", billed(face.subtotal), False)]
    sums += [(line.description, billed(line.amount), False) for line in face.credits]
    sums.append(("Total", billed(invoice.total), True))
    sums += [
        (f"Credit note {note.number} ({day(note.created_at)})", billed(-note.amount), False)
        for note in face.notes
    ]
    sums.append(("Amount due", billed(face.amount_due), True))
    doc.sums(sums)

    doc.ln(4)
    for text in _status_notes(invoice):
        doc.line_of(text, size=9)
    if (
        invoice.stripe_hosted_url
        and invoice.status == Invoice.Status.FINALIZED
        and face.amount_due > 0
    ):
        doc.line_of("Pay online:", size=9, bold=True)
        doc.use(9, color=(20, 70, 160))
        doc.set_x(MARGIN)
        doc.multi_cell(0, 5, invoice.stripe_hosted_url, link=invoice.stripe_hosted_url)
    if face.notes:
        doc.heading("Credit notes issued against this invoice")
        for note in face.notes:
            memo = f": {note.memo}" if note.memo else ""
            doc.line_of(
                f"{note.number}, {day(note.created_at)}, {note.get_reason_display()}{memo}: "
                f"{billed(note.amount)}",
                size=9,
            )
    return doc.output_bytes()


def _due_text(invoice: Invoice) -> str:
    if invoice.due_at is None:
        return ""
    if invoice.finalized_at and day(invoice.due_at) == day(invoice.finalized_at):
        return f"{day(invoice.due_at)} (on receipt)"
    return day(invoice.due_at)


def _status_notes(invoice: Invoice) -> list[str]:
    if invoice.status == Invoice.Status.PAID and invoice.paid_at:
        return [f"Paid on {day(invoice.paid_at)}. Thank you."]
    if invoice.status == Invoice.Status.VOID:
        return [f"Voided on {day(invoice.voided_at)}: nothing is due."]
    if invoice.status == Invoice.Status.UNCOLLECTIBLE:
        return ["Marked uncollectible."]
    return []


def _details(line: InvoiceLine) -> list[dict[str, str]]:
    """What a usage line billed per metric, as text: "1,200,000" and "2.50 / 1M tokens"
    ("tiered" when no single rate applies). Entries of another shape are left out."""
    shown = []
    for detail in line.details or []:
        if not isinstance(detail, dict) or not detail.get("label"):
            continue
        shown.append(
            {
                "label": str(detail["label"]),
                "quantity": _grouped(detail.get("quantity")),
                "rate": _rate(detail.get("rate"), detail.get("per")),
            }
        )
    return shown


def _grouped(value: Any) -> str:
    """A quantity with thousands separators: 1200000 as 1,200,000, 12.5 as 12.5."""
    if value is None:
        return ""
    try:
        return f"{Decimal(str(value)):,}"
    except InvalidOperation:
        return str(value)


def _rate(rate: Any, per: Any) -> str:
    if rate is None:
        return "tiered"
    return f"{rate} / {per}" if per else str(rate)


def _exact(value: Decimal | None, places: int = 0) -> str:
    """An exact figure with no trailing zeros past `places`: 2.000000000000 as "2", a unit
    price of 15 in USD as "15.00", 0.000002500000 as "0.0000025"."""
    return "" if value is None else plain(value, places)
