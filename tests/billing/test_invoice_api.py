"""GET /api/v1/customers/{id}/invoices[/{number}[/lines/{position}/events]] and
/invoice-preview: invoices as billed, to the cent, and the events behind a usage line.

The scenario is test_invoices.py's: acme's November with a fee, an amendment halfway, an
allowance and 5.00 of prepaid credits, closed on December 2.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.invoicing.closing import periods_close_due
from billing.models import Invoice
from contracts.services import customer_create

from . import test_invoices as scenario
from .conftest import event, ingest, rate

clock = scenario.clock
amended = scenario.amended
DECEMBER, JANUARY = scenario.DECEMBER, scenario.JANUARY
URL = "/api/v1/customers/acme/invoices"
NOV = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
GPT_4O = {"name": "gpt-4o", "rate_card": "Standard", "version": 1}
CLOSED_AT = "2026-12-02T01:00:00Z"


@pytest.fixture
def invoice(clock, amended) -> Invoice:
    """acme's November, closed on December 2 into INV-000001 (59.00)."""
    scenario.november_usage(clock)
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 1
    return Invoice.objects.get()


def line(position, kind, description, quantity, unit_price, exact, amount, **more) -> dict:
    return {
        "position": position,
        "kind": kind,
        "description": description,
        "period": NOV,
        "quantity": quantity,
        "unit_price": unit_price,
        "exact_amount": exact,
        "amount": amount,
        "price": None,
        "terms": None,
        "event_count": 0,
        "first_event_at": None,
        "last_event_at": None,
        "details": [],
        **more,
    }


ONE = "1.000000000000"


def output_tokens(quantity: str) -> dict:
    """gpt-4o's output tokens on a line: no input or cached tokens were sent, so only
    these are listed."""
    return {
        "metric": "output_tokens", "label": "Output tokens", "quantity": quantity,
        "rate": "10.00", "per": "1M tokens",
    }  # fmt: skip


NOVEMBER_LINES = [
    line(1, "fixed_fee", "Monthly fee, 2026-11-01 to 2026-11-15", ONE,
         "15.000000000000", "15.000000000000", "15.00", terms=1),
    line(2, "fixed_fee", "Monthly fee, 2026-11-16 to 2026-11-30", ONE,
         "30.000000000000", "30.000000000000", "30.00", terms=2),
    line(3, "usage", "gpt-4o, 2026-11-01 to 2026-11-15", "2.000000000000", "10.000000000000",
         "20.000000000000", "20.00", price=GPT_4O, terms=1, event_count=2,
         first_event_at="2026-11-05T10:00:00Z", last_event_at="2026-11-05T11:00:00Z",
         # 2 calls of 1M output tokens at 10.00 per 1M: 20.00, the line's amount
         details=[output_tokens("2000000")]),
    line(4, "usage", "gpt-4o, 2026-11-16 to 2026-11-30", ONE, "10.000000000000",
         "10.000000000000", "10.00", price=GPT_4O, terms=2, event_count=1,
         first_event_at="2026-11-20T10:00:00Z", last_event_at="2026-11-20T10:00:00Z",
         details=[output_tokens("1000000")]),
    line(5, "discount", "Discount 10 % on usage, 2026-11-16 to 2026-11-30", ONE, "-1.000000000000",
         "-1.000000000000", "-1.00", terms=2),
    line(6, "allowance",
         "Included usage allowance: 10.00 USD of 10.00 USD used, 2026-11-01 to 2026-11-30", ONE,
         "-10.000000000000",
         "-10.000000000000", "-10.00"),
    line(7, "credits", "Prepaid credits applied, 2026-11-01 to 2026-11-30", ONE,
         "-5.000000000000", "-5.000000000000", "-5.00"),
]  # fmt: skip


#: INV-000001 as the list shows it (without its lines).
NOVEMBER_INVOICE = {
    "number": "INV-000001",
    "customer_id": "acme",
    "currency": "USD",
    "status": "finalized",
    "period": NOV,
    "total": "59.00",
    "credited": "0.00",
    "amount_due": "59.00",
    "created_at": CLOSED_AT,
    "finalized_at": CLOSED_AT,
    "due_at": "2027-01-01T01:00:00Z",  # 2 December 01:00 + 30 days (29 in December, then 1)
    "paid_at": None,
    "voided_at": None,
    "stripe_id": None,
    "stripe_status": None,
    "stripe_hosted_url": None,
}


def get(api, url: str, **params) -> dict:
    response = api.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_an_invoice_shows_every_line_exactly_and_as_billed(api, invoice):
    shown = get(api, f"{URL}/INV-000001")

    assert shown == {**NOVEMBER_INVOICE, "lines": NOVEMBER_LINES, "credit_notes": []}


def test_the_list_is_newest_first_a_page_at_a_time(api, invoice, clock):
    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()

    first = get(api, URL, page_size=1)
    second = api.get(first["next"]).json()

    assert [invoice["number"] for invoice in first["results"]] == ["INV-000002"]
    assert first["results"][0]["period"] == {
        "start": "2026-12-01T00:00:00Z",
        "end": "2027-01-01T00:00:00Z",
    }
    assert [invoice["number"] for invoice in second["results"]] == ["INV-000001"]
    assert second["next"] is None
    assert "lines" not in second["results"][0]
    assert second["results"][0]["total"] == "59.00"


def test_another_customers_invoice_is_not_found(api, invoice):
    customer_create(external_id="globex", name="Globex", currency="USD")

    theirs = api.get("/api/v1/customers/globex/invoices/INV-000001")
    events = api.get("/api/v1/customers/globex/invoices/INV-000001/lines/3/events")
    listed = get(api, "/api/v1/customers/globex/invoices")

    assert (theirs.status_code, theirs.json()) == (
        404, {"detail": "No invoice INV-000001 for customer 'globex'."},
    )  # fmt: skip
    assert events.status_code == 404
    assert listed == {"next": None, "previous": None, "results": []}
    assert api.get("/api/v1/customers/nobody/invoices").status_code == 404
    assert api.get(f"{URL}/INV-999999").status_code == 404


def test_invoices_need_an_operator_key(invoice, client):
    assert client.get(f"{URL}/INV-000001").status_code == 401


def test_a_usage_line_lists_its_events_a_page_at_a_time(api, invoice):
    first = get(api, f"{URL}/INV-000001/lines/3/events", limit=1)
    second = api.get(first["next"]).json()

    assert first["results"] == [
        {
            "event_id": "a",
            "timestamp": "2026-11-05T10:00:00Z",
            "model": "gpt-4o",
            "feature": "",
            "metrics": {"output_tokens": 1_000_000},
            "amount": "10.000000000000",
            "quantity": None,
            "rated_at": "2026-11-25T00:00:00Z",
        }
    ]
    assert [rated["event_id"] for rated in second["results"]] == ["b"]
    assert second["next"] is None
    other_terms = get(api, f"{URL}/INV-000001/lines/4/events")
    assert [rated["event_id"] for rated in other_terms["results"]] == ["c"]


def test_only_usage_lines_have_events(api, invoice):
    fee = api.get(f"{URL}/INV-000001/lines/1/events")
    missing = api.get(f"{URL}/INV-000001/lines/8/events")

    assert (fee.status_code, fee.json()) == (
        404, {"detail": "Invoice INV-000001 has no usage line 1."},
    )  # fmt: skip
    assert missing.status_code == 404


def test_a_late_usage_line_lists_the_late_events(api, invoice, clock):
    clock.now = DECEMBER + timedelta(days=3)
    ingest(event("late", datetime(2026, 11, 29, tzinfo=UTC), metrics=scenario.MILLION_OUT))
    rate()
    clock.now = JANUARY + timedelta(hours=25)
    periods_close_due()

    december = get(api, f"{URL}/INV-000002")
    late = next(line for line in december["lines"] if line["kind"] == "late_usage")
    events = get(api, f"{URL}/INV-000002/lines/{late['position']}/events")

    assert (late["description"], late["amount"], late["event_count"]) == (
        "Correction of invoice INV-000001, 2026-11-01 to 2026-11-30: 1 call received late",
        "9.00", 1,
    )  # fmt: skip
    assert [rated["event_id"] for rated in events["results"]] == ["late"]


def test_the_preview_is_the_invoice_closing_then_produces(api, clock, amended):
    scenario.november_usage(clock)

    preview = get(api, "/api/v1/customers/acme/invoice-preview")
    clock.now = DECEMBER + timedelta(hours=25)
    periods_close_due()
    closed = get(api, f"{URL}/INV-000001")

    assert preview == {
        **closed,
        "number": None,
        "status": "preview",
        "created_at": "2026-11-25T00:00:00Z",
        "finalized_at": None,
        "due_at": None,
    }
    assert preview["lines"] == NOVEMBER_LINES


def test_the_preview_of_a_customer_without_usage_is_empty(api, acme, now):
    preview = get(api, "/api/v1/customers/acme/invoice-preview")

    assert (preview["period"], preview["total"], preview["lines"]) == (NOV, "0.00", [])


def test_the_preview_reads_rollups_and_only_the_events_that_wait(api, clock, amended):
    scenario.november_usage(clock)

    with CaptureQueriesContext(connection) as queries:
        get(api, "/api/v1/customers/acme/invoice-preview")

    statements = [query["sql"] for query in queries.captured_queries]
    assert any("billing_usagerollup" in sql for sql in statements)
    # events and their ratings are read only from the rating queue: those that wait to be
    # rated again, whose ratings are taken out of the figures (none here)
    reading_events = [
        sql for sql in statements if "billing_ratedevent" in sql or "metering_usageevent" in sql
    ]
    assert reading_events
    assert all("metering_unratedevent" in sql for sql in reading_events)
