"""Answers as the OpenAPI page shows them (tests/test_api_schema.py checks each against its
serializer's schema): acme on the Standard card, November 2026."""

from drf_spectacular.utils import OpenApiExample

NOVEMBER = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
TOKENS = {
    "input_tokens": 250000,
    "output_tokens": 125000,
    "cached_input_tokens": 500000,
    "cache_creation_input_tokens": 0,
    "reasoning_tokens": 0,
}
ZERO = "0.000000000000"

USAGE = OpenApiExample(
    "Usage",
    response_only=True,
    value={
        "customer_id": "acme",
        "currency": "USD",
        "period": NOVEMBER,
        "usage": "2.500000000000",
        "discount": ZERO,
        "allowance": {"included": "10.000000000000", "used": "2.500000000000",
                      "remaining": "7.500000000000"},
        "fixed_fees": "30.000000000000",
        "minimum_true_up": ZERO,
        "total": "30.000000000000",
        "terms": [{**NOVEMBER, "terms": 1, "rate_card": "Standard"}],
        "by_price": [
            {"name": "gpt-4o", "rate_card": "Standard", "version": 1, "kind": "per_event",
             "terms": 1, "events": 250, "quantity": ZERO, "amount": "2.500000000000",
             "tokens": TOKENS},
        ],
        "by_model": [
            {"name": "gpt-4o", "events": 250, "quantity": ZERO, "amount": "2.500000000000",
             "tokens": TOKENS},
            {"name": "gpt-4o-mini", "events": 250, "quantity": ZERO, "amount": ZERO,
             "tokens": TOKENS},
        ],
        "by_feature": [
            {"name": "chat", "events": 500, "quantity": ZERO, "amount": "2.500000000000",
             "tokens": {name: 2 * count for name, count in TOKENS.items()}},
        ],
        "unpriced": [
            {"name": "gpt-4o-mini", "feature": "chat",
             "reason": "no price of Standard v1 matches 'gpt-4o-mini'", "events": 250,
             "quantity": ZERO, "amount": ZERO, "tokens": TOKENS},
        ],
        "failed": [],
        "pending_events": 0,
    },
)  # fmt: skip

RERATE_LINES = [
    {
        "line": "gpt-4o · gpt-4o",
        "changed": True,
        "now": {"events": 1, "quantity": ZERO, "amount": "0.010000000000",
                "source": "Standard v1, terms 1"},
        "after": {"events": 1, "quantity": ZERO, "amount": "0.011000000000",
                  "source": "Standard v2, terms 1"},
    }
]  # fmt: skip
RERATE = {
    "period": NOVEMBER,
    "events": 1,
    "total": {"now": "0.010000000000", "after": "0.011000000000"},
    "applied": False,
    "lines": RERATE_LINES,
}
RERATE_PREVIEW = OpenApiExample("A new price", response_only=True, value=RERATE)
RERATE_APPLIED = OpenApiExample(
    "Queued", response_only=True, status_codes=["202"], value={**RERATE, "applied": True}
)

CLOSED_AT = "2026-12-02T01:00:00Z"
INVOICE = {
    "number": "INV-000001",
    "customer_id": "acme",
    "currency": "USD",
    "status": "finalized",
    "period": NOVEMBER,
    "total": "45.00",
    "credited": "12.50",
    "amount_due": "32.50",
    "created_at": CLOSED_AT,
    "finalized_at": CLOSED_AT,
    "due_at": "2027-01-01T01:00:00Z",
    "paid_at": None,
    "voided_at": None,
    "stripe_id": "in_1QdWxY2eZvKYlo2C",
    "stripe_status": "open",
    "stripe_hosted_url": "https://invoice.stripe.com/i/acct_1Nv0FGQ9RKHgCVdK/live_YWNjdF8x",
}
INVOICE_LINES = [
    {"position": 1, "kind": "fixed_fee", "description": "Monthly fee, 2026-11-01 to 2026-11-30",
     "period": NOVEMBER, "quantity": "1.000000000000", "unit_price": "30.000000000000",
     "exact_amount": "30.000000000000", "amount": "30.00", "price": None, "terms": 1,
     "event_count": 0, "first_event_at": None, "last_event_at": None, "details": []},
    {"position": 2, "kind": "usage", "description": "GPT-4o",
     "period": NOVEMBER, "quantity": "2.000000000000", "unit_price": "7.502500000000",
     "exact_amount": "15.005000000000", "amount": "15.01",
     "price": {"name": "gpt-4o", "rate_card": "Standard", "version": 1}, "terms": 1,
     "event_count": 2, "first_event_at": "2026-11-05T10:00:00Z",
     "last_event_at": "2026-11-05T11:00:00Z",
     "details": [
        {"metric": "input_tokens", "label": "Input tokens", "quantity": "2000000",
         "rate": "2.50", "per": "1M tokens"},
        {"metric": "output_tokens", "label": "Output tokens", "quantity": "1000000",
         "rate": "10.00", "per": "1M tokens"},
        {"metric": "cached_input_tokens", "label": "Cached input tokens", "quantity": "4000",
         "rate": "1.25", "per": "1M tokens"},
     ]},  # 2M x 2.50/1M + 1M x 10.00/1M + 4,000 x 1.25/1M = 5 + 10 + 0.005 = 15.005
    {"position": 3, "kind": "credits",
     "description": "Prepaid credits applied, 2026-11-01 to 2026-11-30",
     "period": NOVEMBER, "quantity": "1.000000000000", "unit_price": "-0.010000000000",
     "exact_amount": "-0.010000000000", "amount": "-0.01", "price": None, "terms": None,
     "event_count": 0, "first_event_at": None, "last_event_at": None, "details": []},
]  # fmt: skip
CREDIT_NOTE = {
    "number": "CN-000001",
    "invoice": "INV-000001",
    "reason": "goodwill",
    "memo": "Outage on 3 November",
    "destination": "wallet",
    "exact_amount": "12.500000000000",
    "amount": "12.50",
    "created_by": "API key ops (tt_ab12cd34_…)",
    "created_at": "2026-12-05T09:00:00Z",
    "stripe_id": None,
}

INVOICE_IN_LIST = OpenApiExample("An invoice", response_only=True, value=INVOICE)
INVOICE_DETAIL = OpenApiExample(
    "An invoice",
    response_only=True,
    value={**INVOICE, "lines": INVOICE_LINES, "credit_notes": [CREDIT_NOTE]},
)
INVOICE_PREVIEW = OpenApiExample(
    "A preview",
    response_only=True,
    value={
        **INVOICE,
        "number": None,
        "status": "preview",
        "total": "45.00",
        "credited": "0.00",
        "amount_due": "45.00",
        "created_at": "2026-11-20T08:30:00Z",
        "finalized_at": None,
        "due_at": None,
        "stripe_id": None,
        "stripe_status": None,
        "stripe_hosted_url": None,
        "lines": INVOICE_LINES,
        "credit_notes": [],
    },
)
CREDIT_NOTE_ISSUED = OpenApiExample(
    "Goodwill", response_only=True, status_codes=["201"], value=CREDIT_NOTE
)
LINE_EVENT = OpenApiExample(
    "An event",
    response_only=True,
    value={
        "event_id": "req_8f2c",
        "timestamp": "2026-11-05T10:00:00Z",
        "model": "gpt-4o",
        "feature": "support-bot",
        "metrics": {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 1000},
        "amount": "0.007750000000",
        "quantity": None,
        "rated_at": "2026-11-05T10:00:01.204511Z",
    },
)

HOLD = {
    "id": "95192b08-ded8-40ac-bd0b-713dd6a4d946",
    "amount": "0.011000000000",
    "estimate": "0.011000000000",
    "status": "active",
    "created_at": "2026-11-15T12:00:00Z",
    "expires_at": "2026-11-15T12:05:00Z",
    "closed_at": None,
    "settled_cost": None,
}
AUTHORIZATION_ALLOWED = OpenApiExample(
    "Allowed",
    response_only=True,
    value={
        "allowed": True,
        "reason": None,
        "message": "",
        "customer_id": "acme",
        "currency": "USD",
        "tokens": {"input_tokens": 1200, "output_tokens": 800},
        "estimate": "0.011000000000",
        "allowance": ZERO,
        "overage": ZERO,
        "hold": HOLD,
        "available": "99.989000000000",
    },
)
AUTHORIZATION_REFUSED = OpenApiExample(
    "Refused",
    response_only=True,
    value={
        "allowed": False,
        "reason": "insufficient_credits",
        "message": "acme USD wallet has 0.005 available; 0.011 was asked for.",
        "customer_id": "acme",
        "currency": "USD",
        "tokens": {"input_tokens": 1200, "output_tokens": 800},
        "estimate": "0.011000000000",
        "allowance": ZERO,
        "overage": ZERO,
        "hold": None,
        "available": None,
    },
)
HOLD_SETTLED = OpenApiExample(
    "Settled",
    response_only=True,
    value={**HOLD, "status": "settled", "closed_at": "2026-11-15T12:00:04Z",
           "settled_cost": "0.006500000000"},
)  # fmt: skip

# A correction of gpt-4o's output price from November 27 (10.00 -> 5.00 per 1M): acme's
# November (invoiced as INV-000001, unpaid) and December (open).
DECEMBER = {"start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
CORRECTION = {
    "id": None,
    "rate_card": "Standard",
    "price": "gpt-4o",
    "effective_from": "2026-11-27T00:00:00Z",
    "rates": {"rate_out": "5.00"},
    "formula": "",
    "reason": "Output is 5.00 per 1M since the price change of November 27",
    "created_by": "API key billing-ops (tt_k3x9a0qz_…)",
    "created_at": None,
    "versions": [{"number": 2, "effective_from": "2026-11-27T00:00:00Z", "copies": 1}],
}
CORRECTION_REQUEST = OpenApiExample(
    "Output at 5.00 from November 27",
    request_only=True,
    value={
        "effective_from": "2026-11-27T00:00:00Z",
        "price": "gpt-4o",
        "rates": {"rate_out": "5.00"},
        "reason": "Output is 5.00 per 1M since the price change of November 27",
        "apply": False,
    },
)


def _side(events: int, amount: str, source: str) -> dict:
    return {"events": events, "quantity": ZERO, "amount": amount, "source": source}


CORRECTION_PREVIEW = OpenApiExample(
    "The diff",
    response_only=True,
    status_codes=["200"],
    value={
        "applied": False,
        "correction": CORRECTION,
        "customers": [
            {
                "customer_id": "acme",
                "periods": [
                    {
                        "period": NOVEMBER,
                        "status": "closed",
                        "events": 3,
                        "total": {"now": "60.000000000000", "after": "50.000000000000"},
                        "lines": [
                            {"line": "gpt-4o · gpt-4o", "changed": True,
                             "now": _side(3, "30.000000000000", "Standard v1, terms 1"),
                             "after": _side(3, "20.000000000000",
                                            "Standard v1, terms 1; Standard v2, terms 1")},
                        ],
                        "closed": {
                            "invoice": "INV-000001",
                            "charges": {"billed": "60.000000000000",
                                        "after": "50.000000000000"},
                            "credits": {"billed": ZERO, "after": ZERO},
                            "description": "Correction of invoice INV-000001, "
                            "2026-11-01 to 2026-11-30: usage repriced",
                            "credit_note": {"invoice": "INV-000001", "amount": "10.00",
                                            "destination": "none"},
                            "next_invoice": None,
                            "paid_by_credits": False,
                        },
                    },
                    {
                        "period": DECEMBER,
                        "status": "open",
                        "events": 1,
                        "total": {"now": "40.000000000000", "after": "35.000000000000"},
                        "lines": [
                            {"line": "gpt-4o · gpt-4o", "changed": True,
                             "now": _side(1, "10.000000000000", "Standard v1, terms 1"),
                             "after": _side(1, "5.000000000000", "Standard v2, terms 1")},
                        ],
                        "closed": None,
                    },
                ],
            }
        ],
    },
)  # fmt: skip
CORRECTION_APPLIED = OpenApiExample(
    "Applied",
    response_only=True,
    status_codes=["201"],
    value={
        "applied": True,
        "correction": {**CORRECTION, "id": 1, "created_at": "2026-12-04T12:00:00Z"},
        "queued": [
            {"customer_id": "acme", "period": NOVEMBER, "events": 3, "invoice": "INV-000001"},
            {"customer_id": "acme", "period": DECEMBER, "events": 1, "invoice": None},
        ],
        "events_queued": 4,
    },
)  # fmt: skip

# acme's periods on 20 December 2026: November closed as INV-000001 (above), December open.
PERIODS = OpenApiExample(
    "November closed, December open",
    response_only=True,
    value={
        "customer_id": "acme",
        "currency": "USD",
        "grace_hours": 24,
        "periods": [
            {"period": DECEMBER, "contract": 1, "status": "open",
             "due_at": "2027-01-02T00:00:00Z", "closed": None},
            {"period": NOVEMBER, "contract": 1, "status": "closed",
             "due_at": "2026-12-02T00:00:00Z",
             "closed": {"invoice": "INV-000001", "closed_at": CLOSED_AT, "charges": "45.01",
                        "credits": "0.01", "events": 2, "billed_until": CLOSED_AT}},
        ],
    },
)  # fmt: skip
PERIODS_NOT_FOUND = OpenApiExample(
    "Unknown customer",
    response_only=True,
    status_codes=["404"],
    value={"detail": "No customer with external_id 'nobody'."},
)
CLOSE_REQUEST = OpenApiExample("One customer", request_only=True, value={"customer": "acme"})
CLOSED = OpenApiExample(
    "November closed",
    response_only=True,
    value={
        "customer_id": "acme",
        "invoices": [
            {
                **INVOICE,
                "credited": "0.00",
                "amount_due": "45.00",
                "stripe_id": None,
                "stripe_status": None,
                "stripe_hosted_url": None,
            }
        ],
        "periods": 1,
        "corrections": 0,
    },
)
CLOSE_REFUSED = OpenApiExample(
    "A misspelt field",
    response_only=True,
    status_codes=["400"],
    value={"customers": ["Unknown field."]},
)
