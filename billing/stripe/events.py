"""What Stripe tells tokentill: webhook events, stored once and applied to invoices and top-ups.

Each event is stored by its Stripe id first (`stripe_event_receive`), so a redelivery is
answered and changes nothing; then it is applied (`stripe_event_apply`). An event that
could not be applied (its invoice is not known here yet, say) keeps its error and can be
applied again from the admin (*Reprocess*). The hourly reconciliation
(billing.stripe.push.stripe_reconcile) applies the statuses it reads from Stripe through
the same `stripe_invoice_status_apply`, so a lost webhook is made good within the hour.

Stripe moves an invoice draft → open → paid, void or uncollectible (an uncollectible one
can still be paid or voided), and sends its webhooks in any order, some more than once.
The status precedence that makes every order end in the same state is written once, in
`stripe_invoice_status_apply`.
"""

import logging
from datetime import UTC, datetime
from typing import Any, TypeAlias

from django.db import transaction
from django.utils import timezone

from wallets.topups import topup_mark_paid

from ..models import Invoice, StripeEvent, TopUpInvoice
from ..webhook_events import invoice_event_emit

logger = logging.getLogger(__name__)

#: An object of Stripe's JSON: an event, or the invoice inside one.
StripeObject: TypeAlias = dict[str, Any]

#: The invoice events tokentill applies, and the Stripe status each one tells of.
INVOICE_EVENTS = {
    "invoice.finalized": "open",
    "invoice.payment_failed": "open",
    "invoice.paid": "paid",
    "invoice.voided": "void",
    "invoice.marked_uncollectible": "uncollectible",
}
#: Stripe's invoice statuses in the only order Stripe moves them; paid and void are final.
RANK = {"": -1, "draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
#: What our invoice becomes with each Stripe status (open leaves it finalized).
_OURS: dict[str, str] = {
    "uncollectible": Invoice.Status.UNCOLLECTIBLE,
    "paid": Invoice.Status.PAID,
    "void": Invoice.Status.VOID,
}
_OUR_RANK: dict[str, int] = {
    Invoice.Status.DRAFT: 0,
    Invoice.Status.FINALIZED: 1,
    Invoice.Status.UNCOLLECTIBLE: 2,
    Invoice.Status.PAID: 3,
    Invoice.Status.VOID: 3,
}
#: The webhook event of each status our invoice follows Stripe into.
_EVENTS: dict[str, str] = {
    Invoice.Status.PAID: "invoice.paid",
    Invoice.Status.VOID: "invoice.voided",
}
#: How a payment failure's note in `stripe_error` starts (a payment clears it).
PAYMENT_FAILED = "Payment failed"


class StripeInvoiceUnknown(Exception):
    """The event is about a Stripe invoice no invoice or top-up of ours has (yet)."""


def stripe_event_receive(*, event: StripeObject) -> tuple[StripeEvent, bool]:
    """Store a verified event once by its id: (the stored event, whether it is new). A
    redelivered event is found, not stored again. A payload without an id, type, creation
    time or object is refused with ValueError."""
    try:
        stripe_id, kind, created, _ = (
            event["id"], event["type"], event["created"], event["data"]["object"]
        )  # fmt: skip
    except (KeyError, TypeError) as missing:
        raise ValueError(f"Not a Stripe event: no {missing}") from None
    return StripeEvent.objects.get_or_create(
        stripe_id=stripe_id,
        defaults={
            "type": kind,
            "payload": event,
            "created": datetime.fromtimestamp(created, UTC),
            "received_at": timezone.now(),
        },
    )


def stripe_event_apply(*, event: StripeEvent) -> bool:
    """Apply a stored event; True when it was applied (or had nothing to apply), False
    when it failed, its error kept for the admin. Applying it again is harmless: the status
    precedence ignores what is already known, and a top-up is granted once."""
    error = ""
    try:
        status = INVOICE_EVENTS.get(event.type)
        if status is not None:
            invoice = event.payload["data"]["object"]
            note = _payment_failed_note(invoice) if event.type == "invoice.payment_failed" else ""
            stripe_invoice_status_apply(
                stripe_invoice=invoice, status=status, at=event.created, note=note
            )
    except StripeInvoiceUnknown as unknown:
        error = str(unknown)
    except Exception as failure:  # kept on the event, to be reprocessed once fixed
        logger.exception("Stripe event %s could not be applied", event.stripe_id)
        error = f"{type(failure).__name__}: {failure}"
    StripeEvent.objects.filter(pk=event.pk).update(
        processed_at=None if error else timezone.now(), error=error[:500]
    )
    return not error


def stripe_invoice_status_apply(
    *, stripe_invoice: StripeObject, status: str, at: datetime, note: str = ""
) -> bool:
    """Apply a status Stripe gives an invoice (or a top-up's invoice) at `at`, by Stripe's
    clock (the event's `created`, or when reconciling the latest of its status changes);
    True when it moved anything.

    The precedence rule: statuses rank draft 0, open 1, uncollectible 2, paid and void 3,
    the order Stripe moves an invoice in. A status is applied only when it ranks higher
    than the one held, or is the very status held and is no older than the last one
    applied (`stripe_event_at`): so an older event arriving late never moves an invoice
    back, paid and void are never left, and a repeated event changes nothing. Our invoice
    follows: paid (with Stripe's `paid_at`), void, uncollectible; a Stripe status our
    invoice cannot follow (paid there, void here) is noted in `stripe_error`. `note` (a
    failed payment) is kept in `stripe_error`; a payment clears such a note.

    Our invoice paid or voided so emits invoice.paid or invoice.voided (billing webhooks).
    A top-up's invoice (metadata `tokentill_topup`) paid grants the top-up's credits
    (wallets.topups.topup_mark_paid, which grants once however often it is told).
    """
    stripe_id = stripe_invoice["id"]
    is_topup = "tokentill_topup" in (stripe_invoice.get("metadata") or {})
    model = TopUpInvoice if is_topup else Invoice
    with transaction.atomic():
        row = model.objects.select_for_update().filter(stripe_id=stripe_id).first()
        if row is None:
            what = "top-up" if is_topup else "invoice"
            raise StripeInvoiceUnknown(f"No {what} here has the Stripe invoice {stripe_id} (yet).")
        fields: dict[str, object] = {}
        if _moves(row, status, at):
            fields = {"stripe_status": status, "stripe_event_at": at}
            if note:
                fields["stripe_error"] = note[:500]
            elif status != "open" and row.stripe_error.startswith(PAYMENT_FAILED):
                fields["stripe_error"] = ""
            if not is_topup:
                assert isinstance(row, Invoice)
                fields.update(_invoice_follows(row, status, stripe_invoice, at))
            model.objects.filter(pk=row.pk).update(**fields)
            event_type = _EVENTS.get(str(fields.get("status")))
            if event_type:
                invoice_event_emit(invoice_id=row.pk, event_type=event_type)
        if is_topup and status == "paid":
            assert isinstance(row, TopUpInvoice)
            topup_mark_paid(request=row.request, created_by="stripe", reference=stripe_id)
    return bool(fields)


def _moves(row: Invoice | TopUpInvoice, status: str, at: datetime) -> bool:
    held = row.stripe_status
    if RANK[status] != RANK.get(held, -1):
        return RANK[status] > RANK.get(held, -1)
    return status == held and (row.stripe_event_at is None or at >= row.stripe_event_at)


def _invoice_follows(
    invoice: Invoice, status: str, stripe_invoice: StripeObject, at: datetime
) -> dict[str, object]:
    ours = _OURS.get(status)
    if ours is None or ours == invoice.status:
        return {}
    if _OUR_RANK[ours] <= _OUR_RANK[invoice.status]:
        return {"stripe_error": f"Stripe has it {status}; here it is {invoice.status}."}
    fields: dict[str, object] = {"status": ours}
    if ours == Invoice.Status.PAID:
        fields["paid_at"] = _transition(stripe_invoice, "paid_at") or at
    elif ours == Invoice.Status.VOID:
        fields["voided_at"] = _transition(stripe_invoice, "voided_at") or at
    return fields


def _transition(stripe_invoice: StripeObject, name: str) -> datetime | None:
    seconds = (stripe_invoice.get("status_transitions") or {}).get(name)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _payment_failed_note(stripe_invoice: StripeObject) -> str:
    attempts = stripe_invoice.get("attempt_count") or 0
    return f"{PAYMENT_FAILED} (attempt {attempts}); Stripe tries again on its own schedule."
