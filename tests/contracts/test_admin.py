"""The contracts admin: customers and operator API keys, as billing ops use them."""

import re

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from contracts.models import ApiKey, Customer
from contracts.services import api_key_create, customer_create

from .support import T0, api_keys_snapshot, customers_snapshot

KEYS_URL = "/admin/contracts/apikey/"
CUSTOMERS_URL = "/admin/contracts/customer/"
KEY_RE = re.compile(r"tt_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def api_status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/api/v1/customers").status_code


# --- API keys ---------------------------------------------------------------------------


def test_the_add_form_asks_only_for_a_name(admin_client):
    response = admin_client.get(f"{KEYS_URL}add/")

    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields) == ["name"]


def test_a_new_key_is_shown_once_works_and_stops_working_when_revoked(admin_client):
    # Given a superuser adds a key
    response = admin_client.post(f"{KEYS_URL}add/", {"name": "ops laptop"})

    # Then it is created and its plain text is in this response's messages, with a warning
    assert response.status_code == 302
    api_key = ApiKey.objects.get()
    assert api_key.name == "ops laptop"
    key_messages = [m for m in messages_of(response) if KEY_RE.search(m)]
    assert len(key_messages) == 1
    key = KEY_RE.search(key_messages[0]).group()
    assert key_messages[0] == (
        f"The new API key for “ops laptop” is {key} — copy it now, it will not be shown again."
    )
    assert key.startswith(f"tt_{api_key.prefix}_")

    # And the page it redirects to shows it, and no later page does
    assert key in admin_client.get(response["Location"]).content.decode()
    assert key not in admin_client.get(KEYS_URL).content.decode()
    assert key not in admin_client.get(f"{KEYS_URL}{api_key.pk}/change/").content.decode()
    assert [
        entry
        for entry in LogEntry.objects.values_list("object_repr", "change_message")
        if key in str(entry)
    ] == []

    # And the key works
    assert api_status(key) == 200

    # When the superuser revokes it with the action
    response = admin_client.post(
        KEYS_URL, {"action": "revoke_selected", "_selected_action": [api_key.pk]}
    )

    # Then it is revoked and refused
    assert response.status_code == 302
    assert messages_of(response) == ["Revoked 1 key."]
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api_status(key) == 401


def test_the_list_shows_keys_masked(clock, admin_client):
    api_key, key = api_key_create(name="ingest")

    response = admin_client.get(KEYS_URL)

    content = response.content.decode()
    assert response.status_code == 200
    assert f"tt_{api_key.prefix}_…" in content
    assert key not in content
    assert "ingest" in content


def test_revoking_leaves_already_revoked_keys_as_they_were(clock, admin_client):
    old, _ = api_key_create(name="old")
    admin_client.post(
        KEYS_URL, {"action": "revoke_selected", "_selected_action": [old.pk]}, follow=True
    )
    clock.advance(days=1)
    current, _ = api_key_create(name="current")

    response = admin_client.post(
        KEYS_URL, {"action": "revoke_selected", "_selected_action": [old.pk, current.pk]}
    )

    assert messages_of(response) == ["Revoked 1 key."]
    assert dict(ApiKey.objects.values_list("name", "revoked_at")) == {
        "old": T0,
        "current": clock.current,
    }


def test_a_key_cannot_be_edited(admin_client):
    api_key, _ = api_key_create(name="ingest")
    before = api_keys_snapshot()

    page = admin_client.get(f"{KEYS_URL}{api_key.pk}/change/")
    response = admin_client.post(f"{KEYS_URL}{api_key.pk}/change/", {"name": "renamed"})

    assert page.status_code == 200
    assert page.context["adminform"].form.fields == {}
    assert response.status_code == 403
    assert api_keys_snapshot() == before


def test_a_key_cannot_be_deleted(admin_client):
    api_key, key = api_key_create(name="ingest")
    before = api_keys_snapshot()

    page = admin_client.get(f"{KEYS_URL}{api_key.pk}/delete/")
    response = admin_client.post(f"{KEYS_URL}{api_key.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        KEYS_URL, {"action": "delete_selected", "_selected_action": [api_key.pk], "post": "yes"}
    )

    assert (page.status_code, response.status_code) == (403, 403)
    assert messages_of(bulk) == ["No action selected."]  # delete_selected is not offered
    assert api_keys_snapshot() == before
    assert api_status(key) == 200


# --- customers --------------------------------------------------------------------------


def test_adding_a_customer(clock, admin_client):
    response = admin_client.post(
        f"{CUSTOMERS_URL}add/",
        {
            "external_id": "acme",
            "name": "Acme Corp",
            "currency": "USD",
            "email": "billing@acme.example",
        },
    )

    assert response.status_code == 302
    assert list(Customer.objects.values()) == [
        {
            "id": Customer.objects.get().pk,
            "external_id": "acme",
            "name": "Acme Corp",
            "currency": "USD",
            "email": "billing@acme.example",
            "legal_name": "",
            "billing_address": "",
            "tax_id": "",
            "status": "active",
            "created_at": T0,
            "updated_at": T0,
        }
    ]


def test_adding_a_customer_with_a_bad_currency_shows_the_error(admin_client):
    response = admin_client.post(
        f"{CUSTOMERS_URL}add/", {"external_id": "acme", "name": "Acme Corp", "currency": "usd"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "currency": ["'usd' is not an ISO 4217 currency code."]
    }
    assert customers_snapshot() == []


def test_external_id_and_currency_are_read_only_on_an_existing_customer(clock, admin_client, acme):
    clock.advance(hours=1)

    response = admin_client.post(
        f"{CUSTOMERS_URL}{acme.pk}/change/",
        {
            "external_id": "acme-2",
            "currency": "EUR",
            "name": "Acme Corporation",
            "email": "billing@acme.example",
            "status": "suspended",
        },
    )

    assert response.status_code == 302
    acme.refresh_from_db()
    assert (acme.external_id, acme.currency, acme.name, acme.status, acme.updated_at) == (
        "acme",
        "USD",
        "Acme Corporation",
        "suspended",
        clock.current,
    )
    form = admin_client.get(f"{CUSTOMERS_URL}{acme.pk}/change/").context["adminform"].form
    assert list(form.fields) == [
        "name",
        "status",
        "email",
        "legal_name",
        "billing_address",
        "tax_id",
    ]


def test_customers_can_be_searched_and_filtered(admin_client, acme):
    customer_create(external_id="globex", name="Globex", currency="EUR")

    found = admin_client.get(CUSTOMERS_URL, {"q": "billing@acme"})
    filtered = admin_client.get(CUSTOMERS_URL, {"currency": "EUR"})

    assert [c.external_id for c in found.context["cl"].result_list] == ["acme"]
    assert [c.external_id for c in filtered.context["cl"].result_list] == ["globex"]


def test_a_customer_cannot_be_deleted(admin_client, acme):
    before = customers_snapshot()

    response = admin_client.post(f"{CUSTOMERS_URL}{acme.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert customers_snapshot() == before


def test_staff_who_may_only_view_keys_cannot_revoke_them(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(viewer)
    api_key, key = api_key_create(name="ingest")
    before = api_keys_snapshot()

    response = client.post(
        KEYS_URL, {"action": "revoke_selected", "_selected_action": [api_key.pk]}
    )

    assert response.status_code == 200  # the list again, offering no action
    assert "revoke_selected" not in response.content.decode()
    assert api_keys_snapshot() == before
    assert api_status(key) == 200


def test_keys_can_be_filtered_by_state(admin_client):
    revoked, _ = api_key_create(name="revoked")
    api_key_create(name="active")
    admin_client.post(
        KEYS_URL, {"action": "revoke_selected", "_selected_action": [revoked.pk]}, follow=True
    )

    active = admin_client.get(KEYS_URL, {"state": "active"}).context["cl"].result_list
    gone = admin_client.get(KEYS_URL, {"state": "revoked"}).context["cl"].result_list

    assert [k.name for k in active] == ["active"]
    assert [k.name for k in gone] == ["revoked"]


def test_the_admin_is_branded_for_billing_ops(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert '<div id="site-name"><a href="/admin/">tokentill billing</a></div>' in (
        response.content.decode()
    )
