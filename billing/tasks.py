"""Celery tasks for billing: thin wrappers around services, safe to run twice or at once.

`rate_pending_usage` is asked for by ingestion right after events are stored (at most
every TOKENTILL_RATING_NUDGE_SECONDS per process) and runs every 30 seconds from
django-celery-beat ("Rate pending usage"), so rating catches up after any downtime.
`push_invoice` is sent when a period's closing commits; beat's `push_invoices` (every 5
minutes) pushes whatever did not get to Stripe, and `reconcile_stripe` (hourly) reads back
the status of what is still open (billing.stripe.push). With Stripe off, `email_invoice`
is sent instead of `push_invoice`: it emails the invoice with its PDF, once, and beat's
`email_invoices` (every 5 minutes) sends what a lost task left (billing.invoicing.emailing).
"""

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings

from .invoicing.closing import periods_close
from .invoicing.emailing import invoice_email, invoices_email_pending
from .models import Invoice
from .rating.rater import usage_rate_pending
from .stripe.push import invoice_push, stripe_push_pending, stripe_reconcile


@shared_task(name="billing.rate_pending_usage", ignore_result=True)
def rate_pending_usage() -> int:
    """Drain the rating queue; while there was work, look again shortly after.

    The second look rates events queued while this run was finishing, which asked for
    no run of their own (ingestion asks at most once per nudge interval).
    """
    rated = usage_rate_pending()
    if rated and not settings.CELERY_TASK_ALWAYS_EAGER:
        rate_pending_usage.apply_async(countdown=settings.TOKENTILL_RATING_NUDGE_SECONDS)
    return rated


@shared_task(name="billing.close_due_periods", ignore_result=True)
def close_due_periods() -> int:
    """Close every billing period whose grace has passed into its invoice (beat: every
    5 minutes), as `manage.py close_periods` does; nobody asked, so the audit trail
    records nothing. How many periods and customers' corrections it billed."""
    return periods_close().count


@shared_task(name="billing.push_invoice", ignore_result=True)
def push_invoice(invoice_id: int) -> None:
    """Push an invoice to Stripe just after its period closed."""
    invoice_push(invoice=Invoice.objects.get(pk=invoice_id))


@shared_task(
    name="billing.email_invoice",
    ignore_result=True,
    autoretry_for=(OSError, SMTPException),
    retry_backoff=60,
    max_retries=6,
)
def email_invoice(invoice_id: int) -> bool:
    """Email a finalized invoice with its PDF when Stripe is off, once (a run after it was
    sent sends nothing); a mail server that fails is tried again, backing off from a
    minute."""
    return invoice_email(invoice_id=invoice_id)


@shared_task(name="billing.email_invoices", ignore_result=True)
def email_invoices() -> int:
    """Email what a lost `email_invoice` task left unsent, when Stripe is off (beat:
    every 5 minutes)."""
    return invoices_email_pending()


@shared_task(name="billing.push_invoices", ignore_result=True)
def push_invoices() -> int:
    """Push to Stripe what is not there yet: invoices whose push failed or was cut short,
    credit notes, top-ups (beat: every 5 minutes)."""
    return stripe_push_pending()


@shared_task(name="billing.reconcile_stripe", ignore_result=True)
def reconcile_stripe() -> int:
    """Apply the status Stripe has for each invoice still open here (beat: hourly)."""
    return stripe_reconcile()
