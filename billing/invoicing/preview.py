"""The invoice the current period would produce now: its draft, shown as an invoice.

Closing's own code (`draft.invoice_draft`) from the period's rollups, so the preview is
what closing would bill, in the same shape as a stored invoice; nothing is stored, and it
reads a few rows whatever the number of events.
"""

from dataclasses import dataclass
from datetime import datetime

from contracts.models import ContractTerms, Customer, Price

from ..models import Invoice, InvoiceLine
from ..periods import period_of
from .draft import invoice_draft


@dataclass
class InvoicePreview:
    """The invoice the current period would produce now, unsaved: `invoice` has no number
    and `lines` carry their prices and terms as stored lines do."""

    invoice: Invoice
    lines: list[InvoiceLine]


def invoice_preview(*, customer: Customer, at: datetime) -> InvoicePreview:
    """The draft of the period holding `at`, from its rollups, as closing would produce it
    (`draft.invoice_draft`): a few rows whatever the number of events."""
    start, end = period_of(customer=customer, at=at)
    draft = invoice_draft(customer=customer, start=start, end=end, at=at)
    prices = Price.objects.select_related("version__rate_card").in_bulk(
        {line.price_id for line in draft.lines if line.price_id}
    )
    terms = ContractTerms.objects.in_bulk({line.terms_id for line in draft.lines if line.terms_id})
    invoice = Invoice(
        customer=customer,
        currency=customer.currency,
        period_start=start,
        period_end=end,
        total=draft.total,
        created_at=at,
    )
    lines = []
    for position, line in enumerate(draft.lines, start=1):
        # A draft line's fields are a stored line's, with the amount rounded as closing does.
        shown = InvoiceLine(
            invoice=invoice, position=position, amount=line.amount(invoice.currency), **vars(line)
        )
        shown.price, shown.terms = prices.get(line.price_id), terms.get(line.terms_id)
        lines.append(shown)
    return InvoicePreview(invoice=invoice, lines=lines)
