"""Credit notes billing ops issue (goodwill, voids): never past the invoice's total, never on
a void or draft invoice, the invoice itself never edited.

acme's November invoice (test_invoices.py's scenario) is INV-000001, 59.00 in all.
"""

import threading
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from billing.invoicing.credit_notes import credit_note_issue, invoice_credit_left, invoice_void
from billing.models import CreditNote, Invoice, InvoiceSequence
from wallets.models import CreditGrant, Wallet

from . import test_invoice_api as invoice_api
from . import test_invoices as scenario

clock = scenario.clock
amended = scenario.amended
invoice = invoice_api.invoice
URL = "/api/v1/customers/acme/invoices/INV-000001/credit-notes"
ISSUED_AT = "2026-12-02T01:00:00Z"


def stored(invoice: Invoice) -> tuple:
    """What a refused credit note must leave as it was."""
    invoice.refresh_from_db()
    wallet = Wallet.objects.get()
    return (
        list(CreditNote.objects.values_list("number", "amount")),
        (invoice.status, invoice.total, invoice.voided_at, invoice.lines.count()),
        (wallet.balance, wallet.grants.count(), wallet.entries.count()),
        InvoiceSequence.objects.filter(name="credit-notes").values_list("next_number").first(),
    )


@pytest.fixture
def paid(invoice, clock) -> Invoice:
    """INV-000001 once its customer paid it (as Stripe's webhook records a payment)."""
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID, paid_at=clock.now)
    invoice.refresh_from_db()
    return invoice


def test_goodwill_goes_back_to_the_wallet_and_leaves_the_invoice_as_it_was(paid):
    invoice = paid
    note = credit_note_issue(
        invoice=invoice, amount=D("10.00"), memo="Outage on Nov 12", destination="wallet",
        created_by="ops",
    )  # fmt: skip

    assert (note.number, note.reason, note.amount, note.exact_amount, note.created_by) == (
        "CN-000001", "goodwill", D("10"), D("10"), "ops",
    )  # fmt: skip
    grant = CreditGrant.objects.get(source="refund")
    assert (grant.amount, grant.reason) == (D("10"), "credit note CN-000001 on INV-000001")
    assert Wallet.objects.get().balance == D("10")  # the 5.00 bought were spent in November
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total, invoice.lines.count()) == ("paid", D("59"), 7)
    assert invoice_credit_left(invoice=invoice) == D("49")


@pytest.mark.parametrize(
    "issue",
    [
        lambda invoice: credit_note_issue(
            invoice=invoice, amount=D(1), memo="Goodwill", destination="wallet"
        ),
        lambda invoice: invoice_void(invoice=invoice, memo="Billed in error", destination="wallet"),
    ],
    ids=["goodwill", "void"],
)
def test_an_unpaid_invoice_is_never_credited_to_the_wallet(invoice, issue):
    before = stored(invoice)

    with pytest.raises(ValidationError) as refused:
        issue(invoice)

    assert refused.value.message_dict == {
        "destination": [
            "Invoice INV-000001 is not paid: credit it to stripe or none. Credits to the "
            "wallet would give back money never received."
        ]
    }
    assert stored(invoice) == before


def test_crediting_past_the_total_is_refused_and_nothing_is_stored(invoice):
    credit_note_issue(invoice=invoice, amount=D("50"), memo="Outage", destination="none")
    before = stored(invoice)

    with pytest.raises(ValidationError) as refused:
        credit_note_issue(invoice=invoice, amount=D("9.01"), memo="More", destination="none")

    assert refused.value.message_dict == {
        "amount": ["At most 9.00 USD is left to credit on INV-000001."]
    }
    assert stored(invoice) == before
    last = credit_note_issue(invoice=invoice, amount=D("9"), memo="More", destination="none")
    assert (last.number, invoice_credit_left(invoice=invoice)) == ("CN-000002", D(0))


def test_a_void_credits_what_is_left_and_marks_the_invoice_void(paid, clock):
    invoice = paid
    credit_note_issue(invoice=invoice, amount=D("10"), memo="Outage", destination="wallet")

    note = invoice_void(invoice=invoice, memo="Billed in error", created_by="ops")

    invoice.refresh_from_db()
    assert (note.number, note.reason, note.amount, note.destination) == (
        "CN-000002", "void", D("49"), "none",
    )  # fmt: skip
    assert (invoice.status, invoice.voided_at, invoice.total) == ("void", clock.now, D("59"))
    assert Wallet.objects.get().balance == D("10")  # the void's credit was recorded only


@pytest.mark.parametrize(
    "issue",
    [
        lambda invoice: invoice_void(invoice=invoice, memo="Again"),
        lambda invoice: credit_note_issue(
            invoice=invoice, amount=D(1), memo="Goodwill", destination="wallet"
        ),
    ],
    ids=["void", "goodwill"],
)
def test_a_void_invoice_takes_no_credit_note(invoice, issue):
    invoice_void(invoice=invoice, memo="Billed in error")
    before = stored(invoice)

    with pytest.raises(ValidationError) as refused:
        issue(invoice)

    assert refused.value.messages == [
        "Invoice INV-000001 is void: only a finalized invoice takes a credit note."
    ]
    assert stored(invoice) == before


def test_a_draft_invoice_takes_no_credit_note(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status="draft")
    before = stored(invoice)

    with pytest.raises(ValidationError) as refused:
        invoice_void(invoice=invoice, memo="Billed in error", destination="wallet")

    assert refused.value.messages == [
        "Invoice INV-000001 is draft: only a finalized invoice takes a credit note."
    ]
    assert stored(invoice) == before


def test_a_credit_note_for_stripe_is_recorded_for_the_stripe_sync_to_push(invoice):
    note = credit_note_issue(invoice=invoice, amount=D("5"), memo="Late", destination="stripe")

    assert (note.destination, note.stripe_id) == ("stripe", "")
    assert Wallet.objects.get().grants.count() == 1  # no credits: Stripe credits the invoice


@pytest.mark.parametrize(
    ("amount", "memo", "destination", "errors"),
    [
        (D("0"), "x", "wallet", {"amount": ["Must be greater than 0."]}),
        (D("1.005"), "x", "wallet", {"amount": ["Give at most 2 decimal places for USD."]}),
        (D("1"), " ", "wallet", {"memo": ["Say why: the memo is printed on the credit note."]}),
        (D("1"), "x", "bank", {"destination": ["Use one of wallet, stripe, none."]}),
    ],
)
def test_a_bad_credit_note_is_refused_and_nothing_is_stored(
    invoice, amount, memo, destination, errors
):
    before = stored(invoice)

    with pytest.raises(ValidationError) as refused:
        credit_note_issue(invoice=invoice, amount=amount, memo=memo, destination=destination)

    assert refused.value.message_dict == errors
    assert stored(invoice) == before


# --- over the API -------------------------------------------------------------------------


def test_goodwill_over_the_api(api, paid, operator_key):
    response = api.post(
        URL,
        {"reason": "goodwill", "amount": "12.50", "memo": "Outage", "destination": "wallet"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json() == {
        "number": "CN-000001",
        "invoice": "INV-000001",
        "reason": "goodwill",
        "memo": "Outage",
        "destination": "wallet",
        "exact_amount": "12.500000000000",
        "amount": "12.50",
        "created_by": f"API key test operator (tt_{operator_key.split('_')[1]}_…)",
        "created_at": ISSUED_AT,
        "stripe_id": None,
    }
    shown = api.get("/api/v1/customers/acme/invoices/INV-000001").json()
    assert (shown["credited"], shown["status"]) == ("12.50", "paid")
    assert [note["number"] for note in shown["credit_notes"]] == ["CN-000001"]


def test_a_void_over_the_api(api, invoice):
    response = api.post(
        URL, {"reason": "void", "memo": "Billed in error", "destination": "none"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert (response.json()["amount"], response.json()["reason"]) == ("59.00", "void")
    shown = api.get("/api/v1/customers/acme/invoices/INV-000001").json()
    assert (shown["status"], shown["voided_at"], shown["credited"]) == (
        "void", ISSUED_AT, "59.00",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"reason": "goodwill", "amount": "59.01", "memo": "x", "destination": "none"},
            {"amount": ["At most 59.00 USD is left to credit on INV-000001."]},
        ),
        (
            {"reason": "goodwill", "memo": "x", "destination": "wallet"},
            {"amount": ["Required for goodwill."]},
        ),
        (
            {"reason": "void", "amount": "1", "memo": "x", "destination": "none"},
            {"amount": ["A void credits what is left of the invoice: leave amount out."]},
        ),
        (
            {"reason": "rerating", "amount": "1", "memo": "x", "destination": "none"},
            {"reason": ['"rerating" is not a valid choice.']},
        ),
        (
            {"reason": "goodwill", "amount": "1", "memo": "x", "destination": "none", "by": 1},
            {"by": ["Unknown field."]},
        ),
    ],
    ids=["over the total", "no amount", "void with an amount", "rerating", "unknown field"],
)
def test_refused_over_the_api_with_nothing_stored(api, invoice, body, errors):
    before = stored(invoice)

    response = api.post(URL, body, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert stored(invoice) == before


def test_another_customers_invoice_cannot_be_credited(api, invoice):
    from contracts.services import customer_create

    customer_create(external_id="globex", name="Globex", currency="USD")
    before = stored(invoice)

    response = api.post(
        "/api/v1/customers/globex/invoices/INV-000001/credit-notes",
        {"reason": "void", "memo": "x", "destination": "none"},
        format="json",
    )

    assert response.status_code == 404
    assert stored(invoice) == before


# --- races --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_credit_notes_racing_for_the_rest_of_an_invoice_never_pass_its_total(invoice):
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")
    outcomes, barrier = [], threading.Barrier(8)

    def issue() -> None:
        try:
            barrier.wait(timeout=30)
            credit_note_issue(invoice=invoice, amount=D("10"), memo="race", destination="none")
            outcomes.append("issued")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # 59.00 takes five notes of 10.00
    assert (outcomes.count("issued"), outcomes.count("refused")) == (5, 3)
    assert list(CreditNote.objects.order_by("number").values_list("number", flat=True)) == [
        f"CN-00000{n}" for n in range(1, 6)
    ]
    assert invoice_credit_left(invoice=invoice) == D("9")
