"""/metrics counts what Stripe refused: an invoice whose push failed, until a push succeeds,
and a credit note Stripe refused (docs/operations/metrics.md)."""

from datetime import UTC, datetime

import pytest

from billing.invoicing.credit_notes import credit_note_create
from billing.models import CreditNote, Invoice
from billing.stripe.push import credit_note_push, invoice_push
from tests.metrics.support import TOKEN, figure, scrape

from .invoice_support import clock_set
from .stripe_support import D, november_closed, stripe_on

FAILURES = "tokentill_stripe_push_failures"


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@pytest.fixture
def fake(settings, stripe_fake):
    settings.TOKENTILL_METRICS_TOKEN = TOKEN
    return stripe_on(settings, stripe_fake)


@pytest.fixture
def invoice(clock, acme, rate_card) -> Invoice:
    return november_closed(clock, acme, rate_card)


def failures() -> dict[str, float | None]:
    figures = scrape()
    return {
        kind: figure(figures, FAILURES, object=kind) for kind in ("invoice", "credit_note", "topup")
    }


def test_a_failed_push_is_counted_until_a_push_succeeds(fake, invoice):
    assert failures() == {"invoice": 0, "credit_note": 0, "topup": 0}

    # given Stripe answering 500 to the invoice's creation
    fake.inject("error_500", "POST", "/v1/invoices")
    assert invoice_push(invoice=invoice).stripe_error
    assert failures() == {"invoice": 1, "credit_note": 0, "topup": 0}

    # when the next push goes through
    assert invoice_push(invoice=invoice).stripe_error == ""

    # then nothing is counted any more
    assert failures() == {"invoice": 0, "credit_note": 0, "topup": 0}


def test_a_credit_note_stripe_refuses_is_counted(fake, invoice):
    invoice_push(invoice=invoice)
    note = credit_note_create(
        invoice=invoice,
        amount=D("100"),
        reason=CreditNote.Reason.GOODWILL,
        destination=CreditNote.Destination.STRIPE,
    )

    assert credit_note_push(credit_note=note).stripe_error

    assert failures() == {"invoice": 0, "credit_note": 1, "topup": 0}
