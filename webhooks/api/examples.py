"""Answers and requests as the OpenAPI page shows them (tests/test_api_schema.py checks each
answer against its serializer's schema)."""

from drf_spectacular.utils import OpenApiExample

SECRET = "whsec_4f1c0b6a8e2d4b7f9a3c5e7d1b2a4c6e8f0a1b3c5d7e9f01"  # noqa: S105 (an example)

ENDPOINT_VALUE = {
    "id": 1,
    "url": "https://erp.example/hooks/tokentill",
    "description": "ERP: invoices",
    "enabled": True,
    "event_types": ["invoice.finalized", "invoice.paid", "invoice.voided"],
    "secret": SECRET,
    "created_at": "2026-11-01T09:00:00Z",
    "updated_at": "2026-11-01T09:00:00Z",
}
ENDPOINT = OpenApiExample("Endpoint", value=ENDPOINT_VALUE, response_only=True)
CREATE = OpenApiExample(
    "New endpoint",
    value={
        "url": "https://erp.example/hooks/tokentill",
        "description": "ERP: invoices",
        "event_types": ["invoice.finalized", "invoice.paid", "invoice.voided"],
    },
    request_only=True,
)
UPDATE = OpenApiExample(
    "Take every event", value={"event_types": []}, request_only=True
)  # fmt: skip
REFUSED = OpenApiExample(
    "Refused",
    value={
        "url": ["Enter a valid URL."],
        "event_types": [
            "Give a list of event types among invoice.finalized, invoice.paid, "
            "invoice.voided, credit_note.created, grant.created, grant.expired, "
            "wallet.low_balance, usage.budget_share_reached, grant.share_used; an empty list "
            "[] takes them all."
        ],
    },
    response_only=True,
    status_codes=["400"],
)
NOT_FOUND = OpenApiExample(
    "Unknown endpoint",
    value={"detail": "No webhook endpoint 7."},
    response_only=True,
    status_codes=["404"],
)

EVENT = {
    "id": "evt_3b0c5a1f9e8d4c7ba6f2e1d0",
    "type": "invoice.finalized",
    "created_at": "2026-12-02T00:05:00Z",
    "data": {
        "customer_id": "acme",
        "invoice_number": "INV-000042",
        "status": "finalized",
        "currency": "USD",
        "total": "59.00",
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
        "finalized_at": "2026-12-02T00:05:00Z",
        "paid_at": None,
        "voided_at": None,
        "stripe_id": None,
    },
}
DELIVERY_VALUE = {
    "id": 12,
    "endpoint": 1,
    "event": EVENT,
    "status": "delivered",
    "attempts": 2,
    "response_status": 200,
    "last_error": None,
    "next_attempt_at": None,
    "delivered_at": "2026-12-02T00:06:00Z",
    "created_at": "2026-12-02T00:05:00Z",
    "replay_of": None,
    "history": [
        {"at": "2026-12-02T00:05:00Z", "response_status": 500, "error": "HTTP 500",
         "next_attempt_at": "2026-12-02T00:06:00Z"},
        {"at": "2026-12-02T00:06:00Z", "response_status": 200, "error": "",
         "next_attempt_at": None},
    ],
}  # fmt: skip
DELIVERIES = OpenApiExample("Retried once", value=DELIVERY_VALUE, response_only=True)
REPLAYED = OpenApiExample(
    "Replayed",
    value={
        **DELIVERY_VALUE,
        "id": 31,
        "status": "pending",
        "attempts": 0,
        "response_status": None,
        "delivered_at": None,
        "next_attempt_at": "2026-12-03T10:00:00Z",
        "created_at": "2026-12-03T10:00:00Z",
        "replay_of": 12,
        "history": [],
    },
    response_only=True,
    status_codes=["201"],
)
REPLAY_REFUSED = OpenApiExample(
    "Endpoint disabled",
    value={"endpoint": ["The endpoint ERP: invoices is disabled: enable it to replay to it."]},
    response_only=True,
    status_codes=["400"],
)
