"""When an invoice falls due (closing sets `due_at`), and the invoice emailed with its PDF
when Stripe is off, exactly once (billing.invoicing.emailing).

acme's November closes on 2026-12-02 01:00 UTC (25 hours after the period's end), into
INV-000001 of 59.00 USD (test_invoices.py's scenario).
"""

from datetime import UTC, datetime, timedelta
from importlib import import_module
from io import BytesIO

import pytest
from django.apps import apps
from django.core import mail
from django_celery_beat.models import PeriodicTask
from pypdf import PdfReader

from billing.invoicing.closing import periods_close_due
from billing.invoicing.emailing import invoice_email, invoices_email_pending
from billing.models import Invoice
from billing.tasks import email_invoice, email_invoices
from contracts.models import Customer

from . import test_invoices as scenario

clock, amended = scenario.clock, scenario.amended
CLOSED_AT = datetime(2026, 12, 2, 1, tzinfo=UTC)


def invoice_mails(outbox) -> list:
    """The invoices emailed, leaving out the credit alerts the scenario also sends."""
    return [message for message in outbox if message.subject.startswith("Invoice ")]


def close_november(clock) -> Invoice:
    scenario.november_usage(clock)
    clock.now = scenario.DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 1
    return Invoice.objects.get()


# --- the due date -------------------------------------------------------------------------


def test_the_due_date_is_the_issue_plus_the_default_terms(clock, amended, settings):
    settings.TOKENTILL_PAYMENT_TERMS_DAYS = 30

    invoice = close_november(clock)

    # 2 December 01:00 + 30 days: 29 to 31 December, then 1 January 01:00.
    assert (invoice.finalized_at, invoice.due_at) == (
        CLOSED_AT,
        datetime(2027, 1, 1, 1, tzinfo=UTC),
    )


def test_a_changed_default_applies(clock, amended, settings):
    settings.TOKENTILL_PAYMENT_TERMS_DAYS = 45

    invoice = close_november(clock)

    # 2 December + 45 days: 29 in December, 16 in January: 16 January.
    assert invoice.due_at == datetime(2027, 1, 16, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "due"),
    [
        (14, datetime(2026, 12, 16, 1, tzinfo=UTC)),  # 2 + 14 = 16 December
        (0, CLOSED_AT),  # due on receipt
        (60, datetime(2027, 1, 31, 1, tzinfo=UTC)),  # 29 in December + 31 = 60: 31 January
    ],
)
def test_the_contracts_own_terms_win_over_the_default(clock, amended, settings, days, due):
    settings.TOKENTILL_PAYMENT_TERMS_DAYS = 30
    amended.payment_terms_days = days
    amended.save(update_fields=["payment_terms_days"])

    invoice = close_november(clock)

    assert invoice.due_at == due


def test_the_migration_gives_earlier_invoices_the_default_terms(clock, amended, settings):
    settings.TOKENTILL_PAYMENT_TERMS_DAYS = 10
    invoice = close_november(clock)
    Invoice.objects.filter(pk=invoice.pk).update(due_at=None)
    migration = import_module("billing.migrations.0014_seller_details_due_dates_and_email")

    migration.due_dates_fill(apps, None)

    invoice.refresh_from_db()
    assert invoice.due_at == datetime(2026, 12, 12, 1, tzinfo=UTC)  # 2 + 10 = 12 December


# --- the email ------------------------------------------------------------------------------


@pytest.fixture
def stripe_off(settings):
    settings.STRIPE_API_KEY = ""
    settings.TOKENTILL_SELLER_NAME = "Tokentill Networks Ltd"
    settings.TOKENTILL_SELLER_EMAIL = "billing@tokentill.example"


def test_closing_with_stripe_off_emails_the_invoice_with_its_pdf_once(
    clock, amended, stripe_off, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = close_november(clock)

    assert len(invoice_mails(mailoutbox)) == 1
    message = invoice_mails(mailoutbox)[0]
    assert message.to == ["billing@acme.example"]
    assert message.reply_to == ["billing@tokentill.example"]
    assert message.subject == "Invoice INV-000001 from Tokentill Networks Ltd"
    assert "Total: 59.00 USD\nAmount due: 59.00 USD\nDue date: 2027-01-01\n" in message.body
    [(name, content, kind)] = message.attachments
    assert (name, kind) == ("INV-000001.pdf", "application/pdf")
    assert "Amount due 59.00 USD" in PdfReader(BytesIO(content)).pages[0].extract_text()
    invoice.refresh_from_db()
    assert invoice.emailed_at == CLOSED_AT

    # The task run again (a retry, a second worker) sends nothing.
    assert email_invoice(invoice.pk) is False
    assert invoice_email(invoice_id=invoice.pk) is False
    assert len(invoice_mails(mailoutbox)) == 1


def test_with_stripe_on_closing_pushes_and_emails_nothing(
    clock, amended, settings, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    settings.STRIPE_API_KEY = "sk_test_123"
    pushed = []
    monkeypatch.setattr("billing.tasks.invoice_push", lambda invoice: pushed.append(invoice.pk))

    with django_capture_on_commit_callbacks(execute=True):
        invoice = close_november(clock)

    assert pushed == [invoice.pk]
    assert invoice_mails(mailoutbox) == []
    assert Invoice.objects.get().emailed_at is None


def test_a_failed_send_leaves_it_unsent_for_the_retry(clock, amended, stripe_off, monkeypatch):
    invoice = close_november(clock)

    def refuse(self, fail_silently=False):
        raise OSError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.EmailMessage.send", refuse)
        with pytest.raises(OSError, match="connection refused"):
            invoice_email(invoice_id=invoice.pk)
    assert Invoice.objects.get().emailed_at is None
    assert invoice_mails(mail.outbox) == []

    assert invoice_email(invoice_id=invoice.pk) is True
    assert len(invoice_mails(mail.outbox)) == 1


def test_a_customer_without_a_billing_email_gets_nothing(clock, amended, stripe_off, caplog):
    Customer.objects.filter(pk=amended.customer_id).update(email="")
    invoice = close_november(clock)

    assert invoice_email(invoice_id=invoice.pk) is False

    assert invoice_mails(mail.outbox) == []
    assert Invoice.objects.get().emailed_at is None
    assert "Invoice INV-000001 was not emailed: customer acme has no billing email" in caplog.text


def test_a_void_invoice_is_not_emailed(clock, amended, stripe_off):
    invoice = close_november(clock)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID)

    assert invoice_email(invoice_id=invoice.pk) is False

    assert invoice_mails(mail.outbox) == []


def test_the_sweep_emails_what_a_lost_task_left_once(clock, amended, stripe_off):
    # Given the closing's email task lost (never run): the invoice is not emailed
    invoice = close_november(clock)
    assert Invoice.objects.get().emailed_at is None

    # Beat's sweep (created by migrate) an hour later sends it; the next sends nothing
    sweep = PeriodicTask.objects.get(name="Email invoices")
    assert (sweep.task, sweep.interval.every, sweep.interval.period) == (
        "billing.email_invoices", 5, "minutes"
    )  # fmt: skip
    clock.now = CLOSED_AT + timedelta(hours=1)
    assert email_invoices() == 1
    assert email_invoices() == 0
    assert [message.subject for message in invoice_mails(mail.outbox)] == [
        "Invoice INV-000001 from Tokentill Networks Ltd"
    ]
    assert Invoice.objects.get(pk=invoice.pk).emailed_at == CLOSED_AT + timedelta(hours=1)


def test_the_sweep_leaves_invoices_issued_more_than_a_day_ago(clock, amended, stripe_off):
    close_november(clock)

    # A day and a minute after the invoice was issued, as when emailing is first turned on
    assert invoices_email_pending(now=CLOSED_AT + timedelta(days=1, minutes=1)) == 0

    assert invoice_mails(mail.outbox) == []
    assert Invoice.objects.get().emailed_at is None


def test_the_sweep_goes_on_past_a_mail_server_that_fails(
    clock, amended, stripe_off, monkeypatch, caplog
):
    invoice = close_november(clock)

    def refuse(self, fail_silently=False):
        raise OSError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.EmailMessage.send", refuse)
        assert invoices_email_pending(now=CLOSED_AT) == 0
    assert f"Invoice {invoice.pk} could not be emailed" in caplog.text
    assert Invoice.objects.get().emailed_at is None

    assert invoices_email_pending(now=CLOSED_AT) == 1


def test_with_stripe_on_the_sweep_emails_nothing(clock, amended, settings):
    settings.STRIPE_API_KEY = "sk_test_123"
    close_november(clock)

    assert invoices_email_pending(now=CLOSED_AT) == 0
    assert invoice_mails(mail.outbox) == []
