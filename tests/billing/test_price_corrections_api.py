"""POST /api/v1/rate-cards/{name}/corrections: the diff first (stored nowhere), then with
`apply: true` the correction (201), recorded with the API key's name; refusals are 400s
naming the field, with nothing stored; a customer's key is refused.

The scenario and its figures: correction_support.
"""

import pytest
from rest_framework.test import APIClient

from billing.models import CreditNote
from contracts.models import Price, PriceCorrection, RateCardVersion
from contracts.services import customer_api_key_create
from metering.models import UnratedEvent

from .conftest import rate, usage_of
from .correction_support import REASON, clock_set, stored, two_customers

URL = "/api/v1/rate-cards/Standard/corrections"
BODY = {
    "effective_from": "2026-11-27T00:00:00Z",
    "price": "gpt-4o",
    "rates": {"rate_out": "5.00"},
    "reason": REASON,
}
NOV = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
DEC = {"start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
ZERO = "0.000000000000"


@pytest.fixture
def clock(now, monkeypatch):
    return clock_set(monkeypatch)


@pytest.fixture
def globex(clock, acme, rate_card):
    return two_customers(clock, acme, rate_card)


def counts() -> tuple[int, int, int, int]:
    return (
        RateCardVersion.objects.count(),
        Price.objects.count(),
        PriceCorrection.objects.count(),
        UnratedEvent.objects.count(),
    )


def side(events: int, amount: str, source: str) -> dict:
    return {"events": events, "quantity": ZERO, "amount": amount, "source": source}


def test_the_preview_answers_the_diff_per_customer_and_period_and_stores_nothing(globex, api):
    before, rows = counts(), stored()
    assert before == (1, 1, 0, 0)  # Standard v1 and its price; nothing queued

    response = api.post(URL, BODY, format="json")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["applied"] is False
    assert answer["correction"] == {
        "id": None,
        "rate_card": "Standard",
        "price": "gpt-4o",
        "effective_from": "2026-11-27T00:00:00Z",
        "rates": {"rate_out": "5.00"},
        "formula": "",
        "reason": REASON,
        "created_by": answer["correction"]["created_by"],
        "created_at": None,
        "versions": [{"number": 2, "effective_from": "2026-11-27T00:00:00Z", "copies": 1}],
    }
    assert answer["correction"]["created_by"].startswith("API key test operator (tt_")
    acme, globex_answer = answer["customers"]
    november, december = acme["periods"]
    assert acme["customer_id"] == "acme"
    assert november == {
        "period": NOV,
        "status": "closed",
        "events": 3,
        "total": {"now": "60.000000000000", "after": "50.000000000000"},
        "lines": [
            {
                "line": "gpt-4o · gpt-4o",
                "changed": True,
                "now": side(3, "30.000000000000", "Standard v1, terms 1"),
                "after": side(3, "20.000000000000", "Standard v1, terms 1; Standard v2, terms 1"),
            }
        ],
        "closed": {
            "invoice": "INV-000001",
            "charges": {"billed": "60.000000000000", "after": "50.000000000000"},
            "credits": {"billed": ZERO, "after": ZERO},
            "description": (
                "Correction of invoice INV-000001, 2026-11-01 to 2026-11-30: usage repriced"
            ),
            "credit_note": {"invoice": "INV-000001", "amount": "10.00", "destination": "none"},
            "next_invoice": None,
            "paid_by_credits": False,
        },
    }
    assert (december["status"], december["total"], december["closed"]) == (
        "open",
        {"now": "40.000000000000", "after": "35.000000000000"},
        None,
    )
    assert globex_answer["customer_id"] == "globex"
    assert [p["total"] for p in globex_answer["periods"]] == [
        {"now": "20.000000000000", "after": "10.000000000000"}
    ]
    # Nothing stored: versions, prices, corrections, queue rows (and ratings, ledger).
    assert counts() == before
    assert stored() == rows
    assert rate() == 0


def test_applying_answers_the_correction_and_re_rates(globex, api, operator_key):
    response = api.post(URL, {**BODY, "apply": True}, format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    record = PriceCorrection.objects.get()
    assert answer["applied"] is True
    assert answer["correction"]["id"] == record.pk
    assert answer["correction"]["created_at"] == "2026-12-04T12:00:00Z"
    assert record.created_by == f"API key test operator (tt_{operator_key[3:11]}_…)"
    assert record.reason == REASON
    assert answer["queued"] == [
        {"customer_id": "acme", "period": NOV, "events": 3, "invoice": "INV-000001"},
        {"customer_id": "acme", "period": DEC, "events": 1, "invoice": None},
        {"customer_id": "globex", "period": DEC, "events": 1, "invoice": None},
    ]
    assert answer["events_queued"] == 5
    assert counts() == (2, 2, 1, 5)

    assert rate() == 5
    assert usage_of(api, at="2026-12-04T00:00:00Z")["total"] == "35.000000000000"
    assert not CreditNote.objects.exists()  # until the next closing


REFUSALS = [
    ({"reason": ""}, {"reason": ["This field may not be blank."]}),
    ({"reason": "   "}, {"reason": ["This field may not be blank."]}),
    (
        {"effective_from": "2026-10-31T00:00:00Z"},
        {
            "effective_from": [
                "Standard has no prices before 2026-11-01 00:00 UTC (Standard v1): a "
                "correction starts then or later."
            ]
        },
    ),
    (
        {"effective_from": "2026-12-05T00:00:00Z"},
        {
            "effective_from": [
                "A correction starts in the past: to change prices from a later instant, "
                "schedule a new version."
            ]
        },
    ),
    (
        {"price": "gpt-5"},
        {
            "price": [
                "Standard v1 (in force at 2026-11-27 00:00 UTC) has no price named 'gpt-5' "
                "(its prices: gpt-4o)."
            ]
        },
    ),
    (
        {"rates": {"rate_out": 5.0}},
        {
            "rates": {
                "rate_out": [
                    'Give the amount as text, e.g. "5.00", or {"amount": "5.00", "per": 1000000}.'
                ]
            }
        },
    ),
    (
        {"rates": {"rate_out": "-1"}},
        {"rates": ["'rate_out': the amount must be a number of at least 0."]},
    ),
    ({"rates": {}}, {"rates": ["Give the rates to correct (or a formula)."]}),
    (
        {"effective_from": "2026-11-27T00:00:00"},
        {
            "effective_from": [
                "Give the UTC offset too, e.g. 2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00."
            ]
        },
    ),
    ({"apply": True, "note": "x"}, {"note": ["Unknown field."]}),
]


@pytest.mark.parametrize(("change", "errors"), REFUSALS)
def test_a_refused_correction_is_a_400_naming_the_field_and_stores_nothing(
    globex, api, change, errors
):
    before = stored()

    response = api.post(URL, {**BODY, "apply": True, **change}, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert stored() == before


def test_a_missing_reason_is_required(globex, api):
    body = {name: value for name, value in BODY.items() if name != "reason"}
    before = stored()

    response = api.post(URL, {**body, "apply": True}, format="json")

    assert (response.status_code, response.json()) == (400, {"reason": ["This field is required."]})
    assert stored() == before


def test_an_unknown_rate_card_is_a_404(globex, api):
    response = api.post("/api/v1/rate-cards/Gold/corrections", BODY, format="json")

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No rate card named 'Gold'."},
    )


def test_a_customer_s_key_is_refused_and_nothing_is_stored(globex, acme):
    _, key = customer_api_key_create(customer=acme, name="acme's key", created_by="ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    before = stored()

    for apply in (False, True):
        response = client.post(URL, {**BODY, "apply": apply}, format="json")
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "A customer's API key cannot call this endpoint."},
        )
    assert stored() == before
