"""Billing webhook events of invoices and credit notes: one per change, written with the
change, none for a change that rolled back.

acme's November (test_invoices.py's scenario) closes on December 2 at 01:00 into
INV-000001, 59.00.
"""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from billing.invoicing.closing import periods_close_due
from billing.invoicing.credit_notes import credit_note_issue, invoice_void
from billing.models import BillingPeriod, CreditNote, Invoice
from billing.stripe.events import stripe_invoice_status_apply
from contracts.services import contract_create
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import endpoint_create

from . import test_invoice_api as invoice_api
from . import test_invoices as scenario
from .conftest import NOVEMBER

clock, amended, invoice = scenario.clock, scenario.amended, invoice_api.invoice
DECEMBER = scenario.DECEMBER
CLOSED_AT = "2026-12-02T01:00:00Z"
INV_000001 = {
    "customer_id": "acme",
    "invoice_number": "INV-000001",
    "status": "finalized",
    "currency": "USD",
    "total": "59.00",
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
    "finalized_at": CLOSED_AT,
    "paid_at": None,
    "voided_at": None,
    "stripe_id": None,
}


def emitted(prefix: str = "") -> list[tuple[str, dict]]:
    """The events emitted, oldest first, as (type, data): those whose type starts so."""
    events = WebhookEvent.objects.filter(type__startswith=prefix).order_by("pk")
    return [(event.type, event.data) for event in events]


def test_closing_a_period_emits_invoice_finalized(clock, amended, receiver):
    endpoint = endpoint_create(url=receiver.url, event_types=["invoice.finalized"])
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    assert periods_close_due() == 1
    assert periods_close_due() == 0  # closing again changes nothing, emits nothing

    assert emitted("invoice.") == [("invoice.finalized", INV_000001)]
    event = WebhookEvent.objects.get(type="invoice.finalized")
    assert event.created_at == DECEMBER + timedelta(hours=25)
    delivery = WebhookDelivery.objects.get()  # the endpoint takes this type alone
    assert (delivery.event, delivery.endpoint, delivery.status) == (event, endpoint, "pending")


def test_a_period_with_nothing_to_pay_is_finalized_and_paid_at_once(clock, acme, rate_card):
    contract_create(customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    clock.now = DECEMBER + timedelta(hours=25)

    assert periods_close_due() == 1

    zero = {**INV_000001, "status": "paid", "total": "0.00", "paid_at": CLOSED_AT}
    assert emitted() == [("invoice.finalized", zero), ("invoice.paid", zero)]


def test_a_closing_that_rolls_back_emits_nothing(clock, amended, receiver, monkeypatch):
    # given an endpoint, and closing failing after the invoice is stored
    endpoint_create(url=receiver.url)
    scenario.november_usage(clock)
    before = emitted()

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("billing.invoicing.closing._corrections_apply", fail)
    clock.now = DECEMBER + timedelta(hours=25)
    with pytest.raises(RuntimeError):
        periods_close_due()

    # then no invoice, no event, no delivery, nothing sent
    assert (Invoice.objects.count(), BillingPeriod.objects.count()) == (0, 0)
    assert emitted() == before
    assert not emitted("invoice.")
    assert receiver.requests == []


def test_stripe_paying_the_invoice_emits_invoice_paid_once(invoice, clock):
    Invoice.objects.filter(pk=invoice.pk).update(stripe_id="in_1", stripe_status="open")
    paid_at = datetime(2026, 12, 10, 8, 30, tzinfo=UTC)
    stripe_invoice = {"id": "in_1", "status_transitions": {"paid_at": int(paid_at.timestamp())}}

    for _ in range(2):  # Stripe sends its webhooks more than once
        stripe_invoice_status_apply(stripe_invoice=stripe_invoice, status="paid", at=paid_at)

    paid = {**INV_000001, "status": "paid", "paid_at": "2026-12-10T08:30:00Z", "stripe_id": "in_1"}
    assert emitted("invoice.")[1:] == [("invoice.paid", paid)]


def test_stripe_voiding_the_invoice_emits_invoice_voided(invoice, clock):
    Invoice.objects.filter(pk=invoice.pk).update(stripe_id="in_1", stripe_status="open")
    voided_at = datetime(2026, 12, 11, tzinfo=UTC)

    stripe_invoice_status_apply(stripe_invoice={"id": "in_1"}, status="void", at=voided_at)

    voided = {**INV_000001, "status": "void", "voided_at": "2026-12-11T00:00:00Z",
              "stripe_id": "in_1"}  # fmt: skip
    assert emitted("invoice.")[1:] == [("invoice.voided", voided)]


def test_a_goodwill_credit_note_emits_credit_note_created(invoice, clock):
    clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)

    credit_note_issue(
        invoice=invoice, amount=Decimal("10.00"), memo="Outage on Nov 12", destination="none",
        created_by="ops",
    )  # fmt: skip

    assert emitted("credit_note.") == [
        (
            "credit_note.created",
            {
                "customer_id": "acme",
                "credit_note_number": "CN-000001",
                "invoice_number": "INV-000001",
                "reason": "goodwill",
                "destination": "none",
                "amount": "10.00",
                "currency": "USD",
                "memo": "Outage on Nov 12",
                "created_at": "2026-12-03T09:00:00Z",
            },
        )
    ]
    assert emitted("invoice.") == [("invoice.finalized", INV_000001)]


def test_voiding_emits_the_credit_note_then_invoice_voided(invoice, clock):
    clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)

    invoice_void(invoice=invoice, memo="Billed twice")

    types = [kind for kind, _ in emitted()]
    assert types[-2:] == ["credit_note.created", "invoice.voided"]
    note, voided = emitted()[-2][1], emitted()[-1][1]
    assert (note["reason"], note["amount"], note["credit_note_number"]) == (
        "void",
        "59.00",
        "CN-000001",
    )
    assert voided == {**INV_000001, "status": "void", "voided_at": "2026-12-03T09:00:00Z"}


def test_a_credit_note_that_rolls_back_emits_nothing_and_sends_nothing(
    invoice, clock, receiver, django_capture_on_commit_callbacks
):
    endpoint_create(url=receiver.url)
    before = emitted()

    # when a credit note is issued in a transaction that then fails
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        credit_note_issue(invoice=invoice, amount=Decimal("10.00"), memo="Oops", destination="none")
        raise RuntimeError("the caller fails after")

    # then neither the note nor its event is there, and nothing was sent
    assert CreditNote.objects.count() == 0
    assert emitted() == before
    assert (WebhookDelivery.objects.count(), receiver.requests) == (0, [])


def test_a_refused_credit_note_emits_nothing(invoice, clock):
    before = emitted()

    with pytest.raises(Exception, match=r"At most 59\.00 USD is left"):
        credit_note_issue(
            invoice=invoice, amount=Decimal("60"), memo="Too much", destination="none"
        )

    assert emitted() == before


def test_an_emitted_event_is_delivered_after_the_commit(
    invoice, clock, receiver, django_capture_on_commit_callbacks
):
    endpoint_create(url=receiver.url, event_types=["credit_note.created"])

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        credit_note_issue(
            invoice=invoice, amount=Decimal("1.50"), memo="Goodwill", destination="none"
        )
        assert receiver.requests == []  # not before the commit

    ((_, body),) = receiver.requests
    sent = json.loads(body)
    assert (sent["type"], sent["data"]["amount"], sent["data"]["credit_note_number"]) == (
        "credit_note.created", "1.50", "CN-000001",
    )  # fmt: skip
