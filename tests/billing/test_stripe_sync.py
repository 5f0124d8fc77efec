"""Invoices pushed to the fake Stripe: exact to the cent, once however often a push is cut
short, retried by beat, reconciled; credit notes and top-ups; Stripe off."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from billing.invoicing.closing import period_close
from billing.invoicing.credit_notes import credit_note_create
from billing.models import CreditNote, Invoice, InvoiceLine, StripeCustomer, TopUpInvoice
from billing.stripe.push import (
    credit_note_push,
    invoice_push,
    stripe_push_pending,
    stripe_reconcile,
    topup_invoice_push,
)
from billing.tasks import push_invoices, reconcile_stripe
from contracts.services import contract_create, contract_payment_terms_set, customer_create
from wallets.models import TopUpRequest, Wallet

from .conftest import NOVEMBER
from .invoice_support import clock_set
from .stripe_support import (
    DECEMBER,
    D,
    november_closed,
    november_used,
    stripe_on,
    topup_requested,
)

#: Stripe's items for INV-000001 (stripe_support.november_closed), by hand:
#: (description, quantity, unit_amount_decimal, amount in cents).
ITEMS = [
    ("Monthly fee, 2026-11-01 to 2026-11-15", 1, "1500", 1500),
    ("Monthly fee, 2026-11-16 to 2026-11-30", 1, "3000", 3000),
    ("gpt-4o, 2026-11-01 to 2026-11-15", 5, "400.5253", 2003),  # 2002.6265 rounded once
    ("gpt-4o, 2026-11-16 to 2026-11-30", 1, "1000", 1000),
    ("Discount 10 % on usage, 2026-11-16 to 2026-11-30", 1, "-100", -100),
    (
        "Included usage allowance: 10.00 USD of 10.00 USD used, 2026-11-01 to 2026-11-30",
        1,
        "-1000",
        -1000,
    ),
    ("Prepaid credits applied, 2026-11-01 to 2026-11-30", 1, "-500", -500),
]


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch, datetime(2026, 11, 1, 9, tzinfo=UTC))


@pytest.fixture
def fake(settings, stripe_fake):
    return stripe_on(settings, stripe_fake)


@pytest.fixture
def invoice(clock, acme, rate_card) -> Invoice:
    return november_closed(clock, acme, rate_card)


def items_of(fake, stripe_invoice_id: str) -> list[tuple]:
    return [
        (
            item["description"],
            item["quantity"],
            item["pricing"]["unit_amount_decimal"],
            item["amount"],
        )
        for item in fake.invoice_items.values()
        if item["invoice"] == stripe_invoice_id
    ]


def stripe_fields(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return (invoice.stripe_id, invoice.stripe_status, invoice.stripe_error, invoice.status)


def posts(fake) -> list[tuple]:
    """(path, idempotency key, replayed) of each POST the fake answered or dropped."""
    return [(r.path, r.idempotency_key, r.replayed) for r in fake.requests if r.method == "POST"]


# --- a push --------------------------------------------------------------------------------


def test_a_push_makes_one_stripe_invoice_whose_lines_and_total_are_ours_to_the_cent(fake, invoice):
    pushed = invoice_push(invoice=invoice)

    (stripe_id,) = fake.invoices
    sent = fake.invoices[stripe_id]
    assert items_of(fake, stripe_id) == ITEMS
    assert invoice.total == D("59.03")
    assert (sent["total"], sent["amount_due"], sent["status"]) == (5903, 5903, "open")
    assert (sent["currency"], sent["collection_method"], sent["auto_advance"]) == (
        "usd", "send_invoice", True,
    )  # fmt: skip
    assert sent["due_date"] == sent["status_transitions"]["finalized_at"] + 30 * 86400
    assert sent["metadata"] == {
        "tokentill_invoice": str(invoice.pk),
        "tokentill_number": "INV-000001",
    }
    assert sent["description"] == "INV-000001: 2026-11-01 to 2026-11-30"
    assert (pushed.stripe_id, pushed.stripe_status, pushed.stripe_error) == (stripe_id, "open", "")
    assert pushed.status == Invoice.Status.FINALIZED  # open in Stripe: not paid yet
    assert pushed.stripe_pushed_at == DECEMBER + timedelta(hours=25)
    assert pushed.stripe_claimed_until is None
    lines = InvoiceLine.objects.filter(invoice=invoice).order_by("position")
    assert [line.stripe_id for line in lines] == list(fake.invoice_items)
    (customer,) = fake.customers.values()
    assert (customer["email"], customer["name"], customer["metadata"]) == (
        "billing@acme.example", "Acme Corp", {"tokentill_customer": "acme"},
    )  # fmt: skip
    assert StripeCustomer.objects.get().stripe_id == customer["id"]
    key = f"tokentill-invoice-{invoice.pk}"
    assert posts(fake) == [
        ("/v1/customers", f"tokentill-customer-{invoice.customer_id}", False),
        ("/v1/invoices", key, False),
        *[("/v1/invoiceitems", f"{key}-line-{n}", False) for n in range(1, 8)],
        (f"/v1/invoices/{stripe_id}/finalize", f"{key}-finalize", False),
    ]


def test_stripe_s_due_date_is_the_one_the_invoice_prints_under_the_contract_s_terms(
    fake, clock, acme, rate_card
):
    # Given the contract's payment terms of 14 days (the default is 30)
    contract = november_used(clock, acme, rate_card)
    contract = contract_payment_terms_set(contract=contract, payment_terms_days=14)
    clock.now = DECEMBER + timedelta(hours=25)
    invoice = period_close(contract=contract, start=NOVEMBER, end=DECEMBER)

    invoice_push(invoice=invoice)

    # Due 14 days after issue here (2026-12-02 01:00 + 14 days), and in Stripe
    (sent,) = fake.invoices.values()
    assert invoice.due_at == datetime(2026, 12, 16, 1, tzinfo=UTC)
    assert sent["due_date"] == sent["status_transitions"]["finalized_at"] + 14 * 86400


def test_pushing_twice_leaves_one_invoice_and_asks_stripe_nothing_more(fake, invoice):
    first = invoice_push(invoice=invoice)
    requests = len(fake.requests)

    second = invoice_push(invoice=invoice)

    assert len(fake.invoices) == 1
    assert len(fake.requests) == requests
    assert stripe_fields(second) == stripe_fields(first)


@pytest.mark.parametrize(
    ("path", "step"),
    [
        ("/v1/invoices", "the invoice's creation"),
        ("/v1/invoiceitems", "the first item"),
        ("/v1/invoices/", "finalizing"),
    ],
)
def test_a_timeout_after_stripe_accepted_then_a_second_push_gives_one_invoice(
    fake, invoice, path, step
):
    fake.inject("timeout_after_accept", "POST", path)

    cut_short = invoice_push(invoice=invoice)

    assert cut_short.stripe_error.startswith("APIConnectionError: "), step
    assert cut_short.stripe_pushed_at is None
    assert cut_short.stripe_claimed_until is None
    assert len(fake.invoices) == 1  # Stripe did it; the answer was lost

    pushed = invoice_push(invoice=invoice)

    (stripe_id,) = fake.invoices
    assert items_of(fake, stripe_id) == ITEMS  # one item per line
    assert len(fake.invoice_items) == 7
    assert fake.invoices[stripe_id]["total"] == 5903
    assert stripe_fields(pushed) == (stripe_id, "open", "", "finalized")
    replayed = [key for _, key, again in posts(fake) if again]
    assert len(replayed) == 1  # the request whose answer was lost, answered again


def test_the_librarys_own_retry_after_a_timeout_reuses_our_key(fake, invoice, settings):
    settings.TOKENTILL_STRIPE_MAX_NETWORK_RETRIES = 1
    fake.inject("timeout_after_accept", "POST", "/v1/invoices")

    pushed = invoice_push(invoice=invoice)

    assert stripe_fields(pushed)[1:] == ("open", "", "finalized")
    assert len(fake.invoices) == 1
    key = f"tokentill-invoice-{invoice.pk}"
    assert posts(fake)[1:3] == [("/v1/invoices", key, False), ("/v1/invoices", key, True)]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("error_500", "APIError: An unknown error occurred"),
        (
            "rate_limit_429",
            "RateLimitError: Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
        ),
    ],
)
def test_a_500_or_429_is_recorded_and_beat_pushes_the_invoice_again(fake, invoice, fault, error):
    fake.inject(fault, "POST", "/v1/invoices")

    failed = invoice_push(invoice=invoice)

    assert stripe_fields(failed) == ("", "", error, "finalized")
    assert failed.stripe_pushed_at is None
    assert fake.invoices == {}  # refused before Stripe did anything

    assert push_invoices() == 1

    (stripe_id,) = fake.invoices
    assert stripe_fields(failed) == (stripe_id, "open", "", "finalized")
    assert items_of(fake, stripe_id) == ITEMS
    assert push_invoices() == 0  # nothing left to push


def test_a_total_stripe_disagrees_with_is_recorded(fake, invoice):
    InvoiceLine.objects.filter(invoice=invoice, position=1).update(amount=D("15.01"))

    pushed = invoice_push(invoice=invoice)

    assert pushed.stripe_error == "Stripe's total is 5904, ours 5903 (minor units)."
    assert pushed.stripe_pushed_at is not None  # in Stripe, finalized: not pushed again
    assert push_invoices() == 0


def test_an_invoice_with_nothing_to_pay_is_not_pushed(fake, clock, rate_card):
    other = customer_create(external_id="globex", name="Globex", currency="USD")
    contract = contract_create(customer=other, starts_at=NOVEMBER, rate_card=rate_card)
    clock.now = DECEMBER + timedelta(hours=25)
    zero = period_close(contract=contract, start=NOVEMBER, end=DECEMBER)

    pushed = invoice_push(invoice=zero)

    assert (zero.total, zero.status) == (D(0), "paid")
    assert stripe_fields(pushed) == ("", "", "", "paid")
    assert fake.requests == []
    assert push_invoices() == 0


def test_with_stripe_off_nothing_is_pushed_and_nothing_fails(invoice, settings, caplog):
    settings.STRIPE_API_KEY = ""

    pushed = invoice_push(invoice=invoice)

    assert stripe_fields(pushed) == ("", "", "", "finalized")
    assert (push_invoices(), reconcile_stripe()) == (0, 0)
    assert f"Stripe is off (STRIPE_API_KEY is not set): invoice {invoice} is not pushed" in (
        caplog.messages
    )


def test_closing_a_period_pushes_its_invoice_once_the_closing_commits(
    fake, clock, acme, rate_card, django_capture_on_commit_callbacks
):
    contract = november_used(clock, acme, rate_card)
    clock.now = DECEMBER + timedelta(hours=25)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice = period_close(contract=contract, start=NOVEMBER, end=DECEMBER)

    assert len(callbacks) == 1
    (stripe_id,) = fake.invoices
    assert stripe_fields(invoice) == (stripe_id, "open", "", "finalized")


def test_two_pushes_at_once_the_second_finds_the_first_holding_the_claim(fake, invoice, clock):
    Invoice.objects.filter(pk=invoice.pk).update(stripe_claimed_until=clock.now + timedelta(1))

    held = invoice_push(invoice=invoice)
    clock.now += timedelta(days=2)  # the claim of a worker that died lapses
    pushed = invoice_push(invoice=invoice)

    assert held.stripe_id == ""
    assert stripe_fields(pushed)[1:] == ("open", "", "finalized")
    assert len(fake.invoices) == 1


# --- reconciling ----------------------------------------------------------------------------


def test_reconciling_applies_what_stripe_has_as_a_webhook_would(fake, invoice, stripe_client):
    pushed = invoice_push(invoice=invoice)
    paid = stripe_client.v1.invoices.pay(pushed.stripe_id, params={"paid_out_of_band": True})

    assert stripe_reconcile() == 1
    assert stripe_reconcile() == 0  # nothing open left

    invoice.refresh_from_db()
    assert (invoice.status, invoice.stripe_status) == ("paid", "paid")
    assert invoice.paid_at.timestamp() == paid.status_transitions.paid_at


# --- credit notes and top-ups ---------------------------------------------------------------


def test_a_credit_note_for_stripe_follows_its_invoice(fake, invoice):
    note = credit_note_create(
        invoice=invoice,
        amount=D("3.555"),
        reason=CreditNote.Reason.GOODWILL,
        memo="Sorry for the outage",
        destination=CreditNote.Destination.STRIPE,
    )
    waiting = credit_note_push(credit_note=note)  # its invoice is not in Stripe yet

    assert push_invoices() == 2  # the invoice, then the note

    (sent,) = fake.credit_notes.values()
    note.refresh_from_db()
    assert waiting.stripe_id == ""
    assert (note.stripe_id, note.stripe_error, note.amount) == (sent["id"], "", D("3.56"))
    assert (sent["amount"], sent["memo"], sent["type"]) == (
        356, "Sorry for the outage", "pre_payment",
    )  # fmt: skip
    assert sent["metadata"] == {
        "tokentill_credit_note": str(note.pk),
        "tokentill_number": note.number,
    }
    invoice.refresh_from_db()
    assert fake.invoices[invoice.stripe_id]["amount_due"] == 5903 - 356
    assert fake.requests[-1].idempotency_key == f"tokentill-credit-note-{note.pk}"
    assert push_invoices() == 0


def test_a_credit_note_stripe_refuses_is_recorded(fake, invoice):
    invoice_push(invoice=invoice)
    note = credit_note_create(
        invoice=invoice,
        amount=D("100"),
        reason=CreditNote.Reason.GOODWILL,
        destination=CreditNote.Destination.STRIPE,
    )

    refused = credit_note_push(credit_note=note)

    assert refused.stripe_id == ""
    assert refused.stripe_error == (
        "InvalidRequestError: The credit note's total (10000) exceeds what is left to credit "
        "on the invoice (5903)."
    )
    assert fake.credit_notes == {}


@pytest.fixture
def topup(acme) -> TopUpRequest:
    return topup_requested(acme)


def test_a_top_up_request_is_charged_by_a_stripe_invoice(fake, topup):
    assert stripe_push_pending() == 1

    (stripe_id,) = fake.invoices
    sent = fake.invoices[stripe_id]
    row = TopUpInvoice.objects.get()
    assert (row.request, row.stripe_id, row.stripe_status, row.stripe_error) == (
        topup, stripe_id, "open", "",
    )  # fmt: skip
    assert (sent["total"], sent["status"], sent["metadata"]) == (
        10000, "open", {"tokentill_topup": str(topup.pk)},
    )  # fmt: skip
    assert items_of(fake, stripe_id) == [("Prepaid credits: 100 USD", 1, "10000", 10000)]
    assert row.stripe_item_id == next(iter(fake.invoice_items))
    assert [key for _, key, _ in posts(fake)][1:] == [
        f"tokentill-topup-{topup.pk}",
        f"tokentill-topup-{topup.pk}-item",
        f"tokentill-topup-{topup.pk}-finalize",
    ]
    assert stripe_push_pending() == 0
    assert topup_invoice_push(request=topup) == row  # pushed once


# --- two workers ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_pushing_at_once_push_each_invoice_once(settings, stripe_fake, rate_card):
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")
    for n in range(6):
        customer = customer_create(external_id=f"c{n}", name=f"C{n}", currency="USD")
        contract = contract_create(
            customer=customer, starts_at=NOVEMBER, rate_card=rate_card, fixed_fee=D(10 + n)
        )
        period_close(contract=contract, start=NOVEMBER, end=DECEMBER, now=DECEMBER)
    fake = stripe_on(settings, stripe_fake)  # after closing: nothing was pushed on commit
    barrier, counts = threading.Barrier(2), []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            counts.append(stripe_push_pending())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sum(counts) == 6
    totals = sorted(stripe_invoice["total"] for stripe_invoice in fake.invoices.values())
    assert totals == [1000, 1100, 1200, 1300, 1400, 1500]
    assert [r.path for r in fake.requests if r.replayed] == []  # nothing was sent twice
    assert set(Invoice.objects.values_list("stripe_status", flat=True)) == {"open"}


def test_reconciling_grants_a_top_up_paid_in_stripe_whose_webhook_was_lost(
    fake, topup, stripe_client
):
    topup_invoice_push(request=topup)
    stripe_client.v1.invoices.pay(TopUpInvoice.objects.get().stripe_id)

    assert stripe_reconcile() == 1
    assert stripe_reconcile() == 0

    topup.refresh_from_db()
    assert (topup.status, topup.grant.amount) == ("paid", D(100))
    assert Wallet.objects.get().balance == D(105)
