"""Customers' read-only API keys: created (shown once) and revoked for one customer only.

Which endpoints such a key may call is tested over every API route in
tests/billing/test_customer_key_access.py.
"""

import hashlib

import pytest
from rest_framework.test import APIClient

from contracts.authentication import CustomerKeyUser, OperatorUser
from contracts.models import ApiKey
from contracts.selectors import customer_api_key_list
from contracts.services import api_key_create, customer_api_key_create, customer_api_key_revoke

from .support import T0, api_keys_snapshot


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_customer_key_is_stored_as_its_hash_with_its_customer_and_author(acme):
    api_key, key = customer_api_key_create(customer=acme, name="CI dashboards", created_by="ann")

    assert key.startswith(f"tt_{api_key.prefix}_")
    assert list(ApiKey.objects.values("name", "customer_id", "created_by", "key_hash")) == [
        {
            "name": "CI dashboards",
            "customer_id": acme.pk,
            "created_by": "ann",
            "key_hash": hashlib.sha256(key.encode()).hexdigest(),
        }
    ]


def test_an_operator_key_has_no_customer(db):
    api_key, _ = api_key_create(name="ops")

    assert ApiKey.objects.get(pk=api_key.pk).customer_id is None


def test_a_customer_key_authenticates_as_that_customer_and_an_operator_key_as_operator(acme):
    _, customer_key = customer_api_key_create(customer=acme, name="k", created_by="ann")
    _, operator_key = api_key_create(name="ops")

    own = client_with(customer_key).get("/api/v1/customers/acme/usage")
    ops = client_with(operator_key).get("/api/v1/customers/acme/usage")

    assert own.status_code == 200
    assert type(own.wsgi_request.user) is CustomerKeyUser
    assert own.wsgi_request.user.customer_id == acme.pk
    assert ops.status_code == 200
    assert type(ops.wsgi_request.user) is OperatorUser


def test_the_customer_key_list_holds_only_that_customers_keys_newest_first(acme, globex):
    first, _ = customer_api_key_create(customer=acme, name="first", created_by="ann")
    customer_api_key_create(customer=globex, name="theirs", created_by="bob")
    api_key_create(name="ops")
    second, _ = customer_api_key_create(customer=acme, name="second", created_by="ann")

    assert list(customer_api_key_list(customer=acme)) == [second, first]


def test_revoking_a_customer_key_stops_it_at_once_with_401(acme, clock):
    api_key, key = customer_api_key_create(customer=acme, name="k", created_by="ann")

    revoked = customer_api_key_revoke(customer=acme, prefix=api_key.prefix)
    response = client_with(key).get("/api/v1/customers/acme/usage")

    assert revoked.revoked_at == T0
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key."}


def test_revoking_again_keeps_the_first_revocation(acme, clock):
    api_key, _ = customer_api_key_create(customer=acme, name="k", created_by="ann")
    customer_api_key_revoke(customer=acme, prefix=api_key.prefix)
    clock.advance(hours=1)

    again = customer_api_key_revoke(customer=acme, prefix=api_key.prefix)

    assert again.revoked_at == T0


def test_a_customer_cannot_revoke_another_customers_key_or_an_operator_key(acme, globex):
    theirs, their_key = customer_api_key_create(customer=globex, name="k", created_by="bob")
    ops, operator_key = api_key_create(name="ops")
    before = api_keys_snapshot()

    for prefix in (theirs.prefix, ops.prefix, "zzzzzzzz"):
        with pytest.raises(ApiKey.DoesNotExist):
            customer_api_key_revoke(customer=acme, prefix=prefix)

    assert api_keys_snapshot() == before
    assert client_with(their_key).get("/api/v1/customers/globex/usage").status_code == 200
    assert client_with(operator_key).get("/api/v1/customers").status_code == 200
