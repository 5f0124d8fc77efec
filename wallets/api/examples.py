"""Answers and refusals of the grants, adjustments, holds and ledger endpoints as the OpenAPI
page shows them (tests/test_api_schema.py checks each against its serializer's schema):
acme, USD, in December 2026."""

from drf_spectacular.utils import OpenApiExample

ZERO = "0.000000000000"
OPS = "API key billing-ops (tt_k3x9a0qz_…)"

GRANT = {
    "id": 12,
    "source": "purchased",
    "amount": "100.000000000000",
    "remaining": "100.000000000000",
    "expired": ZERO,
    "status": "live",
    "priority": 0,
    "effective_at": "2026-12-01T09:00:00Z",
    "credited_at": "2026-12-01T09:00:00Z",
    "expires_at": "2027-12-01T00:00:00Z",
    "reason": "PO 1234",
    "created_by": OPS,
    "created_at": "2026-12-01T09:00:00Z",
}
GRANT_REQUEST = OpenApiExample(
    "From the first of next month",
    request_only=True,
    value={
        "amount": "500.00",
        "source": "promotional",
        "priority": 1,
        "effective_at": "2027-01-01T00:00:00Z",
        "expires_at": "2027-04-01T00:00:00Z",
        "reason": "Launch offer, Q1",
    },
)
GRANT_PENDING = OpenApiExample(
    "Granted for later",
    response_only=True,
    status_codes=["201"],
    value={
        **GRANT,
        "id": 13,
        "source": "promotional",
        "amount": "500.000000000000",
        "remaining": ZERO,
        "status": "pending",
        "priority": 1,
        "effective_at": "2027-01-01T00:00:00Z",
        "credited_at": None,
        "expires_at": "2027-04-01T00:00:00Z",
        "reason": "Launch offer, Q1",
        "created_at": "2026-12-05T10:00:00Z",
    },
)
GRANT_IN_LIST = OpenApiExample(
    "A grant partly used", response_only=True, value={**GRANT, "remaining": "62.500000000000"}
)
GRANT_REFUSED = OpenApiExample(
    "Refused",
    response_only=True,
    status_codes=["400"],
    value={
        "amount": ["Must be greater than 0."],
        "expires_at": ["A grant must expire after it becomes effective."],
    },
)
NOT_FOUND = OpenApiExample(
    "Unknown customer",
    response_only=True,
    status_codes=["404"],
    value={"detail": "No customer with external_id 'nobody'."},
)

ADJUSTMENT_REQUEST = OpenApiExample(
    "Take back a double grant",
    request_only=True,
    value={"amount": "-40.00", "reason": "Granted twice on 1 December (PO 1234)"},
)
ADJUSTMENT = OpenApiExample(
    "Taken",
    response_only=True,
    status_codes=["201"],
    value={
        "customer_id": "acme",
        "currency": "USD",
        "amount": "-40.000000000000",
        "reason": "Granted twice on 1 December (PO 1234)",
        "created_by": OPS,
        "grant": None,
        "balance": "60.000000000000",
        "available": "59.989000000000",
    },
)
ADJUSTMENT_REFUSED = OpenApiExample(
    "More than the credits",
    response_only=True,
    status_codes=["400"],
    value={"amount": ["acme USD wallet has 60 available; 100 was asked for."]},
)

HOLD = OpenApiExample(
    "A settled hold",
    response_only=True,
    value={
        "id": "95192b08-ded8-40ac-bd0b-713dd6a4d946",
        "amount": "0.011000000000",
        "estimate": "0.011000000000",
        "status": "settled",
        "reference": "chat 42",
        "created_at": "2026-12-05T12:00:00Z",
        "expires_at": "2026-12-05T12:05:00Z",
        "closed_at": "2026-12-05T12:00:04Z",
        "settled_cost": "0.006500000000",
    },
)
HOLDS_REFUSED = OpenApiExample(
    "Unknown status",
    response_only=True,
    status_codes=["400"],
    value={"status": ['"open" is not a valid choice.']},
)

LEDGER_ENTRY = OpenApiExample(
    "A draw-down",
    response_only=True,
    value={
        "id": 311,
        "kind": "draw_down",
        "amount": "-0.006500000000",
        "grant": 12,
        "hold": None,
        "reference": "usage 2026-12-01",
        "reason": "",
        "created_by": "",
        "at": "2026-12-05T12:00:05Z",
    },
)
LEDGER_REFUSED = OpenApiExample(
    "Unknown kind",
    response_only=True,
    status_codes=["400"],
    value={"kind": ['"refund" is not a valid choice.']},
)
