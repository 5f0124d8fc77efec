"""The billing webhook events of invoices and credit notes: an invoice finalized, paid or
voided, a credit note issued. Each is emitted by the service that makes the change, in
its transaction (webhooks.services.event_emit).

Money is as billed: rounded to the currency's minor unit and written with its places
("59.00" in USD, "1235" in JPY), as the invoice API answers it.
"""

from typing import Any

from pricing.money import minor_text
from webhooks.events import instant_text
from webhooks.services import event_emit

from .models import CreditNote, Invoice


def invoice_event_emit(*, invoice_id: int, event_type: str) -> None:
    """invoice.finalized, invoice.paid or invoice.voided, with the invoice as stored now
    (read again: the callers change it with UPDATEs)."""
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    event_emit(event_type=event_type, data=_invoice_data(invoice))


def credit_note_event_emit(*, note: CreditNote) -> None:
    invoice = note.invoice
    currency = invoice.currency
    data = {
        "customer_id": invoice.customer.external_id,
        "credit_note_number": note.number,
        "invoice_number": invoice.number,
        "reason": note.reason,
        "destination": note.destination,
        "amount": minor_text(note.amount, currency),
        "currency": currency,
        "memo": note.memo,
        "created_at": instant_text(note.created_at),
    }
    event_emit(event_type="credit_note.created", data=data)


def _invoice_data(invoice: Invoice) -> dict[str, Any]:
    currency = invoice.currency
    return {
        "customer_id": invoice.customer.external_id,
        "invoice_number": invoice.number,
        "status": invoice.status,
        "currency": currency,
        "total": minor_text(invoice.total, currency),
        "period_start": instant_text(invoice.period_start),
        "period_end": instant_text(invoice.period_end),
        "finalized_at": instant_text(invoice.finalized_at),
        "paid_at": instant_text(invoice.paid_at),
        "voided_at": instant_text(invoice.voided_at),
        "stripe_id": invoice.stripe_id or None,
    }
