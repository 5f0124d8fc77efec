"""Billing periods over the API and the close_periods command: where each period stands,
and closing what is due, once, recorded in the audit trail when someone asked for it.

The scenario is test_invoices.py's: acme's November with a fee of 30.00 and an allowance
of 10.00, an amendment halfway (a fee of 60.00, 10 % off) and 5.00 of prepaid credits;
three calls of 10.00. By hand: fees 15.00 + 30.00, usage 20.00 + 10.00, discount -1.00,
allowance -10.00, so charges of 64.00 before credits, 5.00 of credits: 59.00 due.
"""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from billing import tasks
from billing.invoicing.closing import periods_close_due
from billing.management.commands import close_periods
from billing.models import BillingPeriod, CreditNote, Invoice
from common.models import AuditEntry, IdempotencyKey
from contracts.models import ApiKey
from contracts.services import (
    contract_create,
    contract_end,
    customer_api_key_create,
    customer_create,
)

from . import test_invoice_api as invoice_api
from . import test_invoices as scenario
from .conftest import NOVEMBER, event, ingest, rate

clock, amended = scenario.clock, scenario.amended
DECEMBER, JANUARY = scenario.DECEMBER, scenario.JANUARY
CLOSED_AT, NOV = invoice_api.CLOSED_AT, invoice_api.NOV
DEC = {"start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
PERIODS = "/api/v1/customers/acme/periods"
CLOSE = "/api/v1/periods/close"
INV_000001 = invoice_api.NOVEMBER_INVOICE
NOVEMBER_CLOSED = {
    "invoice": "INV-000001",
    "closed_at": CLOSED_AT,
    "charges": "64.00",
    "credits": "5.00",
    "events": 3,
    "billed_until": CLOSED_AT,
}


def periods(api, url: str = PERIODS) -> list[tuple]:
    answer = api.get(url)
    assert answer.status_code == 200, answer.content
    return [(p["period"], p["status"], p["due_at"], p["closed"]) for p in answer.json()["periods"]]


def close(api, body: dict | None = None, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(CLOSE, body or {}, format="json", **headers)


def rows() -> tuple[int, int, int, int]:
    return (
        Invoice.objects.count(),
        BillingPeriod.objects.count(),
        CreditNote.objects.count(),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def globex(amended, rate_card):
    """Another customer on the card from November 1, with no usage."""
    customer = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_create(customer=customer, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    return customer


def test_a_period_is_open_then_in_grace_then_due_then_closed_with_what_it_billed(
    api, clock, amended
):
    scenario.november_usage(clock)  # November 25
    answer = api.get(PERIODS).json()
    assert answer == {
        "customer_id": "acme",
        "currency": "USD",
        "grace_hours": 24,
        "periods": [
            {"period": NOV, "contract": amended.pk, "status": "open",
             "due_at": "2026-12-02T00:00:00Z", "closed": None},
        ],
    }  # fmt: skip

    clock.now = DECEMBER + timedelta(hours=12)
    assert periods(api) == [
        (DEC, "open", "2027-01-02T00:00:00Z", None),
        (NOV, "in_grace", "2026-12-02T00:00:00Z", None),
    ]

    clock.now = DECEMBER + timedelta(hours=24)  # the grace has passed, to the microsecond
    assert periods(api)[1] == (NOV, "due", "2026-12-02T00:00:00Z", None)

    clock.now = DECEMBER + timedelta(hours=25)
    closed = close(api)
    assert (closed.status_code, closed.json()) == (
        200, {"customer_id": None, "invoices": [INV_000001], "periods": 1, "corrections": 0},
    )  # fmt: skip
    assert periods(api) == [
        (DEC, "open", "2027-01-02T00:00:00Z", None),
        (NOV, "closed", "2026-12-02T00:00:00Z", NOVEMBER_CLOSED),
    ]

    # closing again makes nothing more
    again = close(api)
    assert again.json() == {"customer_id": None, "invoices": [], "periods": 0, "corrections": 0}
    assert Invoice.objects.count() == 1


def test_closing_one_customer_leaves_the_others_due(api, clock, amended, globex):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    answer = close(api, {"customer": "acme"})

    assert answer.json()["invoices"] == [INV_000001]
    assert periods(api, "/api/v1/customers/globex/periods")[1][1] == "due"
    others = close(api).json()
    assert [(i["number"], i["customer_id"], i["total"]) for i in others["invoices"]] == [
        ("INV-000002", "globex", "0.00")
    ]
    assert periods(api, "/api/v1/customers/globex/periods")[1][1] == "closed"


def test_a_closing_asked_for_is_audited_and_beat_s_is_not(api, clock, amended, globex):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    close(api, {"customer": "acme"})
    assert tasks.close_due_periods() == 1  # globex's November, by beat

    entry = AuditEntry.objects.get()
    key = ApiKey.objects.get(name="test operator")
    period = BillingPeriod.objects.get(customer__external_id="acme")
    assert (entry.actor, entry.action, entry.customer, entry.object_id) == (
        f"key:test operator ({key.prefix})", "billing_period.close", "acme", str(period.pk),
    )  # fmt: skip
    assert (entry.after["invoice_number"], entry.after["start"], entry.before) == (
        "INV-000001", "2026-11-01T00:00:00+00:00", None,
    )  # fmt: skip
    assert Decimal(entry.after["billed_total"]) == Decimal("64")


def test_the_same_key_answers_the_first_closing_again(api, clock, amended):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    first = close(api, {"customer": "acme"}, key="close-nov")
    again = close(api, {"customer": "acme"}, key="close-nov")

    assert again.json() == first.json()
    assert (again["Idempotent-Replayed"], len(first.json()["invoices"])) == ("true", 1)
    assert Invoice.objects.count() == 1


def test_closing_on_request_rates_what_is_queued_first(api, clock, amended):
    clock.now = datetime(2026, 11, 25, tzinfo=UTC)
    ingest(*(
        event(name, datetime(2026, 11, day, 10, tzinfo=UTC), metrics=scenario.MILLION_OUT)
        for name, day in (("a", 5), ("b", 5), ("c", 20))
    ))  # fmt: skip
    clock.now = DECEMBER + timedelta(hours=25)

    answer = close(api, key="close-all")  # in the key's transaction, rating included

    # rated and drawn before it closed: the same invoice as when rated at once
    assert answer.json()["invoices"] == [INV_000001]
    assert periods(api)[1][3] == NOVEMBER_CLOSED


@pytest.mark.parametrize(
    ("body", "status", "errors"),
    [
        ({"customer": "nobody"}, 404, {"detail": "No customer with external_id 'nobody'."}),
        ({"customers": "acme"}, 400, {"customers": ["Unknown field."]}),
        ({"customer": ""}, 400, {"customer": ["This field may not be blank."]}),
    ],
)
def test_a_refused_closing_closes_nothing(api, clock, amended, body, status, errors):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    answer = close(api, body, key="refused")

    assert (answer.status_code, answer.json()) == (status, errors)
    assert rows() == (0, 0, 0, 0)
    assert not IdempotencyKey.objects.exists()


def test_an_unknown_customer_has_no_periods(api, db):
    answer = api.get("/api/v1/customers/nobody/periods")

    assert (answer.status_code, answer.json()) == (
        404, {"detail": "No customer with external_id 'nobody'."},
    )  # fmt: skip


def test_a_customer_without_a_contract_has_no_periods(api, acme):
    assert api.get(PERIODS).json()["periods"] == []


def test_a_customer_key_reads_no_period_and_closes_nothing(clock, amended):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)
    _, key = customer_api_key_create(customer=amended.customer, name="dash", created_by="ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    refused = {"detail": "A customer's API key cannot call this endpoint."}

    for answer in (client.get(PERIODS), close(client), close(client, {"customer": "acme"})):
        assert (answer.status_code, answer.json()) == (403, refused)
    assert rows() == (0, 0, 0, 0)


def test_an_ended_contract_s_final_invoice_is_answered_too(api, clock, acme, rate_card):
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1,
        fixed_fee=Decimal("30"),
    )  # fmt: skip
    contract_end(contract=contract, ends_at=DECEMBER)
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    ingest(event("nov", datetime(2026, 11, 5, 10, tzinfo=UTC), metrics=scenario.MILLION_OUT))
    rate()
    clock.now = DECEMBER + timedelta(hours=25)
    assert [i["total"] for i in close(api).json()["invoices"]] == ["40.00"]  # 30.00 + 10.00

    clock.now = DECEMBER + timedelta(days=3)
    ingest(event("late", datetime(2026, 11, 29, tzinfo=UTC), metrics=scenario.MILLION_OUT))
    rate()
    clock.now += timedelta(hours=25)  # the grace after the latest change

    answer = close(api).json()

    assert (answer["periods"], answer["corrections"]) == (0, 1)
    assert [(i["number"], i["period"], i["total"]) for i in answer["invoices"]] == [
        ("INV-000002", NOV, "10.00")
    ]
    assert list(AuditEntry.objects.values_list("action", "reason")) == [
        ("billing_period.close", ""),
        ("invoice.create", "corrections of closed periods, the contracts ended"),
    ]


# --- The command and beat -----------------------------------------------------------------


def run(*args) -> str:
    out = io.StringIO()
    call_command("close_periods", *args, stdout=out)
    return out.getvalue()


def test_the_command_closes_what_is_due_says_what_it_made_and_is_audited(clock, amended, globex):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    assert run("--customer", "acme") == (
        "INV-000001  acme  2026-11-01 to 2026-11-30  59.00 USD\nClosed 1 period: 1 invoice.\n"
    )
    assert run() == (
        "INV-000002  globex  2026-11-01 to 2026-11-30  0.00 USD\nClosed 1 period: 1 invoice.\n"
    )
    assert run() == "Nothing was due.\n"
    assert list(AuditEntry.objects.values_list("actor", "action", "customer")) == [
        ("command:close_periods", "billing_period.close", "acme"),
        ("command:close_periods", "billing_period.close", "globex"),
    ]


def test_the_command_refuses_an_unknown_customer(clock, amended):
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    with pytest.raises(CommandError, match=r"No customer with external_id 'nobody'\."):
        run("--customer", "nobody")
    assert rows() == (0, 0, 0, 0)


def test_beat_closes_with_the_command_s_function_and_records_nothing(clock, amended, globex):
    assert tasks.periods_close is close_periods.periods_close
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)

    assert tasks.close_due_periods() == 2
    assert periods_close_due() == 0
    assert (Invoice.objects.count(), AuditEntry.objects.count()) == (2, 0)
