"""The invoice answers as their serializers shape them, where the scenario tests do not
look: a currency without minor places, Stripe ids once pushed, and the order of the keys."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import CreditNote, Invoice, InvoiceLine
from contracts.services import customer_create

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
CLOSED = datetime(2026, 12, 2, 1, 0, 0, 250000, tzinfo=UTC)
URL = "/api/v1/customers/kaisha/invoices"


@pytest.fixture
def yen_invoice(db) -> Invoice:
    """A JPY invoice of one line (1234.5 exact, billed 1235), pushed to Stripe, credited 100."""
    customer = customer_create(external_id="kaisha", name="Kaisha KK", currency="JPY")
    invoice = Invoice.objects.create(
        customer=customer,
        number="INV-000009",
        currency="JPY",
        status=Invoice.Status.FINALIZED,
        period_start=NOV,
        period_end=DEC,
        total=Decimal("1235"),
        created_at=CLOSED,
        finalized_at=CLOSED,
        stripe_id="in_123",
        stripe_status="open",
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        position=1,
        kind=InvoiceLine.Kind.FIXED_FEE,
        description="Fixed fee",
        period_start=NOV,
        period_end=DEC,
        unit_price=Decimal("1234.5"),
        exact_amount=Decimal("1234.5"),
        amount=Decimal("1235"),
    )
    CreditNote.objects.create(
        invoice=invoice,
        number="CN-000009",
        reason=CreditNote.Reason.GOODWILL,
        destination=CreditNote.Destination.NONE,
        exact_amount=Decimal("99.6"),
        amount=Decimal("100"),
        created_at=CLOSED,
        stripe_id="cn_9",
    )
    return invoice


HEAD = ["number", "customer_id", "currency", "status", "period", "total", "credited",
        "amount_due", "created_at", "finalized_at", "due_at", "paid_at", "voided_at", "stripe_id",
        "stripe_status", "stripe_hosted_url"]  # fmt: skip


def test_yen_is_billed_without_minor_places_and_exact_with_12(api, yen_invoice):
    shown = api.get(f"{URL}/INV-000009").json()

    assert list(shown) == [*HEAD, "lines", "credit_notes"]
    assert (shown["total"], shown["credited"]) == ("1235", "100")
    assert (shown["stripe_id"], shown["stripe_status"]) == ("in_123", "open")
    assert shown["created_at"] == "2026-12-02T01:00:00.250000Z"
    (line,) = shown["lines"]
    assert (line["exact_amount"], line["amount"]) == ("1234.500000000000", "1235")
    assert list(line) == [
        "position", "kind", "description", "period", "quantity", "unit_price", "exact_amount",
        "amount", "price", "terms", "event_count", "first_event_at", "last_event_at",
        "details",
    ]  # fmt: skip
    assert shown["credit_notes"] == [
        {
            "number": "CN-000009",
            "invoice": "INV-000009",
            "reason": "goodwill",
            "memo": "",
            "destination": "none",
            "exact_amount": "99.600000000000",
            "amount": "100",
            "created_by": "",
            "created_at": "2026-12-02T01:00:00.250000Z",
            "stripe_id": "cn_9",
        }
    ]


def test_the_list_shows_the_head_of_each_invoice(api, yen_invoice):
    page = api.get(URL).json()

    assert list(page) == ["next", "previous", "results"]
    (listed,) = page["results"]
    assert list(listed) == HEAD
    assert listed["credited"] == "100"
