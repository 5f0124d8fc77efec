"""Credit notes billing ops issue: goodwill and voids, never past the invoice's total.

A credit note corrects a finalized invoice without editing it. `credit_note_create`
numbers, rounds and stores a note and grants its credits when they go to the wallet;
closing calls it for usage re-rated lower. The actions people take in the admin and over
the API:

- `credit_note_issue`: goodwill, an amount in the currency's minor unit;
- `invoice_void`: credits what is left of the invoice and marks it void.

Both refuse a draft or void invoice, and an amount that would take the invoice's credit
notes past its total (nothing is stored then). They lock the customer first, as closing
does, so two notes at once cannot both take the last of an invoice.

Where the credit goes (`destination`): `wallet` grants it as refund credits at once, and
only for a paid invoice (credits for an unpaid one would give back money never received);
`none` records it only, lowering what is due; `stripe` records it for the Stripe sync,
which pushes each note with destination stripe and no `stripe_id` against the invoice's
Stripe invoice (and voids a voided invoice there). Nothing here calls Stripe.
"""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common.audit import audit_record
from contracts.models import Customer
from pricing.invoice import amount_due
from pricing.money import minor_places, money_label, money_round
from wallets.models import CreditGrant
from wallets.services import credit_grant

from ..models import CreditNote, Invoice
from ..webhook_events import credit_note_event_emit, invoice_event_emit
from .numbers import number_next

#: What a credit note may be issued on: a finalized invoice, paid or not.
CREDITABLE = (Invoice.Status.FINALIZED, Invoice.Status.PAID, Invoice.Status.UNCOLLECTIBLE)


def refund_destination(invoice: Invoice) -> str:
    """Where a credit note that closing issues goes: to Stripe against the invoice when the
    invoice is there (the customer pays through Stripe); to the wallet as credits when it
    was paid; else nowhere but the invoice, whose amount due it lowers (money never
    received is never given back as credits)."""
    if invoice.stripe_id:
        return CreditNote.Destination.STRIPE
    if invoice.status == Invoice.Status.PAID:
        return CreditNote.Destination.WALLET
    return CreditNote.Destination.NONE


def credit_note_create(
    *,
    invoice: Invoice,
    amount: Decimal,
    reason: str,
    memo: str = "",
    destination: str = CreditNote.Destination.WALLET,
    created_by: str = "",
    now: datetime | None = None,
) -> CreditNote:
    """Credit a finalized invoice without editing it: numbered from the credit-note
    sequence, rounded once like a line; credited to the customer's wallet as a refund
    grant (destination wallet), or recorded for Stripe or only."""
    now = now or timezone.now()
    currency = invoice.currency
    with transaction.atomic():
        note = CreditNote.objects.create(
            invoice=invoice,
            number=number_next("credit-notes", settings.TOKENTILL_CREDIT_NOTE_PREFIX),
            reason=reason,
            memo=memo,
            destination=destination,
            exact_amount=amount,
            amount=money_round(amount, currency),
            created_by=created_by,
            created_at=now,
        )
        if destination == CreditNote.Destination.WALLET and note.amount > 0:
            credit_grant(
                customer=invoice.customer,
                amount=note.amount,
                currency=currency,
                source=CreditGrant.Source.REFUND,
                reason=f"credit note {note.number} on {invoice.number}",
                created_by=created_by,
            )
        credit_note_event_emit(note=note)
    return note


def invoice_credit_left(*, invoice: Invoice) -> Decimal:
    """What credit notes may still take from the invoice: its amount due, the total less
    the notes on it (`pricing.invoice.amount_due`). Every note is capped by it, closing's
    corrections included."""
    return amount_due(invoice.total, list(invoice.credit_notes.values_list("amount", flat=True)))


def credit_note_issue(
    *,
    invoice: Invoice,
    amount: Decimal,
    memo: str,
    destination: str,
    created_by: str = "",
    now: datetime | None = None,
) -> CreditNote:
    """A goodwill credit of `amount` (more than 0, in the currency's minor unit) on the
    invoice, up to what is left of its total."""
    return _issue(invoice, CreditNote.Reason.GOODWILL, amount, memo, destination, created_by, now)


def invoice_void(
    *,
    invoice: Invoice,
    memo: str,
    created_by: str = "",
    destination: str = CreditNote.Destination.NONE,
    now: datetime | None = None,
) -> CreditNote:
    """Void the invoice: a credit note for what is left of its total (its total less the
    earlier notes, 0 when nothing is), and the invoice's status set to void."""
    return _issue(invoice, CreditNote.Reason.VOID, None, memo, destination, created_by, now)


def _issue(
    invoice: Invoice,
    reason: str,
    amount: Decimal | None,
    memo: str,
    destination: str,
    created_by: str,
    now: datetime | None,
) -> CreditNote:
    now = now or timezone.now()
    errors: dict[str, str] = {}
    if destination not in CreditNote.Destination.values:
        errors["destination"] = f"Use one of {', '.join(CreditNote.Destination.values)}."
    if not memo.strip():
        errors["memo"] = "Say why: the memo is printed on the credit note."
    if amount is not None:
        errors.update(_amount_errors(amount, invoice.currency))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=invoice.customer_id)
        invoice = Invoice.objects.get(pk=invoice.pk)  # as it is under the lock
        if invoice.status not in CREDITABLE:
            raise ValidationError(
                f"Invoice {invoice} is {invoice.get_status_display().lower()}: only a "
                "finalized invoice takes a credit note."
            )
        if destination == CreditNote.Destination.WALLET and invoice.status != Invoice.Status.PAID:
            raise ValidationError(
                {
                    "destination": f"Invoice {invoice} is not paid: credit it to stripe or "
                    "none. Credits to the wallet would give back money never received."
                }
            )
        left = invoice_credit_left(invoice=invoice)
        if amount is None:
            amount = left
        elif amount > left:
            most = money_label(left, invoice.currency)
            raise ValidationError({"amount": f"At most {most} is left to credit on {invoice}."})
        note = credit_note_create(
            invoice=invoice,
            amount=amount,
            reason=reason,
            memo=memo.strip(),
            destination=destination,
            created_by=created_by,
            now=now,
        )
        if reason == CreditNote.Reason.VOID:
            Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID, voided_at=now)
            invoice_event_emit(invoice_id=invoice.pk, event_type="invoice.voided")
        action = "invoice.void" if reason == CreditNote.Reason.VOID else "credit_note.create"
        audit_record(action, note, customer=invoice.customer.external_id, reason=note.memo)
    return note


def _amount_errors(amount: object, currency: str) -> dict[str, str]:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return {"amount": "Give the amount as a Decimal."}
    if amount <= 0:
        return {"amount": "Must be greater than 0."}
    if amount != money_round(amount, currency):
        places = minor_places(currency)
        return {"amount": f"Give at most {places} decimal places for {currency}."}
    return {}
