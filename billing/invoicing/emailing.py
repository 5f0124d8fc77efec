"""An invoice emailed to the customer's billing email with its PDF, when Stripe is off.

With Stripe on, Stripe sends the invoice; without it (no STRIPE_API_KEY) closing sends
the task `billing.email_invoice` once the invoice is committed (`closing`), which calls
`invoice_email`. It is sent **once**: the transaction that sends it first claims the
invoice by setting `emailed_at` where it is empty, then builds the PDF and hands the
email to the mail server, and commits only after that. A second run, a retry or a second
worker finds `emailed_at` set (on PostgreSQL the claim's row lock makes a concurrent one
wait for the first to commit) and sends nothing; a send that fails rolls the claim back,
so a retry sends it. The transaction is held while the mail server answers (at most
EMAIL_TIMEOUT seconds). Beat's sweep (`invoices_email_pending`, every 5 minutes) sends
what a lost task left unsent among the invoices issued in the last day.

Once means once per successful commit: a worker killed after the mail server took the
email and before the claim committed sends it again at the retry (a mail server offers
no transaction to join).
"""

import logging
from datetime import datetime, timedelta
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from pricing.cycles import span_text
from pricing.money import money_label

from ..models import Invoice
from ..selectors import invoice_face, seller_details
from .pdf.document import day
from .pdf.invoice import invoice_pdf

logger = logging.getLogger(__name__)

#: Invoices that are emailed: issued ones (a voided or draft one is not).
_EMAILED = (Invoice.Status.FINALIZED, Invoice.Status.PAID, Invoice.Status.UNCOLLECTIBLE)
#: How far back the sweep looks: a lost task is found within minutes, and invoices issued
#: long before emailing was on are never sent out of the blue.
SWEEP_WINDOW = timedelta(days=1)


def invoice_email(*, invoice_id: int, now: datetime | None = None) -> bool:
    """Email the invoice with its PDF to the customer's billing email, once; True when
    this call sent it. Nothing is sent (False) when it was sent before, is not issued,
    or the customer has no billing email (logged)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Invoice.objects.filter(
            pk=invoice_id, emailed_at__isnull=True, status__in=_EMAILED, customer__email__gt=""
        ).update(emailed_at=now)
        if not claimed:
            _why_not(invoice_id)
            return False
        invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
        _message(invoice).send()
    logger.info("Invoice %s emailed to %s", invoice.number, invoice.customer.email)
    return True


def invoices_email_pending(*, now: datetime | None = None) -> int:
    """Email the invoices issued in the last day that are not emailed yet, when Stripe is
    off (each `invoice_email`, so once); how many were sent. A mail server that fails one
    is logged and the rest are still tried: the next sweep tries it again."""
    if settings.STRIPE_API_KEY:
        return 0
    now = now or timezone.now()
    pending = Invoice.objects.filter(
        emailed_at__isnull=True,
        status__in=_EMAILED,
        customer__email__gt="",
        finalized_at__gte=now - SWEEP_WINDOW,
    ).values_list("pk", flat=True)
    sent = 0
    for pk in list(pending):
        try:
            sent += invoice_email(invoice_id=pk, now=now)
        except (OSError, SMTPException):
            logger.exception("Invoice %s could not be emailed; the next sweep tries again", pk)
    return sent


def _message(invoice: Invoice) -> EmailMessage:
    customer, seller = invoice.customer, seller_details()
    due = invoice_face(invoice=invoice).amount_due
    sender = seller.name or "tokentill"
    lines = [
        f"Hello {customer.billed_name},",
        "",
        f"Attached is invoice {invoice.number} from {sender} for "
        f"{span_text(invoice.period_start, invoice.period_end)}.",
        "",
        f"Total: {money_label(invoice.total, invoice.currency)}",
        f"Amount due: {money_label(due, invoice.currency)}",
    ]
    if due > 0 and invoice.due_at is not None:
        lines.append(f"Due date: {day(invoice.due_at)}")
    lines += ["", f"Your invoices are also in the portal: {settings.TOKENTILL_PORTAL_URL}/portal/"]
    if seller.email:
        lines.append(f"Questions about this invoice: {seller.email}")
    message = EmailMessage(
        subject=f"Invoice {invoice.number} from {sender}",
        body="\n".join(lines) + "\n",
        to=[customer.email],
        reply_to=[seller.email] if seller.email else None,
    )
    message.attach(f"{invoice.number}.pdf", invoice_pdf(invoice=invoice), "application/pdf")
    return message


def _why_not(invoice_id: int) -> None:
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is not None and invoice.emailed_at is None and not invoice.customer.email:
        logger.warning(
            "Invoice %s was not emailed: customer %s has no billing email",
            invoice.number,
            invoice.customer.external_id,
        )
