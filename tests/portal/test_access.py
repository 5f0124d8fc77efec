"""One rule for every portal page: a portal user sees their own customer's data and nothing
else; anonymous visitors are sent to log in; staff without a portal user are refused."""

import pytest
from django.core.exceptions import ValidationError

from portal.models import PortalUser

from .conftest import logged_in

#: Every portal page (the acme invoice's number is filled in by the test).
PAGES = [
    "/portal/",
    "/portal/dashboard/fragment",
    "/portal/invoices/",
    "/portal/invoices/{acme_invoice}/",
    "/portal/wallet/",
    "/portal/alerts/",
    "/portal/api-keys/",
]


@pytest.fixture
def acme_invoice(invoices) -> str:
    return invoices["acme"].number


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, acme_invoice, page):
    url = page.format(acme_invoice=acme_invoice)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/portal/login/?next={url}"


@pytest.mark.parametrize("page", PAGES)
def test_staff_without_a_portal_user_are_refused(client, staff, acme_invoice, page):
    response = logged_in(client, staff).get(page.format(acme_invoice=acme_invoice))

    assert response.status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_a_portal_user_made_staff_is_refused(client, acme_viewer, acme_invoice, page):
    acme_viewer.user.is_staff = True
    acme_viewer.user.save()

    response = logged_in(client, acme_viewer).get(page.format(acme_invoice=acme_invoice))

    assert response.status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_a_portal_user_sees_their_pages_and_nothing_of_another_customer(
    client, acme_viewer, acme_invoice, invoices, page
):
    response = logged_in(client, acme_viewer).get(page.format(acme_invoice=acme_invoice))

    assert response.status_code == 200
    html = response.content.decode().lower()
    assert "globex" not in html
    assert "777.00" not in html  # globex's credits
    assert invoices["globex"].number not in html


def test_another_customers_invoice_is_not_found(client, acme_viewer, invoices):
    client = logged_in(client, acme_viewer)

    assert client.get(f"/portal/invoices/{invoices['globex'].number}/").status_code == 404
    assert client.get("/portal/invoices/INV-999999/").status_code == 404
    assert client.get(f"/portal/invoices/{invoices['acme'].number}/").status_code == 200


def test_each_customer_sees_only_their_own_invoice(client, globex_admin, invoices):
    client = logged_in(client, globex_admin)

    response = client.get("/portal/invoices/")

    assert invoices["globex"].number in response.content.decode()
    assert invoices["acme"].number not in response.content.decode()
    assert client.get(f"/portal/invoices/{invoices['acme'].number}/").status_code == 404


def test_staff_cannot_log_in_to_the_portal(client, staff):
    response = client.post(
        "/portal/login/", {"username": "ops", "password": "a-long-portal-password-7"}
    )

    assert response.status_code == 200
    assert "This account cannot sign in to the portal." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_portal_user_logs_in_and_out(client, acme_viewer):
    response = client.post(
        "/portal/login/",
        {"username": "vic@acme.example", "password": "a-long-portal-password-7"},
    )
    assert (response.status_code, response["Location"]) == (302, "/portal/")
    assert client.get("/portal/").status_code == 200

    response = client.post("/portal/logout/")

    assert (response.status_code, response["Location"]) == (302, "/portal/login/")
    assert client.get("/portal/").status_code == 302


def test_a_portal_user_is_never_staff(acme_viewer):
    acme_viewer.user.is_staff = True

    with pytest.raises(ValidationError, match="A portal user cannot be staff"):
        acme_viewer.full_clean()
    assert PortalUser.objects.get().user.is_staff is False
