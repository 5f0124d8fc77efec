"""The contracts API: /api/v1/customers/{external_id}/contracts[/{id}[/amendments|/end]]."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from contracts.models import ApiKey, Contract
from contracts.services import contract_amend, contract_create, contract_end

from .contract_support import PER_1M, card_create, changes, contracts_snapshot, utc

FEB = utc(2025, 2, 1)
MAR = utc(2025, 3, 1)
APR = utc(2025, 4, 1)
JUL = utc(2025, 7, 1)
NOW = "2025-01-15T09:30:00Z"  # the clock fixture's T0
OVERRIDE = {"gpt-4o": {"rate_in": {"amount": "2.00", "per": PER_1M}}}
NUMBER_MONEY = 'Write the amount as a string, e.g. "500.00": money is never a JSON number.'
NAIVE = "Give the UTC offset too, e.g. 2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00."
NOT_ISO = "Use ISO 8601 with an offset, e.g. 2026-01-01T00:00:00Z."


def list_url(external_id: str = "acme") -> str:
    return f"/api/v1/customers/{external_id}/contracts"


def detail_url(contract_id, external_id: str = "acme") -> str:
    return f"{list_url(external_id)}/{contract_id}"


@pytest.fixture
def created_by(operator_key) -> str:
    return f"API key test operator (tt_{ApiKey.objects.get().prefix}_…)"


def terms_json(**fields) -> dict:
    return {
        "number": 1,
        "effective_from": "2025-02-01T00:00:00Z",
        "rate_card": "Standard",
        "fixed_fee": "0.0000",
        "included_allowance": "0.0000",
        "overage_policy": "arrears",
        "credits_cover_arrears": True,
        "minimum_commitment": "0.0000",
        "discount_percent": "0.0000",
        "price_overrides": {},
        "note": "",
        "created_by": "",
        "created_at": NOW,
        **fields,
    }


def contract_json(contract: Contract, terms: list[dict], **fields) -> dict:
    return {
        "id": contract.pk,
        "customer": "acme",
        "starts_at": "2025-02-01T00:00:00Z",
        "ends_at": None,
        "billing_cycle": "monthly",
        "anchor_day": 1,
        "anchor_month": 2,
        "payment_terms_days": None,
        "created_at": NOW,
        "terms": terms,
        **fields,
    }


FULL_BODY = {
    "starts_at": "2025-02-01T00:00:00Z",
    "billing_cycle": "quarterly",
    "anchor_day": 31,
    "anchor_month": 3,
    "rate_card": "Standard",
    "fixed_fee": "500.00",
    "included_allowance": "200",
    "overage_policy": "block",
    "minimum_commitment": "1000.5",
    "discount_percent": "12.5",
    "price_overrides": OVERRIDE,
    "note": "Signed on 28 January",
}


def test_url_names():
    assert reverse("contract-list", kwargs={"external_id": "acme"}) == list_url()
    kwargs = {"external_id": "acme", "contract_id": 7}
    assert reverse("contract-detail", kwargs=kwargs) == detail_url(7)
    assert reverse("contract-amendments", kwargs=kwargs) == f"{detail_url(7)}/amendments"
    assert reverse("contract-end", kwargs=kwargs) == f"{detail_url(7)}/end"


# --- create -----------------------------------------------------------------------------


def test_create_returns_the_contract_with_its_first_terms(clock, api, acme, standard, created_by):
    response = api.post(list_url(), FULL_BODY, format="json")

    assert response.status_code == 201
    contract = Contract.objects.get()
    assert response.json() == contract_json(
        contract,
        [
            terms_json(
                fixed_fee="500.0000",
                included_allowance="200.0000",
                overage_policy="block",
                minimum_commitment="1000.5000",
                discount_percent="12.5000",
                price_overrides=OVERRIDE,
                note="Signed on 28 January",
                created_by=created_by,
            )
        ],
        billing_cycle="quarterly",
        anchor_day=31,
        anchor_month=3,
    )
    assert (contract.customer, contract.starts_at, contract.billing_cycle) == (
        acme,
        FEB,
        "quarterly",
    )
    assert changes() == [("acme", FEB)]


def test_create_with_only_a_start_and_a_rate_card_takes_the_defaults(clock, api, acme, standard):
    body = {"starts_at": "2025-02-01T00:00:00Z", "rate_card": "Standard"}

    response = api.post(list_url(), body, format="json")

    assert response.status_code == 201
    contract = Contract.objects.get()
    assert response.json() == contract_json(
        contract, [terms_json(created_by=contract.terms.get().created_by)]
    )


def test_instants_with_an_offset_are_answered_in_utc(clock, api, acme, standard):
    body = {
        "starts_at": "2025-02-01T01:00:00+01:00",
        "ends_at": "2025-06-30T20:00:00-04:00",
        "rate_card": "Standard",
    }

    response = api.post(list_url(), body, format="json")

    assert response.status_code == 201
    assert (response.json()["starts_at"], response.json()["ends_at"]) == (
        "2025-02-01T00:00:00Z",
        "2025-07-01T00:00:00Z",
    )
    assert Contract.objects.values_list("starts_at", "ends_at").get() == (FEB, JUL)


BODY = {"starts_at": "2025-02-01T00:00:00Z", "rate_card": "Standard"}


NOT_DECIMAL = "'{}' is not a decimal number such as \"500.00\"."
NO_PRICES = (
    "Standard has no prices at 2024-12-01 00:00 UTC (from 2025-01-01 00:00 UTC): the terms "
    "would leave usage unpriced."
)


def test_a_contract_may_start_before_its_rate_card_has_prices(api, acme, standard):
    response = api.post(list_url(), {**BODY, "starts_at": "2024-12-01T00:00:00Z"}, format="json")

    assert response.status_code == 201
    assert Contract.objects.values_list("starts_at", flat=True).get() == utc(2024, 12, 1)


def test_an_amendment_may_not_move_to_a_rate_card_before_its_prices(api, acme, standard):
    contract = contract_create(customer=acme, starts_at=utc(2024, 11, 1), rate_card=standard)
    before = contracts_snapshot()

    response = api.post(
        amend_url(contract), {"effective_from": "2024-12-01T00:00:00Z"}, format="json"
    )

    assert (response.status_code, response.json()) == (400, {"rate_card": [NO_PRICES]})
    assert contracts_snapshot() == before


FLOAT_RATE = "gpt-4o: 'rate_in': write the amount as text, e.g. \"2.50\" (money is never a float)."
OVERRIDES_SHAPE = 'Use {"price name": {"rate_in": {"amount": "2.00", "per": 1000000}}}.'
UNKNOWN = ["Unknown field."]


@pytest.mark.parametrize(
    ("body_changes", "errors"),
    [
        ({"fixed_fee": 500}, {"fixed_fee": [NUMBER_MONEY]}),
        ({"included_allowance": 12.5}, {"included_allowance": [NUMBER_MONEY]}),
        ({"discount_percent": 10}, {"discount_percent": [NUMBER_MONEY]}),
        ({"minimum_commitment": "1e3"}, {"minimum_commitment": [NOT_DECIMAL.format("1e3")]}),
        ({"fixed_fee": "NaN"}, {"fixed_fee": [NOT_DECIMAL.format("NaN")]}),
        ({"fixed_fee": None}, {"fixed_fee": ["This field may not be null."]}),
        ({"starts_at": "2025-02-01T00:00:00"}, {"starts_at": [NAIVE]}),
        ({"starts_at": "2025-02-01"}, {"starts_at": [NAIVE]}),
        ({"starts_at": "tomorrow"}, {"starts_at": [NOT_ISO]}),
        ({"starts_at": "2025-02-30T00:00:00Z"}, {"starts_at": [NOT_ISO]}),
        ({"starts_at": 1738368000}, {"starts_at": [NOT_ISO]}),
        ({"ends_at": "2025-06-01T00:00:00"}, {"ends_at": [NAIVE]}),
        ({"rate_card": "Gold"}, {"rate_card": ["No rate card named 'Gold'."]}),
        ({"rate_card": 1}, {"rate_card": ["Give the rate card's name."]}),
        ({"billing_cycle": "weekly"}, {"billing_cycle": ['"weekly" is not a valid choice.']}),
        ({"overage_policy": "never"}, {"overage_policy": ['"never" is not a valid choice.']}),
        ({"anchor_day": "first"}, {"anchor_day": ["A valid integer is required."]}),
        ({"note": "x" * 201}, {"note": ["Ensure this field has no more than 200 characters."]}),
        ({"currency": "EUR", "customer": "x"}, {"currency": UNKNOWN, "customer": UNKNOWN}),
        # The model's and the service's rules, in their words:
        ({"anchor_day": 32}, {"anchor_day": ["Use a day from 1 to 31."]}),
        ({"fixed_fee": "-1"}, {"fixed_fee": ["Must not be negative."]}),
        (
            {"fixed_fee": "1.00001"},
            {"fixed_fee": ["Ensure that there are no more than 4 decimal places."]},
        ),
        ({"discount_percent": "100.5"}, {"discount_percent": ["Use a percentage from 0 to 100."]}),
        (
            {"ends_at": "2025-02-01T00:00:00Z"},
            {"ends_at": ["A contract must end after it starts."]},
        ),
        (
            {"price_overrides": {"gpt-5": {"rate_in": {"amount": "1", "per": 1}}}},
            {"price_overrides": ["Standard has no price named 'gpt-5'."]},
        ),
        (
            {"price_overrides": {"gpt-4o": {"rate_in": {"amount": 2.0, "per": PER_1M}}}},
            {"price_overrides": [FLOAT_RATE]},
        ),
        ({"price_overrides": ["gpt-4o"]}, {"price_overrides": [OVERRIDES_SHAPE]}),
    ],
)
def test_create_refuses_what_is_wrong_naming_the_field(api, acme, standard, body_changes, errors):
    response = api.post(list_url(), {**BODY, **body_changes}, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


@pytest.mark.parametrize("missing", ["starts_at", "rate_card"])
def test_create_refuses_a_missing_required_field(api, acme, standard, missing):
    body = {name: value for name, value in BODY.items() if name != missing}

    response = api.post(list_url(), body, format="json")

    assert response.status_code == 400
    assert response.json() == {missing: ["This field is required."]}
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_create_refuses_a_rate_card_in_another_currency(api, acme):
    card_create("Euro", "EUR")

    response = api.post(list_url(), {**BODY, "rate_card": "Euro"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"rate_card": ["Euro (EUR) is priced in EUR; acme is billed in USD."]}
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_create_refuses_an_overlapping_contract(api, acme, standard):
    contract_create(customer=acme, starts_at=FEB, ends_at=JUL, rate_card=standard)
    before = contracts_snapshot()

    response = api.post(list_url(), {**BODY, "starts_at": "2025-06-01T00:00:00Z"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            "acme already has a contract from 2025-02-01 00:00 UTC (until 2025-07-01 00:00 "
            "UTC): contracts of a customer cannot overlap; end that one first."
        ]
    }
    assert contracts_snapshot() == before


def test_create_refuses_a_body_that_is_not_an_object(api, acme, standard):
    response = api.post(list_url(), [BODY], format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_create_for_an_unknown_customer_is_404(api, acme, standard):
    response = api.post(list_url("nobody"), BODY, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer with external_id 'nobody'."}
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_the_api_needs_a_key(acme, standard):
    before = contracts_snapshot()

    responses = [
        APIClient().get(list_url()),
        APIClient().post(list_url(), BODY, format="json"),
    ]

    assert [r.status_code for r in responses] == [401, 401]
    assert contracts_snapshot() == before


# --- list and get -----------------------------------------------------------------------


@pytest.fixture
def history(clock, acme, standard, premium):
    """Acme: a contract over [Feb, Jul) amended on 1 March, then one from July on."""
    first = contract_create(
        customer=acme, starts_at=FEB, ends_at=JUL, rate_card=standard, created_by="ops"
    )
    clock.advance(days=30)
    contract_amend(
        contract=first,
        effective_from=MAR,
        fixed_fee="100",
        price_overrides=OVERRIDE,
        note="Fee from March",
        created_by="ops",
    )
    second = contract_create(
        customer=acme, starts_at=JUL, rate_card=premium, billing_cycle="yearly", anchor_day=1
    )
    return first, second


def history_json(first, second) -> list[dict]:
    return [
        contract_json(
            first,
            [
                terms_json(created_by="ops"),
                terms_json(
                    number=2,
                    effective_from="2025-03-01T00:00:00Z",
                    fixed_fee="100.0000",
                    price_overrides=OVERRIDE,
                    note="Fee from March",
                    created_by="ops",
                    created_at="2025-02-14T09:30:00Z",
                ),
            ],
            ends_at="2025-07-01T00:00:00Z",
        ),
        contract_json(
            second,
            [
                terms_json(
                    effective_from="2025-07-01T00:00:00Z",
                    rate_card="Premium",
                    created_at="2025-02-14T09:30:00Z",
                )
            ],
            starts_at="2025-07-01T00:00:00Z",
            billing_cycle="yearly",
            anchor_month=7,
            created_at="2025-02-14T09:30:00Z",
        ),
    ]


def test_list_shows_every_contract_oldest_first_with_its_whole_history(
    api, history, globex, standard, django_assert_max_num_queries
):
    contract_create(customer=globex, starts_at=FEB, rate_card=standard)

    # The key (and its last use), the customer, the contracts, their terms: however many.
    with django_assert_max_num_queries(5):
        response = api.get(list_url())

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": history_json(*history)}


def test_list_pages_with_a_cursor(api, history):
    first = api.get(list_url(), {"page_size": 1}).json()
    second = api.get(first["next"]).json()

    assert [c["id"] for c in first["results"]] == [history[0].pk]
    assert [c["id"] for c in second["results"]] == [history[1].pk]
    assert second["next"] is None
    assert [c["id"] for c in api.get(second["previous"]).json()["results"]] == [history[0].pk]


def test_list_of_a_customer_without_contracts_is_empty(api, acme):
    response = api.get(list_url())

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


def test_list_of_an_unknown_customer_is_404(api, acme):
    response = api.get(list_url("nobody"))

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer with external_id 'nobody'."}


def test_get_returns_the_contract_with_its_whole_history(api, history):
    response = api.get(detail_url(history[0].pk))

    assert response.status_code == 200
    assert response.json() == history_json(*history)[0]


def test_a_contract_is_not_found_under_another_customer(api, history, globex):
    response = api.get(detail_url(history[0].pk, "globex"))

    assert response.status_code == 404
    assert response.json() == {"detail": f"No contract {history[0].pk} for customer 'globex'."}


def test_an_unknown_contract_is_404(api, history):
    unknown = history[1].pk + 1

    responses = [api.get(detail_url(unknown)), api.get(detail_url(2**70))]

    assert [r.status_code for r in responses] == [404, 404]
    assert responses[0].json() == {"detail": f"No contract {unknown} for customer 'acme'."}


@pytest.mark.parametrize("method", ["put", "delete"])
def test_contracts_are_not_replaced_or_deleted(api, history, method):
    before = contracts_snapshot()

    response = getattr(api, method)(detail_url(history[0].pk), BODY, format="json")

    assert response.status_code == 405
    assert contracts_snapshot() == before


# --- amendments -------------------------------------------------------------------------


def amend_url(contract: Contract, external_id: str = "acme") -> str:
    return f"{detail_url(contract.pk, external_id)}/amendments"


def end_url(contract: Contract, external_id: str = "acme") -> str:
    return f"{detail_url(contract.pk, external_id)}/end"


@pytest.fixture
def signed(acme, standard):
    return contract_create(customer=acme, starts_at=FEB, rate_card=standard, fixed_fee="500")


def test_an_amendment_answers_the_contract_with_the_new_terms_last(
    clock, api, signed, premium, created_by
):
    clock.advance(days=40)
    body = {
        "effective_from": "2025-03-10T12:00:00Z",
        "rate_card": "Premium",
        "discount_percent": "10",
        "note": "Moved to Premium",
    }

    response = api.post(amend_url(signed), body, format="json")

    assert response.status_code == 201
    assert response.json() == contract_json(
        signed,
        [
            terms_json(fixed_fee="500.0000"),
            terms_json(
                number=2,
                effective_from="2025-03-10T12:00:00Z",
                rate_card="Premium",
                fixed_fee="500.0000",
                discount_percent="10.0000",
                note="Moved to Premium",
                created_by=created_by,
                created_at="2025-02-24T09:30:00Z",
            ),
        ],
    )
    assert changes() == [("acme", FEB), ("acme", utc(2025, 3, 10, 12))]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"fixed_fee": "600"}, {"effective_from": ["This field is required."]}),
        (
            {"effective_from": "2025-02-01T00:00:00Z", "fixed_fee": "600"},
            {"effective_from": ["Must be after the latest terms start (2025-02-01 00:00 UTC)."]},
        ),
        (
            {"effective_from": "2025-03-01T00:00:00Z", "fixed_fee": 600},
            {"fixed_fee": [NUMBER_MONEY]},
        ),
        (
            {"effective_from": "2025-03-01T00:00:00", "fixed_fee": "600"},
            {"effective_from": [NAIVE]},
        ),
        (
            {"effective_from": "2025-03-01T00:00:00Z", "anchor_day": 15, "billing_cycle": "yearly"},
            {"anchor_day": ["Unknown field."], "billing_cycle": ["Unknown field."]},
        ),
        (
            {"effective_from": "2025-01-01T00:00:00Z", "included_allowance": "-5"},
            {
                "effective_from": ["Must be after the latest terms start (2025-02-01 00:00 UTC)."],
                "included_allowance": ["Must not be negative."],
            },
        ),
        (
            {"effective_from": "2025-03-01T00:00:00Z", "price_overrides": {"o1": {}}},
            {"price_overrides": ["o1: name at least one rate."]},
        ),
    ],
)
def test_an_amendment_refuses_what_is_wrong_naming_the_field(api, signed, body, errors):
    before = contracts_snapshot()

    response = api.post(amend_url(signed), body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert contracts_snapshot() == before


def test_an_amendment_must_come_before_the_end(api, signed):
    contract_end(contract=signed, ends_at=JUL)
    before = contracts_snapshot()

    response = api.post(
        amend_url(signed),
        {"effective_from": "2025-07-01T00:00:00Z", "fixed_fee": "1"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "effective_from": ["Must be before the contract ends (2025-07-01 00:00 UTC)."]
    }
    assert contracts_snapshot() == before


def test_an_amendment_of_another_customers_contract_is_404(api, signed, globex):
    before = contracts_snapshot()

    response = api.post(
        amend_url(signed, "globex"),
        {"effective_from": "2025-03-01T00:00:00Z", "fixed_fee": "1"},
        format="json",
    )

    assert response.status_code == 404
    assert response.json() == {"detail": f"No contract {signed.pk} for customer 'globex'."}
    assert contracts_snapshot() == before


def test_amendments_are_only_created(api, signed):
    assert api.get(amend_url(signed)).status_code == 405


# --- end --------------------------------------------------------------------------------


def test_ending_a_contract_answers_it_with_its_end(clock, api, signed):
    response = api.post(end_url(signed), {"ends_at": "2025-07-01T00:00:00Z"}, format="json")

    assert response.status_code == 200
    assert response.json() == contract_json(
        signed, [terms_json(fixed_fee="500.0000")], ends_at="2025-07-01T00:00:00Z"
    )
    assert Contract.objects.get().ends_at == JUL
    assert changes() == [("acme", FEB), ("acme", JUL)]


def test_null_reopens_a_contract(api, signed):
    contract_end(contract=signed, ends_at=JUL)

    response = api.post(end_url(signed), {"ends_at": None}, format="json")

    assert response.status_code == 200
    assert response.json()["ends_at"] is None
    assert Contract.objects.get().ends_at is None
    assert changes() == [("acme", FEB), ("acme", JUL), ("acme", JUL)]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"ends_at": ["This field is required."]}),
        ({"ends_at": "2025-07-01"}, {"ends_at": [NAIVE]}),
        ({"ends_at": "soon"}, {"ends_at": [NOT_ISO]}),
        (
            {"ends_at": "2025-07-01T00:00:00Z", "reason": "churn"},
            {"reason": ["Unknown field."]},
        ),
        (
            {"ends_at": "2025-02-01T00:00:00Z"},
            {"ends_at": ["Must be after the latest terms start (2025-02-01 00:00 UTC)."]},
        ),
    ],
)
def test_an_end_refuses_what_is_wrong_naming_the_field(api, signed, body, errors):
    before = contracts_snapshot()

    response = api.post(end_url(signed), body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert contracts_snapshot() == before


def test_an_end_cannot_reach_into_the_next_contract(api, signed, standard):
    contract_end(contract=signed, ends_at=APR)
    contract_create(customer=signed.customer, starts_at=JUL, rate_card=standard)
    before = contracts_snapshot()

    response = api.post(end_url(signed), {"ends_at": None}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            "acme already has a contract from 2025-07-01 00:00 UTC (open-ended): contracts "
            "of a customer cannot overlap; end that one first."
        ]
    }
    assert contracts_snapshot() == before


def test_an_end_of_another_customers_contract_is_404(api, signed, globex):
    before = contracts_snapshot()

    response = api.post(
        end_url(signed, "globex"), {"ends_at": "2025-07-01T00:00:00Z"}, format="json"
    )

    assert response.status_code == 404
    assert contracts_snapshot() == before


# --- OpenAPI ----------------------------------------------------------------------------


def test_schema_documents_the_contract_operations(api):
    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    base = "/api/v1/customers/{external_id}/contracts"
    operations = {
        (path, method): operation
        for path in (
            base,
            *(f"{base}/{{contract_id}}{tail}" for tail in ("", "/amendments", "/end")),
        )
        for method, operation in paths[path].items()
        if method != "parameters"
    }
    assert {key: op["operationId"] for key, op in operations.items()} == {
        (base, "get"): "contracts_list",
        (base, "post"): "contracts_create",
        (f"{base}/{{contract_id}}", "get"): "contracts_retrieve",
        (f"{base}/{{contract_id}}", "patch"): "contracts_partial_update",
        (f"{base}/{{contract_id}}/amendments", "post"): "contracts_amend",
        (f"{base}/{{contract_id}}/end", "post"): "contracts_end",
    }
    assert all(op["tags"] == ["contracts"] for op in operations.values())
    schemas = response.json()["components"]["schemas"]
    assert schemas["ContractCreateRequest"]["properties"]["fixed_fee"]["type"] == "string"
    assert schemas["ContractCreateRequest"]["required"] == ["rate_card", "starts_at"]
    assert schemas["AmendmentCreateRequest"]["required"] == ["effective_from"]


def test_the_schema_generates_without_warnings():
    out = io.StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)

    assert "/api/v1/customers/{external_id}/contracts/{contract_id}/amendments" in out.getvalue()


# --- payment terms ------------------------------------------------------------------------


def test_payment_terms_are_set_at_creation_and_changed_later(api, acme, standard):
    created = api.post(
        list_url(),
        {"starts_at": "2025-02-01T00:00:00Z", "rate_card": "Standard", "payment_terms_days": 14},
        format="json",
    )
    contract = Contract.objects.get()
    changed = api.patch(detail_url(contract.pk), {"payment_terms_days": 0}, format="json")
    reset = api.patch(detail_url(contract.pk), {"payment_terms_days": None}, format="json")

    assert (created.status_code, created.json()["payment_terms_days"]) == (201, 14)
    assert (changed.status_code, changed.json()["payment_terms_days"]) == (200, 0)
    assert (reset.status_code, reset.json()["payment_terms_days"]) == (200, None)
    contract.refresh_from_db()
    assert contract.payment_terms_days is None


@pytest.mark.parametrize(
    ("days", "errors"),
    [
        (366, {"payment_terms_days": ["Ensure this value is less than or equal to 365."]}),
        (-1, {"payment_terms_days": ["Ensure this value is greater than or equal to 0."]}),
        ("soon", {"payment_terms_days": ["A valid integer is required."]}),
    ],
)
def test_bad_payment_terms_are_refused_and_store_nothing(api, acme, standard, days, errors):
    body = {"starts_at": "2025-02-01T00:00:00Z", "rate_card": "Standard"}
    contract = contract_create(customer=acme, starts_at=FEB, rate_card=standard)
    before = contracts_snapshot()

    created = api.post(list_url(), {**body, "payment_terms_days": days}, format="json")
    changed = api.patch(detail_url(contract.pk), {"payment_terms_days": days}, format="json")

    assert (created.status_code, changed.status_code) == (400, 400)
    assert created.json() == errors
    assert changed.json() == errors
    assert contracts_snapshot() == before


def test_a_patch_changes_nothing_but_the_payment_terms(api, acme, standard):
    contract = contract_create(customer=acme, starts_at=FEB, rate_card=standard)
    before = contracts_snapshot()

    response = api.patch(detail_url(contract.pk), {"anchor_day": 5}, format="json")

    assert response.status_code == 400
    assert response.json() == {"anchor_day": ["Unknown field."]}
    assert contracts_snapshot() == before
