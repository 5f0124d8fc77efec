"""A credit note as a PDF document: what was credited against which invoice, why, and
where the credit went. Its amount is the note's own, as stored (`money_label`)."""

from pricing.money import money_label

from ...models import CreditNote
from ...selectors import seller_details
from .document import Document, Fact, bill_to, day, header

#: Where the credit went, as the customer reads it.
_DESTINATIONS: dict[str, str] = {
    CreditNote.Destination.WALLET: "Added to your prepaid credits.",
    CreditNote.Destination.STRIPE: "Credited against the invoice in Stripe: it lowers what "
    "the invoice asks for, or is refunded or kept as balance once the invoice is paid.",
    CreditNote.Destination.NONE: "Deducted from the amount due on the invoice.",
}


def credit_note_pdf(*, credit_note: CreditNote) -> bytes:
    """The credit note as PDF bytes: seller, bill-to, its number and date, the invoice it
    credits, the reason, the amount and where the credit went."""
    note, invoice = credit_note, credit_note.invoice
    doc = Document(
        title=f"Credit note {note.number}",
        footer=f"Credit note {note.number} for invoice {invoice.number}",
        created=note.created_at,
    )
    facts = [
        Fact("Number", note.number),
        Fact("Date", day(note.created_at)),
        Fact("Invoice", f"{invoice.number} of {day(invoice.finalized_at)}"),
    ]
    header(doc, seller=seller_details(), title="CREDIT NOTE", facts=facts)
    bill_to(doc, invoice.customer)

    reason = note.get_reason_display()
    doc.heading("Reason")
    doc.line_of(f"{reason}: {note.memo}" if note.memo else reason)
    doc.heading("Credited")
    doc.sums([("Amount credited", money_label(note.amount, invoice.currency), True)])
    doc.heading("Where the credit went")
    doc.line_of(_DESTINATIONS.get(note.destination, note.get_destination_display()))
    return doc.output_bytes()
