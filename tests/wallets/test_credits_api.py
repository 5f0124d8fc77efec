"""Credits over the API for billing ops: grants made and listed, manual adjustments, holds
and the ledger, each change on the ledger and in the audit trail; refusals store nothing."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from common.models import AuditEntry, IdempotencyKey
from contracts.models import ApiKey
from contracts.services import customer_api_key_create, customer_create
from wallets.models import CreditGrant, Hold, LedgerEntry, Wallet
from wallets.services import (
    credit_grant,
    grants_expire,
    hold_place,
    hold_release,
    wallet_draw_down,
)

from .test_wallets import assert_consistent

T0 = datetime(2026, 12, 5, 10, tzinfo=UTC)
STAMP = "2026-12-05T10:00:00Z"
URL = "/api/v1/customers/acme/wallet"
ZERO = "0.000000000000"
D = Decimal


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = T0

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def ops(api) -> str:
    """How the operator key is recorded as `created_by`."""
    return f"API key test operator (tt_{ApiKey.objects.get().prefix}_…)"


def counts() -> dict[str, int]:
    """The rows a refused request must leave as they were."""
    models = (Wallet, CreditGrant, LedgerEntry, Hold, AuditEntry, IdempotencyKey)
    return {model.__name__: model.objects.count() for model in models}


def post(api, path: str, body: dict, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(f"{URL}/{path}", body, format="json", **headers)


# --- Grants -------------------------------------------------------------------------------


def test_a_grant_is_usable_at_once_recorded_on_the_ledger_and_in_the_audit_trail(
    api, acme, clock, ops
):
    answer = post(api, "grants", {"amount": "100.00", "source": "purchased", "reason": "PO 1234",
                                  "expires_at": "2027-12-01T00:00:00Z"})  # fmt: skip

    assert answer.status_code == 201
    grant = CreditGrant.objects.get()
    assert answer.json() == {
        "id": grant.pk,
        "source": "purchased",
        "amount": "100.000000000000",
        "remaining": "100.000000000000",
        "expired": ZERO,
        "status": "live",
        "priority": 0,
        "effective_at": STAMP,
        "credited_at": STAMP,
        "expires_at": "2027-12-01T00:00:00Z",
        "reason": "PO 1234",
        "created_by": ops,
        "created_at": STAMP,
    }
    wallet = Wallet.objects.get()
    assert (wallet.balance, wallet.currency) == (D(100), "USD")
    assert list(wallet.entries.values_list("kind", "amount", "reason", "created_by")) == [
        ("grant", D(100), "PO 1234", ops)
    ]
    entry = AuditEntry.objects.get()
    prefix = ApiKey.objects.get().prefix
    assert (entry.actor, entry.action, entry.customer, entry.reason, entry.object_id) == (
        f"key:test operator ({prefix})", "credit_grant.create", "acme", "PO 1234", str(grant.pk),
    )  # fmt: skip
    assert (entry.after["amount"], entry.after["created_by"]) == ("100.00", ops)


def test_a_grant_for_later_is_pending_and_out_of_the_wallet_until_effective(api, acme, clock):
    answer = post(api, "grants", {"amount": "500.00", "source": "promotional", "priority": 1,
                                  "effective_at": "2027-01-01T00:00:00+01:00",
                                  "expires_at": "2027-04-01T00:00:00Z"})  # fmt: skip

    assert answer.status_code == 201
    body = answer.json()
    assert (body["status"], body["amount"], body["remaining"], body["priority"]) == (
        "pending", "500.000000000000", ZERO, 1,
    )  # fmt: skip
    assert (body["effective_at"], body["credited_at"]) == ("2026-12-31T23:00:00Z", None)
    wallet = api.get(URL).json()
    assert (wallet["balance"], wallet["available"], wallet["grants"]) == (ZERO, ZERO, [])
    assert not LedgerEntry.objects.exists()


REFUSED_GRANTS = [
    ({"amount": 100, "source": "purchased"},
     {"amount": ['Write the amount as a string, e.g. "500.00": money is never a JSON number.']}),
    ({"amount": "1e3", "source": "purchased"},
     {"amount": ["'1e3' is not a decimal number such as \"500.00\"."]}),
    ({"amount": "-5", "source": "purchased"}, {"amount": ["Must be greater than 0."]}),
    ({"amount": "0", "source": "purchased"}, {"amount": ["Must be greater than 0."]}),
    ({"amount": "1.0000000000001", "source": "purchased"},
     {"amount": ["Use a finite amount with at most 12 places."]}),
    ({"amount": "1" + "0" * 20, "source": "purchased"},
     {"amount": ["Use at most 20 digits before the point."]}),
    ({"amount": "5", "source": "refund"}, {"source": ['"refund" is not a valid choice.']}),
    ({"amount": "5"}, {"source": ["This field is required."]}),
    ({"amount": "5", "source": "purchased", "effective_at": "2026-12-05T09:00:00Z"},
     {"effective_at": [
         "Give an instant in the future, or leave it out for credits usable at once."]}),
    ({"amount": "5", "source": "purchased", "effective_at": "2027-01-01T00:00:00Z",
      "expires_at": "2026-12-31T00:00:00Z"},
     {"expires_at": ["A grant must expire after it becomes effective."]}),
    ({"amount": "5", "source": "purchased", "expires_at": "2026-12-05T10:00:00Z"},
     {"expires_at": ["A grant must expire in the future."]}),
    ({"amount": "5", "source": "purchased", "expires_at": "2027-01-01T00:00:00"},
     {"expires_at": [
         "Give the UTC offset too, e.g. 2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00."]}),
    ({"amount": "5", "source": "purchased", "priority": 2**31},
     {"priority": ["Ensure this value is less than or equal to 2147483647."]}),
    ({"amount": "5", "source": "purchased", "currency": "EUR"}, {"currency": ["Unknown field."]}),
]  # fmt: skip


@pytest.mark.parametrize(("body", "errors"), REFUSED_GRANTS)
def test_a_refused_grant_names_the_field_and_stores_nothing(api, acme, clock, body, errors):
    credit_grant(customer=acme, amount="1", source=CreditGrant.Source.PURCHASED)
    before = counts()

    answer = post(api, "grants", body, key="grant-1")

    assert (answer.status_code, answer.json()) == (400, errors)
    assert counts() == before


def test_the_same_key_and_body_grant_once_and_answer_the_same(api, acme, clock):
    body = {"amount": "25.50", "source": "purchased", "reason": "PO 9"}

    first = post(api, "grants", body, key="po-9")
    again = post(api, "grants", body, key="po-9")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert (CreditGrant.objects.count(), Wallet.objects.get().balance) == (1, D("25.50"))
    assert post(api, "grants", {**body, "amount": "30"}, key="po-9").status_code == 422


def test_every_grant_is_listed_newest_first_with_what_is_left_and_what_expired(
    api, acme, clock, ops
):
    def grant(amount, source, **more):
        return post(api, "grants", {"amount": amount, "source": source, **more}).json()["id"]

    used = grant("10", "purchased", priority=2)  # drawn first
    expiring = grant("20", "promotional", priority=1, expires_at="2026-12-06T10:00:00Z")
    live = grant("40", "purchased")
    wallet_draw_down(wallet=Wallet.objects.get(), amount="15")  # 10 of `used`, 5 of `expiring`
    clock.now = T0 + timedelta(days=2)
    grants_expire()  # the 15 left of `expiring`
    pending = grant("30", "allowance", effective_at="2026-12-08T00:00:00Z")

    page = api.get(f"{URL}/grants").json()

    assert page["next"] is None
    assert [
        (g["id"], g["status"], g["amount"], g["remaining"], g["expired"]) for g in page["results"]
    ] == [
        (pending, "pending", "30.000000000000", ZERO, ZERO),
        (live, "live", "40.000000000000", "40.000000000000", ZERO),
        (expiring, "expired", "20.000000000000", ZERO, "15.000000000000"),
        (used, "used", "10.000000000000", ZERO, ZERO),
    ]
    assert {g["created_by"] for g in page["results"]} == {ops}
    assert_consistent(Wallet.objects.get())


def test_grants_come_a_page_at_a_time(api, acme, clock):
    for amount in ("1", "2", "3"):
        credit_grant(customer=acme, amount=amount, source=CreditGrant.Source.PURCHASED)

    first = api.get(f"{URL}/grants", {"page_size": 2}).json()
    rest = APIClient.get(api, first["next"]).json()

    assert [g["amount"] for g in first["results"]] == ["3.000000000000", "2.000000000000"]
    assert [g["amount"] for g in rest["results"]] == ["1.000000000000"]
    assert rest["next"] is None


def test_a_customer_without_credits_has_no_grants_holds_or_ledger(api, acme):
    for path in ("grants", "holds", "ledger"):
        assert api.get(f"{URL}/{path}").json() == {"next": None, "previous": None, "results": []}
    assert not Wallet.objects.exists()


# --- Adjustments --------------------------------------------------------------------------


def test_a_positive_adjustment_is_a_grant_of_its_own(api, acme, clock, ops):
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)

    answer = post(api, "adjustments", {"amount": "25.00", "reason": "Goodwill, ticket 42"})

    assert answer.status_code == 201
    grant = CreditGrant.objects.get(source="adjustment")
    assert answer.json() == {
        "customer_id": "acme",
        "currency": "USD",
        "amount": "25.000000000000",
        "reason": "Goodwill, ticket 42",
        "created_by": ops,
        "grant": {
            "id": grant.pk, "source": "adjustment", "amount": "25.000000000000",
            "remaining": "25.000000000000", "expired": ZERO, "status": "live", "priority": 0,
            "effective_at": STAMP, "credited_at": STAMP, "expires_at": None,
            "reason": "Goodwill, ticket 42", "created_by": ops, "created_at": STAMP,
        },
        "balance": "35.000000000000",
        "available": "35.000000000000",
    }  # fmt: skip
    assert list(AuditEntry.objects.values_list("action", "reason")) == [
        ("credit_grant.create", "Goodwill, ticket 42")
    ]


def test_a_negative_adjustment_takes_from_the_grants_in_draw_down_order(api, acme, clock, ops):
    first = credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PROMOTIONAL,
                         priority=1)  # fmt: skip
    second = credit_grant(customer=acme, amount="20", source=CreditGrant.Source.PURCHASED)
    hold_place(customer=acme, amount="0.011")

    answer = post(api, "adjustments", {"amount": "-12.50", "reason": "Granted twice"})

    assert answer.status_code == 201
    assert answer.json() == {
        "customer_id": "acme", "currency": "USD", "amount": "-12.500000000000",
        "reason": "Granted twice", "created_by": ops, "grant": None,
        "balance": "17.500000000000", "available": "17.489000000000",
    }  # fmt: skip
    assert list(
        LedgerEntry.objects.filter(kind="adjustment").values_list(
            "grant", "amount", "reason", "created_by"
        )
    ) == [
        (first.pk, D("-10"), "Granted twice", ops),
        (second.pk, D("-2.5"), "Granted twice", ops),
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.reason, entry.after["amount"]) == (
        "wallet.adjust", "Granted twice", "-12.50",
    )  # fmt: skip
    assert D(entry.after["drawn"]) == D("12.5")  # with the places the database keeps


REFUSED_ADJUSTMENTS = [
    ({"amount": "-50", "reason": "too much"},
     {"amount": ["acme USD wallet has 10 available; 50 was asked for."]}),
    ({"amount": "0", "reason": "nothing"},
     {"amount": ["Give a positive amount to add or a negative one to take."]}),
    ({"amount": "-1"}, {"reason": ["This field is required."]}),
    ({"amount": "-1", "reason": "   "}, {"reason": ["This field may not be blank."]}),
    ({"amount": -1, "reason": "number"},
     {"amount": ['Write the amount as a string, e.g. "500.00": money is never a JSON number.']}),
    ({"amount": "-1", "reason": "x" * 301},
     {"reason": ["Ensure this field has no more than 300 characters."]}),
]  # fmt: skip


@pytest.mark.parametrize(("body", "errors"), REFUSED_ADJUSTMENTS)
def test_a_refused_adjustment_names_the_field_and_stores_nothing(api, acme, clock, body, errors):
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    before = counts()

    answer = post(api, "adjustments", body, key="adjust-1")

    assert (answer.status_code, answer.json()) == (400, errors)
    assert counts() == before


def test_a_negative_adjustment_of_a_customer_without_credits_creates_no_wallet(api, acme):
    answer = post(api, "adjustments", {"amount": "-5.00", "reason": "mistake"})

    assert (answer.status_code, answer.json()) == (
        400, {"amount": ["acme has no credits; 5 was asked for."]},
    )  # fmt: skip
    assert counts() == dict.fromkeys(counts(), 0)


# --- Holds and the ledger -----------------------------------------------------------------


def test_holds_are_listed_newest_first_all_or_of_one_status(api, acme, clock, settings):
    settings.TOKENTILL_HOLD_SECONDS = 300
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    first = hold_place(customer=acme, amount="1.5", estimate="2", reference="chat 1")
    clock.now = T0 + timedelta(seconds=10)
    second = hold_place(customer=acme, amount="0.25", reference="chat 2")
    hold_release(hold=first)

    every = api.get(f"{URL}/holds").json()["results"]
    active = api.get(f"{URL}/holds", {"status": "active"}).json()["results"]

    assert every == [
        {"id": str(second.pk), "amount": "0.250000000000", "estimate": "0.250000000000",
         "status": "active", "reference": "chat 2", "created_at": "2026-12-05T10:00:10Z",
         "expires_at": "2026-12-05T10:05:10Z", "closed_at": None, "settled_cost": None},
        {"id": str(first.pk), "amount": "1.500000000000", "estimate": "2.000000000000",
         "status": "released", "reference": "chat 1", "created_at": STAMP,
         "expires_at": "2026-12-05T10:05:00Z", "closed_at": "2026-12-05T10:00:10Z",
         "settled_cost": None},
    ]  # fmt: skip
    assert active == every[:1]
    bad = api.get(f"{URL}/holds", {"status": "open"})
    assert (bad.status_code, bad.json()) == (400, {"status": ['"open" is not a valid choice.']})


def test_the_ledger_lists_every_movement_newest_first_a_page_at_a_time(api, acme, clock, ops):
    post(api, "grants", {"amount": "10", "source": "purchased", "reason": "PO 1"})
    wallet = Wallet.objects.get()
    clock.now = T0 + timedelta(minutes=1)
    wallet_draw_down(wallet=wallet, amount="0.25", reference="usage 2026-12-01")
    hold = hold_place(customer=acme, amount="1", reference="chat 7")
    post(api, "adjustments", {"amount": "-2", "reason": "goodwill back"})
    grant = CreditGrant.objects.get()

    first = api.get(f"{URL}/ledger", {"page_size": 3}).json()
    rest = APIClient.get(api, first["next"]).json()

    at = "2026-12-05T10:01:00Z"
    assert first["results"] + rest["results"] == [
        {"id": first["results"][0]["id"], "kind": "adjustment", "amount": "-2.000000000000",
         "grant": grant.pk, "hold": None, "reference": "", "reason": "goodwill back",
         "created_by": ops, "at": at},
        {"id": first["results"][1]["id"], "kind": "hold", "amount": "-1.000000000000",
         "grant": None, "hold": str(hold.pk), "reference": "chat 7", "reason": "",
         "created_by": "", "at": at},
        {"id": first["results"][2]["id"], "kind": "draw_down", "amount": "-0.250000000000",
         "grant": grant.pk, "hold": None, "reference": "usage 2026-12-01", "reason": "",
         "created_by": "", "at": at},
        {"id": rest["results"][0]["id"], "kind": "grant", "amount": "10.000000000000",
         "grant": grant.pk, "hold": None, "reference": "", "reason": "PO 1",
         "created_by": ops, "at": STAMP},
    ]  # fmt: skip
    assert rest["next"] is None
    grants = api.get(f"{URL}/ledger", {"kind": "grant"}).json()["results"]
    assert [entry["amount"] for entry in grants] == ["10.000000000000"]
    bad = api.get(f"{URL}/ledger", {"kind": "refund"})
    assert (bad.status_code, bad.json()) == (400, {"kind": ['"refund" is not a valid choice.']})


# --- Who may call -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["grants", "adjustments", "holds", "ledger"])
def test_an_unknown_customer_is_404_and_stores_nothing(api, db, path):
    url = f"/api/v1/customers/nobody/wallet/{path}"
    body = {"amount": "5", "source": "purchased", "reason": "x"}

    answer = api.post(url, body, format="json") if path == "adjustments" else api.get(url)

    assert (answer.status_code, answer.json()) == (
        404, {"detail": "No customer with external_id 'nobody'."},
    )  # fmt: skip
    if path == "grants":
        assert api.post(url, body, format="json").status_code == 404
    assert not Wallet.objects.exists()


def test_a_customer_key_reads_its_wallet_and_nothing_of_this(acme, clock):
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    _, key = customer_api_key_create(customer=acme, name="dashboards", created_by="ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    before = counts()
    refused = {"detail": "A customer's API key cannot call this endpoint."}

    assert client.get(URL).json()["balance"] == "10.000000000000"
    for path in ("grants", "holds", "ledger"):
        answer = client.get(f"{URL}/{path}")
        assert (answer.status_code, answer.json()) == (403, refused)
    for path, body in (("grants", {"amount": "5", "source": "purchased"}),
                       ("adjustments", {"amount": "5", "reason": "mine"})):  # fmt: skip
        answer = client.post(f"{URL}/{path}", body, format="json")
        assert (answer.status_code, answer.json()) == (403, refused)
    assert counts() == before


def test_another_customer_s_wallet_is_its_own(api, acme, clock):
    customer_create(external_id="globex", name="Globex", currency="EUR")
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)

    answer = api.post("/api/v1/customers/globex/wallet/grants",
                      {"amount": "7", "source": "purchased"}, format="json")  # fmt: skip

    assert answer.status_code == 201
    assert Wallet.objects.get(customer__external_id="globex").currency == "EUR"
    assert [g["amount"] for g in api.get(f"{URL}/grants").json()["results"]] == ["10.000000000000"]
