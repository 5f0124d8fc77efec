"""The customers API: /api/v1/customers and /api/v1/customers/{external_id}."""

import pytest
from django.urls import reverse

from contracts.models import Customer
from contracts.services import customer_create, customer_update

from .support import customers_snapshot

LIST_URL = "/api/v1/customers"
ACME_BODY = {
    "external_id": "acme",
    "name": "Acme Corp",
    "currency": "USD",
    "email": "billing@acme.example",
}
NO_BILL_TO = {"legal_name": "", "billing_address": "", "tax_id": ""}
BILL_TO = {
    "legal_name": "Acme Corporation Ltd",
    "billing_address": "42 Main Street\nSpringfield 12345\nUnited States",
    "tax_id": "US-98-7654321",
}
ACME_JSON = {
    "external_id": "acme",
    "name": "Acme Corp",
    "currency": "USD",
    "email": "billing@acme.example",
    **NO_BILL_TO,
    "status": "active",
    "created_at": "2025-01-15T09:30:00Z",
    "updated_at": "2025-01-15T09:30:00Z",
}
EXTERNAL_ID_MESSAGE = "Use 1-100 letters, digits or . _ : @ - (starting with a letter or digit)."
FIXED_MESSAGE = "This field cannot be changed after the customer is created."


def detail_url(external_id: str) -> str:
    return f"/api/v1/customers/{external_id}"


def test_url_names():
    assert reverse("customer-list") == LIST_URL
    assert reverse("customer-detail", kwargs={"external_id": "acme"}) == detail_url("acme")


# --- create -----------------------------------------------------------------------------


def test_create_returns_the_new_customer(clock, api):
    response = api.post(LIST_URL, ACME_BODY, format="json")

    assert response.status_code == 201
    assert response.json() == ACME_JSON
    customer = Customer.objects.get()
    assert (customer.external_id, customer.name, customer.currency, customer.email) == (
        "acme",
        "Acme Corp",
        "USD",
        "billing@acme.example",
    )
    assert customer.status == Customer.Status.ACTIVE


def test_create_without_email_stores_an_empty_one(clock, api):
    body = {"external_id": "globex", "name": "Globex", "currency": "EUR"}

    response = api.post(LIST_URL, body, format="json")

    assert response.status_code == 201
    assert response.json() == {
        "external_id": "globex",
        "name": "Globex",
        "currency": "EUR",
        "email": "",
        **NO_BILL_TO,
        "status": "active",
        "created_at": "2025-01-15T09:30:00Z",
        "updated_at": "2025-01-15T09:30:00Z",
    }
    assert Customer.objects.get().email == ""


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"currency": "usd"}, {"currency": ["'usd' is not an ISO 4217 currency code."]}),
        ({"currency": "XYZ"}, {"currency": ["'XYZ' is not an ISO 4217 currency code."]}),
        ({"currency": "XXX"}, {"currency": ["'XXX' is not an ISO 4217 currency code."]}),
        (
            {"currency": "USDT"},
            {"currency": ["Ensure this field has no more than 3 characters."]},
        ),
        ({"external_id": "acme corp"}, {"external_id": [EXTERNAL_ID_MESSAGE]}),
        ({"external_id": "-acme"}, {"external_id": [EXTERNAL_ID_MESSAGE]}),
        ({"external_id": "acme/eu"}, {"external_id": [EXTERNAL_ID_MESSAGE]}),
        ({"external_id": " acme"}, {"external_id": [EXTERNAL_ID_MESSAGE]}),
        ({"external_id": ""}, {"external_id": ["This field may not be blank."]}),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        (
            {"external_id": "acme corp", "currency": "usd"},
            {
                "external_id": [EXTERNAL_ID_MESSAGE],
                "currency": ["'usd' is not an ISO 4217 currency code."],
            },
        ),
    ],
)
def test_create_refuses_invalid_values(api, changes, errors):
    response = api.post(LIST_URL, {**ACME_BODY, **changes}, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert customers_snapshot() == []


@pytest.mark.parametrize("missing", ["external_id", "name", "currency"])
def test_create_refuses_a_missing_required_field(api, missing):
    body = {field: value for field, value in ACME_BODY.items() if field != missing}

    response = api.post(LIST_URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {missing: ["This field is required."]}
    assert customers_snapshot() == []


def test_create_refuses_unknown_fields_naming_each(api):
    body = {**ACME_BODY, "nickname": "ACME", "status": "closed"}

    response = api.post(LIST_URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {"nickname": ["Unknown field."], "status": ["Unknown field."]}
    assert customers_snapshot() == []


def test_create_refuses_a_body_that_is_not_an_object(api):
    response = api.post(LIST_URL, [ACME_BODY], format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }
    assert customers_snapshot() == []


def test_create_refuses_a_body_that_is_not_json(api):
    response = api.post(LIST_URL, ACME_BODY)

    assert response.status_code == 415
    assert response.json() == {
        "detail": 'Unsupported media type "multipart/form-data; boundary=BoUnDaRyStRiNg; '
        'charset=utf-8" in request.'
    }
    assert customers_snapshot() == []


def test_create_refuses_a_duplicate_external_id(api, acme):
    before = customers_snapshot()

    response = api.post(
        LIST_URL, {**ACME_BODY, "name": "Another Acme", "currency": "EUR"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"external_id": ["A customer with this external_id already exists."]}
    assert customers_snapshot() == before


def test_create_refuses_a_duplicate_that_wins_the_race_past_validation(api, acme, monkeypatch):
    # Given another request created "acme" between our uniqueness check and our INSERT
    monkeypatch.setattr(Customer, "validate_unique", lambda self, exclude=None: None)
    before = customers_snapshot()

    # When we insert it
    response = api.post(LIST_URL, {**ACME_BODY, "name": "Another Acme"}, format="json")

    # Then the unique constraint's refusal is the same 400, and the database still works
    assert response.status_code == 400
    assert response.json() == {"external_id": ["A customer with this external_id already exists."]}
    assert customers_snapshot() == before


# --- list -------------------------------------------------------------------------------


def _create(external_id: str, **fields) -> Customer:
    values = {"name": external_id.title(), "currency": "USD", **fields}
    return customer_create(external_id=external_id, **values)


def test_list_is_ordered_by_external_id(clock, api):
    for external_id in ["globex", "acme", "initech"]:
        _create(external_id)

    response = api.get(LIST_URL)

    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [
            {
                "external_id": external_id,
                "name": external_id.title(),
                "currency": "USD",
                "email": "",
                **NO_BILL_TO,
                "status": "active",
                "created_at": "2025-01-15T09:30:00Z",
                "updated_at": "2025-01-15T09:30:00Z",
            }
            for external_id in ["acme", "globex", "initech"]
        ],
    }


def test_list_of_no_customers_is_an_empty_page(api):
    response = api.get(LIST_URL)

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


def test_list_filters_by_status(api):
    _create("acme")
    customer_update(customer=_create("globex"), status="suspended")
    customer_update(customer=_create("initech"), status="closed")

    response = api.get(LIST_URL, {"status": "suspended"})

    assert response.status_code == 200
    assert [c["external_id"] for c in response.json()["results"]] == ["globex"]


def test_list_refuses_an_unknown_status(api, acme):
    response = api.get(LIST_URL, {"status": "gone"})

    assert response.status_code == 400
    assert response.json() == {"status": ['"gone" is not a valid choice.']}


def test_list_pages_with_a_cursor(api):
    for external_id in ["e", "d", "c", "b", "a"]:
        _create(external_id)

    first = api.get(LIST_URL, {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()

    assert [c["external_id"] for c in first["results"]] == ["a", "b"]
    assert first["previous"] is None
    assert [c["external_id"] for c in second["results"]] == ["c", "d"]
    assert [c["external_id"] for c in third["results"]] == ["e"]
    assert third["next"] is None
    assert [c["external_id"] for c in api.get(third["previous"]).json()["results"]] == [
        "c",
        "d",
    ]


# --- retrieve ---------------------------------------------------------------------------


def test_get_returns_the_customer(clock, api, acme):
    response = api.get(detail_url("acme"))

    assert response.status_code == 200
    assert response.json() == ACME_JSON


def test_get_accepts_every_character_an_external_id_may_hold(api):
    _create("org:42@eu-west_1.prod")

    response = api.get(detail_url("org:42@eu-west_1.prod"))

    assert response.status_code == 200
    assert response.json()["external_id"] == "org:42@eu-west_1.prod"


def test_get_unknown_customer_is_404(api, acme):
    response = api.get(detail_url("nobody"))

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer with external_id 'nobody'."}


# --- partial update ---------------------------------------------------------------------


def test_patch_changes_name_email_and_status(clock, api, acme):
    clock.advance(hours=1)

    response = api.patch(
        detail_url("acme"),
        {"name": "Acme Corporation", "email": "ap@acme.example", "status": "suspended"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        **ACME_JSON,
        "name": "Acme Corporation",
        "email": "ap@acme.example",
        "status": "suspended",
        "updated_at": "2025-01-15T10:30:00Z",
    }
    acme.refresh_from_db()
    assert (acme.name, acme.email, acme.status) == (
        "Acme Corporation",
        "ap@acme.example",
        "suspended",
    )


def test_patch_changes_only_the_fields_sent(clock, api, acme):
    response = api.patch(detail_url("acme"), {"status": "closed"}, format="json")

    assert response.status_code == 200
    assert response.json() == {**ACME_JSON, "status": "closed"}
    acme.refresh_from_db()
    assert (acme.name, acme.email, acme.status) == ("Acme Corp", "billing@acme.example", "closed")


def test_patch_accepts_the_fixed_fields_when_they_repeat_the_current_value(clock, api, acme):
    response = api.patch(
        detail_url("acme"),
        {"external_id": "acme", "currency": "USD", "name": "Acme Corporation"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {**ACME_JSON, "name": "Acme Corporation"}


def test_patch_with_nothing_to_change_writes_nothing(clock, api, acme):
    before = customers_snapshot()
    clock.advance(hours=1)

    response = api.patch(detail_url("acme"), {}, format="json")

    assert response.status_code == 200
    assert response.json() == ACME_JSON
    assert customers_snapshot() == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"external_id": "acme-2"}, {"external_id": [FIXED_MESSAGE]}),
        ({"currency": "EUR"}, {"currency": [FIXED_MESSAGE]}),
        (
            {"external_id": "acme-2", "currency": "EUR", "name": "Acme 2"},
            {"external_id": [FIXED_MESSAGE], "currency": [FIXED_MESSAGE]},
        ),
        (
            {"nickname": "ACME", "created_at": "2020-01-01T00:00:00Z"},
            {"created_at": ["Unknown field."], "nickname": ["Unknown field."]},
        ),
        ({"status": "gone"}, {"status": ['"gone" is not a valid choice.']}),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"name": "x" * 201}, {"name": ["Ensure this field has no more than 200 characters."]}),
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        (
            ["name"],
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        ),
    ],
)
def test_patch_refusals_change_nothing(api, acme, body, errors):
    before = customers_snapshot()

    response = api.patch(detail_url("acme"), body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert customers_snapshot() == before


def test_patch_unknown_customer_is_404(api, acme):
    before = customers_snapshot()

    response = api.patch(detail_url("nobody"), {"name": "Nobody"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer with external_id 'nobody'."}
    assert customers_snapshot() == before


def test_create_and_patch_carry_what_invoices_print_under_bill_to(clock, api):
    created = api.post(LIST_URL, {**ACME_BODY, **BILL_TO}, format="json")
    clock.advance(hours=1)
    changed = api.patch(detail_url("acme"), {"billing_address": "7 Harbour Road"}, format="json")

    assert created.status_code == 201
    assert created.json() == {**ACME_JSON, **BILL_TO}
    assert changed.status_code == 200
    assert changed.json() == {
        **ACME_JSON,
        **BILL_TO,
        "billing_address": "7 Harbour Road",
        "updated_at": "2025-01-15T10:30:00Z",
    }
    acme = Customer.objects.get()
    assert (acme.legal_name, acme.billing_address, acme.tax_id) == (
        "Acme Corporation Ltd",
        "7 Harbour Road",
        "US-98-7654321",
    )


TAX_ID_MESSAGE = (
    "Use 1-50 letters, digits, spaces or - . / (starting and ending with a letter or digit)."
)
BAD_BILL_TO = [
    ({"tax_id": "GB 123;456"}, {"tax_id": [TAX_ID_MESSAGE]}),
    ({"tax_id": "-GB123"}, {"tax_id": [TAX_ID_MESSAGE]}),
    ({"tax_id": "1" * 51}, {"tax_id": ["Ensure this field has no more than 50 characters."]}),
    (
        {"legal_name": "x" * 201},
        {"legal_name": ["Ensure this field has no more than 200 characters."]},
    ),
    ({"billing_address": "\n".join("abcdefghi")}, {"billing_address": ["Use at most 8 lines."]}),
    (
        {"billing_address": "42 Main St\tSuite 1"},
        {"billing_address": ["Remove the control characters (only line breaks may be used)."]},
    ),
    (
        {"billing_address": "x" * 501},
        {"billing_address": ["Ensure this field has no more than 500 characters."]},
    ),
]


@pytest.mark.parametrize(("body", "errors"), BAD_BILL_TO)
def test_bad_bill_to_details_are_refused_on_create_and_store_nothing(api, body, errors):
    response = api.post(LIST_URL, {**ACME_BODY, **body}, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert customers_snapshot() == []


@pytest.mark.parametrize(("body", "errors"), BAD_BILL_TO)
def test_bad_bill_to_details_are_refused_on_patch_and_change_nothing(api, acme, body, errors):
    before = customers_snapshot()

    response = api.patch(detail_url("acme"), body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert customers_snapshot() == before


@pytest.mark.parametrize("method", ["put", "delete"])
def test_customers_cannot_be_replaced_or_deleted(api, acme, method):
    before = customers_snapshot()

    response = getattr(api, method)(detail_url("acme"), ACME_BODY, format="json")

    assert response.status_code == 405
    assert customers_snapshot() == before


# --- OpenAPI ----------------------------------------------------------------------------


def test_schema_documents_the_customer_operations_with_examples(api):
    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    operations = {
        (path, method): operation
        for path in ("/api/v1/customers", "/api/v1/customers/{external_id}")
        for method, operation in paths[path].items()
    }
    assert sorted(operations) == [
        ("/api/v1/customers", "get"),
        ("/api/v1/customers", "post"),
        ("/api/v1/customers/{external_id}", "get"),
        ("/api/v1/customers/{external_id}", "patch"),
    ]
    assert all(op["tags"] == ["customers"] for op in operations.values())
    create = operations[("/api/v1/customers", "post")]
    assert create["requestBody"]["content"]["application/json"]["examples"]["NewCustomer"][
        "value"
    ] == {**ACME_BODY, **BILL_TO}
    assert sorted(create["responses"]) == ["201", "400", "429"]
    assert create["responses"]["201"]["content"]["application/json"]["examples"]["Customer"][
        "value"
    ] == {
        **ACME_JSON,
        **BILL_TO,
        "created_at": "2025-01-15T09:30:00.000000Z",
        "updated_at": "2025-01-15T09:30:00.000000Z",
    }
