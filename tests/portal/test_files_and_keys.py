"""The portal's files and keys: an invoice's PDF, the usage CSV of a period, and the
customer's read-only API keys. Each is the customer's own and nothing else: another
customer's invoice or key is a 404, anonymous visitors log in, staff are refused."""

import csv
from decimal import Decimal as D
from io import BytesIO, StringIO

import pytest
from pypdf import PdfReader
from rest_framework.test import APIClient

from billing.invoicing.credit_notes import credit_note_issue
from contracts.models import ApiKey
from contracts.services import customer_api_key_create

from .conftest import logged_in, table, text_of

#: The new pages ({acme_invoice} and {acme_key} are filled in by the tests).
PAGES = [
    "/portal/invoices/{acme_invoice}.pdf",
    "/portal/usage.csv",
    "/portal/usage.csv?period=2026-11-01",
    "/portal/api-keys/",
    "/portal/api-keys/{acme_key}/revoke/",
]


@pytest.fixture
def acme_invoice(invoices) -> str:
    return invoices["acme"].number


@pytest.fixture
def acme_key(acme, clock) -> ApiKey:
    api_key, _ = customer_api_key_create(customer=acme, name="dashboards", created_by="test")
    return api_key


@pytest.fixture
def globex_key(globex, clock) -> ApiKey:
    api_key, _ = customer_api_key_create(customer=globex, name="globex-secret", created_by="t")
    return api_key


def url(page: str, acme_invoice: str, acme_key: ApiKey) -> str:
    return page.format(acme_invoice=acme_invoice, acme_key=acme_key.prefix)


def pdf_text(response) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(response.content)).pages)


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(StringIO(b"".join(response.streaming_content).decode())))


# --- Access ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, acme_invoice, acme_key, page):
    target = url(page, acme_invoice, acme_key)

    response = client.get(target)

    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login/?next=")


@pytest.mark.parametrize("page", PAGES)
def test_staff_without_a_portal_user_are_refused(client, staff, acme_invoice, acme_key, page):
    response = logged_in(client, staff).get(url(page, acme_invoice, acme_key))

    assert response.status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_an_admin_reaches_each_page(client, acme_admin, acme_invoice, acme_key, page):
    response = logged_in(client, acme_admin).get(url(page, acme_invoice, acme_key))

    assert response.status_code == 200


def test_another_customers_invoice_pdf_is_not_found(client, acme_viewer, invoices):
    client = logged_in(client, acme_viewer)

    assert client.get(f"/portal/invoices/{invoices['globex'].number}.pdf").status_code == 404
    assert client.get("/portal/invoices/INV-999999.pdf").status_code == 404


def test_another_customers_key_is_not_found(client, acme_admin, globex_key):
    client = logged_in(client, acme_admin)
    revoke = f"/portal/api-keys/{globex_key.prefix}/revoke/"

    assert client.get(revoke).status_code == 404
    assert client.post(revoke).status_code == 404
    globex_key.refresh_from_db()
    assert globex_key.revoked_at is None
    assert "globex-secret" not in client.get("/portal/api-keys/").content.decode()


# --- Invoice PDF -------------------------------------------------------------------------


def test_the_invoice_pdf_downloads_with_the_invoices_total(client, acme_viewer, invoices):
    invoice = invoices["acme"]
    client = logged_in(client, acme_viewer)

    page = client.get(f"/portal/invoices/{invoice.number}/")
    response = client.get(f"/portal/invoices/{invoice.number}.pdf")

    assert f'href="/portal/invoices/{invoice.number}.pdf"' in page.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert f"Total {invoice.total:.2f} USD" in pdf_text(response)
    assert text_of(page, "invoice-total") == f"{invoice.total:.2f} USD"


# --- Credit notes ------------------------------------------------------------------------


def test_a_credit_note_has_its_page_and_pdf_linked_from_its_invoice(client, acme_viewer, invoices):
    invoice = invoices["acme"]
    credit_note_issue(
        invoice=invoice, amount=D("2.50"), memo="Outage", destination="none", created_by="o"
    )
    client = logged_in(client, acme_viewer)

    invoice_page = client.get(f"/portal/invoices/{invoice.number}/").content.decode()
    page = client.get(f"/portal/invoices/{invoice.number}/credit-notes/CN-000001/")
    response = client.get(f"/portal/invoices/{invoice.number}/credit-notes/CN-000001.pdf")

    assert f'href="/portal/invoices/{invoice.number}/credit-notes/CN-000001/"' in invoice_page
    assert page.status_code == 200
    assert text_of(page, "credit-note-amount") == "2.50 USD"
    assert f'href="/portal/invoices/{invoice.number}/credit-notes/CN-000001.pdf"' in (
        page.content.decode()
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="CN-000001.pdf"'
    assert "Amount credited 2.50 USD" in pdf_text(response)


def test_another_customers_credit_note_is_not_found(client, globex_admin, invoices):
    theirs = invoices["acme"]
    credit_note_issue(
        invoice=theirs, amount=D("1.00"), memo="Outage", destination="none", created_by="o"
    )
    client = logged_in(client, globex_admin)
    mine = invoices["globex"].number

    for url in (
        f"/portal/invoices/{theirs.number}/credit-notes/CN-000001/",
        f"/portal/invoices/{theirs.number}/credit-notes/CN-000001.pdf",
        f"/portal/invoices/{mine}/credit-notes/CN-000001/",  # not a note of this invoice
        f"/portal/invoices/{mine}/credit-notes/CN-000001.pdf",
    ):
        assert client.get(url).status_code == 404, url


# --- Usage CSV ---------------------------------------------------------------------------


def test_the_current_periods_csv_sums_to_the_usage_apis_usage(client, acme_viewer, usage, api):
    response = logged_in(client, acme_viewer).get("/portal/usage.csv")

    rows = csv_rows(response)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="usage-acme-2026-11-01.csv"'
    assert [row["event_id"] for row in rows] == ["a1", "a2", "a3", "a4"]
    expected = D(api.get("/api/v1/customers/acme/usage").json()["usage"])
    assert sum(D(row["amount"]) for row in rows) == expected == D("30.008755")


def test_an_invoiced_periods_csv_is_offered_and_sums_to_its_usage(
    client, acme_viewer, invoices, api
):
    client = logged_in(client, acme_viewer)

    page = client.get("/portal/invoices/")
    response = client.get("/portal/usage.csv?period=2026-11-01")

    html = page.content.decode()
    assert '<option value="2026-12-01">2026-12-01 to 2026-12-31 (current)</option>' in html
    assert '<option value="2026-11-01">2026-11-01 to 2026-11-30</option>' in html
    rows = csv_rows(response)
    usage = api.get("/api/v1/customers/acme/usage?at=2026-11-15T00:00:00Z").json()["usage"]
    assert sum(D(row["amount"]) for row in rows) == D(usage) == D("30.008755")
    assert "g1" not in [row["event_id"] for row in rows]  # globex's event


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("november", "The period must be the day it starts, as YYYY-MM-DD: 'november'."),
        ("2026-11-05", "No billing period of yours starts on 2026-11-05."),
        ("2027-02-01", "The period starting on 2027-02-01 has not begun yet."),
    ],
)
def test_a_bad_period_is_a_400_that_says_why(client, acme_viewer, usage, period, message):
    response = logged_in(client, acme_viewer).get(f"/portal/usage.csv?period={period}")

    assert response.status_code == 400
    assert response.content.decode() == message


# --- API keys ----------------------------------------------------------------------------


def test_an_admin_creates_a_key_shown_once_that_reads_only_their_own_customer(
    client, acme_admin, globex, usage
):
    client = logged_in(client, acme_admin)

    response = client.post("/portal/api-keys/", {"name": "grafana"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "it cannot be shown again" in html
    api_key = ApiKey.objects.get(customer__external_id="acme", name="grafana")
    assert api_key.created_by == "portal: ada@acme.example"
    key = html.split('id="new-key" value="')[1].split('"')[0]
    assert key.startswith(f"tt_{api_key.prefix}_")
    listing = client.get("/portal/api-keys/").content.decode()
    assert key not in listing
    assert f"tt_{api_key.prefix}_…" in listing

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/customers/acme/usage").status_code == 200
    assert api.get("/api/v1/customers/globex/usage").status_code == 404


def test_a_key_needs_a_name(client, acme_admin):
    response = logged_in(client, acme_admin).post("/portal/api-keys/", {"name": " "})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_list_shows_each_keys_name_prefix_and_dates(client, acme_viewer, acme_key):
    response = logged_in(client, acme_viewer).get("/portal/api-keys/")

    rows = table(response, "api-keys")
    assert rows[0] == ["Name", "Key starts", "Created (UTC)", "Last used (UTC)", "Revoked (UTC)"]
    assert rows[1] == ["dashboards", f"tt_{acme_key.prefix}_…", "2026-11-15 12:00", "never", "—"]
    assert "Create key" not in response.content.decode()


def test_an_admin_revokes_a_key_after_confirming(client, acme_admin, acme_key):
    client = logged_in(client, acme_admin)
    revoke = f"/portal/api-keys/{acme_key.prefix}/revoke/"

    confirm = client.get(revoke)
    acme_key.refresh_from_db()
    assert acme_key.revoked_at is None
    assert "Revoke key" in confirm.content.decode()

    response = client.post(revoke)

    assert response.status_code == 302
    assert response["Location"] == "/portal/api-keys/"
    acme_key.refresh_from_db()
    assert acme_key.revoked_at is not None
    rows = table(client.get("/portal/api-keys/"), "api-keys")
    assert rows[1][4] == "2026-11-15 12:00"


def test_a_viewer_may_not_create_or_revoke_keys(client, acme_viewer, acme_key):
    client = logged_in(client, acme_viewer)

    created = client.post("/portal/api-keys/", {"name": "sneaky"})
    revoked = client.post(f"/portal/api-keys/{acme_key.prefix}/revoke/")

    assert created.status_code == 403
    assert revoked.status_code == 403
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["dashboards"]
    acme_key.refresh_from_db()
    assert acme_key.revoked_at is None
