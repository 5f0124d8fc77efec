"""What a customer's read-only API key may call, over every route of the API.

The routes are read from config.urls, so an endpoint added later is in the table at once:
closed to customers' keys unless it declares `customer_scoped = True` and is added to
READABLE below. The scenario is test_invoice_api.py's: acme's November invoiced as
INV-000001, whose line 3 lists events.
"""

import re
import uuid
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from billing.invoicing.credit_notes import credit_note_issue
from contracts.models import Contract
from contracts.services import api_key_create, customer_api_key_create, customer_create

from . import test_invoice_api as scenario

clock, amended, invoice = scenario.clock, scenario.amended, scenario.invoice

#: The routes a customer's key may GET, for its own customer only.
READABLE = {
    "customer-usage",
    "customer-wallet",
    "customer-invoices",
    "customer-invoice",
    "customer-invoice-line-events",
    "customer-invoice-preview",
    "customer-invoice-pdf",
    "customer-credit-note-pdf",
    "customer-usage-csv",
}
METHODS = ("get", "head", "post", "put", "patch", "delete")
EVENT = {
    "event_id": "sneaky",
    "customer_id": "acme",
    "timestamp": "2026-11-20T10:00:00Z",
    "model": "gpt-4o",
    "metrics": {"input_tokens": 1},
}
REFUSED = {"detail": "A customer's API key cannot call this endpoint."}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            yield prefix + str(pattern.pattern), pattern.name


API_ROUTES = sorted(
    (route, name)
    for route, name in _walk(get_resolver().url_patterns)
    if route.startswith("api/v1/")
)


def url_of(route: str, customer: str, contract_id: int = 1) -> str:
    values = {
        "external_id": customer,
        "number": "INV-000001",
        "position": "3",
        "note_number": "CN-000001",
        "contract_id": str(contract_id),
        "hold_id": str(uuid.UUID(int=1)),
        "name": "Standard",
        "version": "1",
        "price": "gpt-4o",
        "endpoint_id": "1",
        "delivery_id": "1",
        "rule_id": "1",
    }
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda match: values[match.group(1)], route)


def call(client: APIClient, method: str, url: str):
    if method in ("get", "head"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, EVENT, format="json")


def rows() -> dict[str, int]:
    """How many rows each table holds: a refused call must leave every count as it was."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def client_with(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def customer_key(invoice) -> str:
    customer_create(external_id="globex", name="Globex", currency="USD")
    credit_note_issue(  # CN-000001, which the customer's key may read as a PDF
        invoice=invoice, amount=Decimal("1.00"), memo="Goodwill", destination="none"
    )
    _, key = customer_api_key_create(customer=invoice.customer, name="dashboards", created_by="a")
    return key


def test_the_table_covers_the_api_and_every_readable_route_exists():
    names = {name for _, name in API_ROUTES}

    assert names >= READABLE
    assert len(API_ROUTES) > len(READABLE)


@pytest.mark.parametrize(("route", "name"), API_ROUTES, ids=[name for _, name in API_ROUTES])
def test_a_customer_key_reads_its_own_allowed_routes_and_is_refused_everything_else(
    customer_key, route, name
):
    client = client_with(customer_key)
    contract_id = Contract.objects.get().pk
    before = rows()

    for method in METHODS:
        response = call(client, method, url_of(route, "acme", contract_id))

        if name in READABLE and method in ("get", "head"):
            assert response.status_code == 200, (method, response.content)
        else:
            assert response.status_code == 403, (method, response.content)
            if method != "head":
                assert response.json() == REFUSED
    assert rows() == before


@pytest.mark.parametrize("name", sorted(READABLE))
@pytest.mark.parametrize("other", ["globex", "nobody"])
def test_another_or_an_unknown_customer_is_the_same_404(customer_key, name, other):
    route = next(route for route, route_name in API_ROUTES if route_name == name)

    response = client_with(customer_key).get(url_of(route, other))

    assert response.status_code == 404
    assert response.json() == {"detail": f"No customer with external_id '{other}'."}


@pytest.mark.parametrize(("route", "name"), API_ROUTES, ids=[name for _, name in API_ROUTES])
def test_an_operator_key_is_never_refused_and_no_key_is_401(invoice, route, name):
    _, operator_key = api_key_create(name="ops")
    contract_id = Contract.objects.get().pk
    url = url_of(route, "acme", contract_id)
    # Reads only: the operator's writes are each endpoint's own tests.
    for method in ("get", "head"):
        assert call(client_with(operator_key), method, url).status_code not in (401, 403)
    for method in METHODS:
        anonymous = call(client_with(None), method, url)
        assert anonymous.status_code == 401, (method, anonymous.content)
