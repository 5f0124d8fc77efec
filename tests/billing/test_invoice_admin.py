"""Invoices in the admin, for staff who are not superusers: read-only invoices with their
lines, each usage line's events, the preview of a customer's period, credit notes for
those allowed to issue them, and the revenue report; refused without the permissions.

acme's November invoice (test_invoices.py's scenario) is INV-000001, 59.00 in all.
"""

import re
from decimal import Decimal as D

from django.contrib.auth.models import Permission, User
from django.urls import reverse

from billing.admin import invoices as admin_invoices
from billing.models import BillingPeriod, CreditNote, Invoice
from tests.admin_pages import shown, table_rows

from . import test_invoice_api as invoice_api
from . import test_invoices as scenario
from . import test_revenue_report as report

clock = scenario.clock
amended = scenario.amended
invoice = invoice_api.invoice
balances = report.balances
LIST_URL = "/admin/billing/invoice/"
VIEWER = ("view_invoice", "view_customer")
BILLING_OPS = (*VIEWER, "add_creditnote")
VOID = {"reason": "void", "destination": "none", "memo": "Billed in error"}


def staff(client, *codenames) -> User:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def urls(invoice: Invoice) -> dict:
    return {
        "events": reverse("admin:billing_invoice_line_events", args=[invoice.pk, 3]),
        "credit_note": reverse("admin:billing_invoice_credit_note", args=[invoice.pk]),
        "preview": reverse("admin:billing_invoice_preview", args=[invoice.customer_id]),
        "report": reverse("admin:billing_revenue_report"),
    }


def test_the_list_shows_number_customer_period_total_and_status(client, invoice):
    staff(client, *VIEWER)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    rows = [
        [str(value) for value in row]
        for row in response.context["cl"].result_list.values_list("number", "status")
    ]
    assert rows == [["INV-000001", "finalized"]]
    page = response.content.decode()
    assert "2026-11-01 to 2026-11-30" in page
    assert "59.00 USD" in page
    assert urls(invoice)["report"] in page  # the revenue report's button


def test_the_list_is_searched_by_number_and_customer(client, invoice):
    staff(client, *VIEWER)

    def found(query: str) -> int:
        return client.get(LIST_URL, {"q": query}).context["cl"].result_count

    assert (found("INV-000001"), found("acme"), found("Acme"), found("globex")) == (1, 1, 1, 0)


def test_an_invoice_is_shown_read_only_with_its_lines_and_links_to_their_events(client, invoice):
    staff(client, *VIEWER)

    response = client.get(f"{LIST_URL}{invoice.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    # the customer's words, and under them, for ops, what priced the line: the rate card
    # version and the terms
    assert shown(response, "description_shown") == [
        "Monthly fee, 2026-11-01 to 2026-11-15 priced by terms 1",
        "Monthly fee, 2026-11-16 to 2026-11-30 priced by terms 2",
        "gpt-4o, 2026-11-01 to 2026-11-15 priced by Standard v1, terms 1",
        "gpt-4o, 2026-11-16 to 2026-11-30 priced by Standard v1, terms 2",
        "Discount 10 % on usage, 2026-11-16 to 2026-11-30 priced by terms 2",
        "Included usage allowance: 10.00 USD of 10.00 USD used, 2026-11-01 to 2026-11-30",
        "Prepaid credits applied, 2026-11-01 to 2026-11-30",
    ]
    # fees, the two usage lines, discount, allowance and credits; money with its minor places
    assert shown(response, "events") == ["—", "—", "2 events", "1 event", "—", "—", "—"]
    assert shown(response, "amount_shown") == [
        "15.00 USD", "30.00 USD", "20.00 USD", "10.00 USD", "-1.00 USD", "-10.00 USD",
        "-5.00 USD",
    ]  # fmt: skip
    assert shown(response, "total_shown") == ["59.00 USD"]
    assert shown(response, "period") == ["2026-11-01 to 2026-11-30"]
    assert urls(invoice)["events"] in page
    assert urls(invoice)["preview"] in page
    assert urls(invoice)["credit_note"] not in page  # viewing is not crediting
    assert 'name="_save"' not in page
    assert client.get(f"{LIST_URL}add/").status_code == 403
    assert client.post(f"{LIST_URL}{invoice.pk}/delete/").status_code == 403


def test_a_usage_line_lists_its_events_a_page_at_a_time(client, invoice, monkeypatch):
    staff(client, *VIEWER)
    monkeypatch.setattr(admin_invoices, "EVENTS_PER_PAGE", 1)
    url = urls(invoice)["events"]

    first, second = client.get(url), client.get(url, {"p": 2})

    assert [rated.event.event_id for rated in first.context["events"]] == ["a"]
    assert [rated.event.event_id for rated in second.context["events"]] == ["b"]
    assert (first.context["has_next"], second.context["has_next"]) == (True, False)
    assert "Events 2 to 2, oldest first." in second.content.decode()
    fee = reverse("admin:billing_invoice_line_events", args=[invoice.pk, 1])
    assert client.get(fee).status_code == 404


def test_the_preview_shows_the_current_period_as_closing_would_invoice_it(client, clock, amended):
    scenario.november_usage(clock)
    staff(client, *VIEWER)

    response = client.get(reverse("admin:billing_invoice_preview", args=[amended.customer_id]))

    assert response.status_code == 200
    assert [(line.kind, line.amount) for line in response.context["lines"]] == [
        ("fixed_fee", D(15)), ("fixed_fee", D(30)), ("usage", D(20)), ("usage", D(10)),
        ("discount", D(-1)), ("allowance", D(-10)), ("credits", D(-5)),
    ]  # fmt: skip
    page = response.content.decode()
    assert "2026-11-01 to 2026-11-30" in page
    assert "59.00 USD" in page


def test_the_customer_page_links_to_invoices_and_the_preview(client, invoice):
    customer_url = f"/admin/contracts/customer/{invoice.customer_id}/change/"
    staff(client, *VIEWER)

    page = client.get(customer_url).content.decode()

    assert f"{LIST_URL}?customer__id__exact={invoice.customer_id}" in page
    assert urls(invoice)["preview"] in page
    listed = client.get(LIST_URL, {"customer__id__exact": invoice.customer_id})
    assert listed.context["cl"].result_count == 1


def test_billing_ops_credit_an_invoice_recorded_with_who(client, invoice):
    staff(client, *BILLING_OPS)
    url = urls(invoice)["credit_note"]
    assert url in client.get(f"{LIST_URL}{invoice.pk}/change/").content.decode()
    assert "At most 59.00 USD is left to credit." in client.get(url).content.decode()

    response = client.post(
        url, {"reason": "goodwill", "amount": "12.50", "destination": "none", "memo": "Outage"}
    )

    assert response.status_code == 302
    note = CreditNote.objects.get()
    assert (note.number, note.amount, note.created_by, note.memo) == (
        "CN-000001", D("12.5"), "ops", "Outage",
    )  # fmt: skip


def test_billing_ops_void_an_invoice(client, invoice):
    staff(client, *BILLING_OPS)

    response = client.post(
        urls(invoice)["credit_note"],
        {"reason": "void", "destination": "stripe", "memo": "Billed in error"},
    )

    assert response.status_code == 302
    invoice.refresh_from_db()
    note = CreditNote.objects.get()
    assert (invoice.status, note.reason, note.amount, note.destination) == (
        "void", "void", D(59), "stripe",
    )  # fmt: skip
    change = client.get(f"{LIST_URL}{invoice.pk}/change/").content.decode()
    assert urls(invoice)["credit_note"] not in change  # a void invoice takes no more


def test_crediting_past_the_total_is_refused_on_the_page_and_nothing_is_stored(client, invoice):
    staff(client, *BILLING_OPS)

    response = client.post(
        urls(invoice)["credit_note"],
        {"reason": "goodwill", "amount": "59.01", "destination": "none", "memo": "Outage"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "amount": ["At most 59.00 USD is left to credit on INV-000001."]
    }
    assert not CreditNote.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == "finalized"


def test_the_revenue_report_is_shown_and_downloaded_as_csv(client, balances):
    staff(client, *VIEWER)
    url = reverse("admin:billing_revenue_report")

    empty = client.get(url)
    shown = client.get(url, {"start": "", "end": "", "customer": "acme"})
    download = client.get(url, {"start": "2026-11-01", "end": "", "customer": "", "csv": "1"})
    unknown = client.get(url, {"customer": "nobody"})

    assert (empty.status_code, empty.context["rows"]) == (200, None)
    assert [row["invoice"] for row in shown.context["rows"]] == ["INV-000001", "INV-000002"]
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == 'attachment; filename="revenue-report.csv"'
    assert download.content.decode() == report.CSV
    assert unknown.context["form"].errors == {
        "customer": ["No customer with external id 'nobody'."]
    }


def test_staff_without_the_permissions_see_none_of_it(client, invoice):
    staff(client, "view_customer")

    answers = {name: client.get(url).status_code for name, url in urls(invoice).items()}
    posted = client.post(urls(invoice)["credit_note"], VOID)

    assert answers == {"events": 403, "credit_note": 403, "preview": 403, "report": 403}
    assert client.get(LIST_URL).status_code == 403
    assert posted.status_code == 403
    assert not CreditNote.objects.exists()
    customer_page = client.get(f"/admin/contracts/customer/{invoice.customer_id}/change/")
    assert urls(invoice)["preview"] not in customer_page.content.decode()


def test_viewers_cannot_issue_credit_notes(client, invoice):
    staff(client, *VIEWER)

    response = client.post(urls(invoice)["credit_note"], VOID)

    assert response.status_code == 403
    assert not CreditNote.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == "finalized"


def test_periods_and_credit_notes_are_read_only_lists(client, invoice):
    staff(client, *BILLING_OPS, "view_billingperiod", "view_creditnote")
    client.post(
        urls(invoice)["credit_note"],
        {"reason": "goodwill", "amount": "1", "destination": "none", "memo": "Outage"},
    )

    periods = client.get("/admin/billing/billingperiod/")
    notes = client.get("/admin/billing/creditnote/")

    assert (periods.status_code, periods.context["cl"].result_count) == (200, 1)
    assert (notes.status_code, notes.context["cl"].result_count) == (200, 1)
    assert "CN-000001" in notes.content.decode()
    assert client.get("/admin/billing/creditnote/add/").status_code == 403


# --- money on screen: billed figures, exact ones only where they explain a line -----------

TWELVE_PLACES = re.compile(r"\d\.\d{12}\b")
MINOR_MONEY = re.compile(r"\d\.\d{2} (USD|EUR|JPY)\b")


def test_an_invoice_page_leads_with_its_total_and_lines_and_folds_what_stripe_knows(
    client, invoice
):
    staff(client, *VIEWER)

    page = client.get(f"{LIST_URL}{invoice.pk}/change/").content.decode()

    # two rows before the lines (customer and status, period and total), then the lines,
    # the credit notes, the dates, and Stripe folded in a closed <details>
    head, lines = page.index('id="lines-group"'), page.index('id="credit_notes-group"')
    dates, stripe = page.index(">Dates</h2>"), page.index(">Stripe: not pushed</h2>")
    assert page.count('class="form-row', 0, head) == 2
    assert page.index("field-total_shown") < head < lines < dates < stripe
    assert page.rfind("<details>", dates, stripe) > page.rfind("</details>", dates, stripe)
    assert TWELVE_PLACES.search(page) is None  # billed money only


def test_stripe_is_unfolded_when_it_refused_the_invoice(client, invoice):
    Invoice.objects.filter(pk=invoice.pk).update(stripe_error="Your card was declined.")
    staff(client, *VIEWER)

    response = client.get(f"{LIST_URL}{invoice.pk}/change/")

    page = response.content.decode()
    stripe = page.index(">Stripe: refused, see the error</h2>")
    assert "<details>" not in page[page.rfind("<fieldset", 0, stripe) : stripe]
    assert shown(response, "stripe_error") == ["Your card was declined."]


def test_a_usage_lines_events_explain_it_in_exact_figures_only(client, invoice):
    staff(client, *VIEWER)

    response = client.get(urls(invoice)["events"])  # line 3: two calls at 10.00

    page = response.content.decode()
    times = "\N{MULTIPLICATION SIGN}"
    assert f"2 {times} 10.000000000000 USD = 20.000000000000 USD exactly." in page
    assert [row[4] for row in table_rows(response, "result_list")] == [
        "amount", "10.000000000000 USD", "10.000000000000 USD",
    ]  # fmt: skip
    assert MINOR_MONEY.search(page) is None  # never both on one page


def test_the_preview_lists_billed_lines_and_their_total(client, clock, amended):
    scenario.november_usage(clock)
    staff(client, *VIEWER)

    response = client.get(reverse("admin:billing_invoice_preview", args=[amended.customer_id]))

    rows = table_rows(response, "result_list")
    assert rows[0] == ["#", "description", "events", "amount"]
    assert [(row[2], row[3]) for row in rows[1:-1]] == [
        ("—", "15.00 USD"), ("—", "30.00 USD"), ("2", "20.00 USD"), ("1", "10.00 USD"),
        ("—", "-1.00 USD"), ("—", "-10.00 USD"), ("—", "-5.00 USD"),
    ]  # fmt: skip
    assert rows[-1] == ["Total", "59.00 USD"]
    assert TWELVE_PLACES.search(response.content.decode()) is None


def test_billing_periods_and_credit_notes_show_billed_money(client, invoice):
    staff(client, *(*BILLING_OPS, "view_billingperiod", "view_creditnote"))
    client.post(urls(invoice)["credit_note"], {**VOID, "memo": "Billed in error"})
    period = BillingPeriod.objects.get()

    periods = client.get(reverse("admin:billing_billingperiod_changelist"))
    period_page = client.get(reverse("admin:billing_billingperiod_change", args=[period.pk]))
    notes = client.get(reverse("admin:billing_creditnote_changelist"))
    note_page = client.get(
        reverse("admin:billing_creditnote_change", args=[CreditNote.objects.get().pk])
    )

    # charges before credits: 15 + 30 + 20 + 10 - 1 - 10 = 64.00; the credits paid 5.00
    assert shown(periods, "billed_total_shown") == ["64.00 USD"]
    assert shown(periods, "billed_credits_shown") == ["5.00 USD"]
    assert shown(periods, "events") == ["3"]
    assert shown(period_page, "billed_total_shown") == ["64.00 USD"]
    # the void credits what is left of the 59.00
    assert shown(notes, "amount_shown") == ["59.00 USD"]
    assert shown(note_page, "amount_shown") == ["59.00 USD"]
    assert TWELVE_PLACES.search(note_page.content.decode()) is None


def test_the_revenue_reports_page_shows_its_billed_columns_as_people_read_them(client, balances):
    staff(client, *VIEWER)

    response = client.get(reverse("admin:billing_revenue_report"), {"customer": "acme"})

    # the figures of test_revenue_report.CSV, with their currency; the exact ones are the CSV's
    assert table_rows(response, "result_list") == [
        ["customer", "period", "invoice", "fixed fees", "usage revenue", "credits applied",
         "invoice total", "credit notes", "deferred revenue", "breakage"],
        ["acme", "2026-11-01 to 2026-11-30", "INV-000001 (paid)", "45.00 USD", "19.00 USD",
         "19.00 USD", "45.00 USD", "0.00 USD", "6.00 USD", "3.00 USD"],
        ["acme", "2026-12-01 to 2026-12-31", "INV-000002 (finalized)", "60.00 USD",
         "0.00 USD", "0.00 USD", "60.00 USD", "10.00 USD", "16.00 USD", "0.00 USD"],
    ]  # fmt: skip
