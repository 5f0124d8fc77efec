"""The events billing webhooks tell of, and the JSON each delivery POSTs.

An event is written by the change that causes it, in that change's transaction
(`webhooks.services.event_emit`), with an id of its own (`evt_…`): a receiver that gets an
event twice (a retry whose answer was lost, a replay) tells by the id that it has it
already. Each type's `data` is built by the app that emits it (billing, wallets); its
money is text, never a JSON number.
"""

import secrets
from datetime import UTC, datetime
from typing import Any

#: Every event type, with what it tells; an endpoint takes all of them or those it names.
EVENT_TYPES: dict[str, str] = {
    "invoice.finalized": "A period closed into a finalized invoice (a total of 0 is paid at "
    "once: invoice.paid follows).",
    "invoice.paid": "An invoice was paid (in Stripe, or at once for a total of 0).",
    "invoice.voided": "An invoice was voided (here with a credit note, or in Stripe).",
    "credit_note.created": "A credit note was issued on an invoice: goodwill, a void, or "
    "usage re-rated lower after its period was billed.",
    "grant.created": "Credits were granted to a wallet: bought, promotional, an allowance, "
    "a refund or a manual adjustment.",
    "grant.expired": "What was left of a grant expired.",
    "wallet.low_balance": "A wallet's balance fell under the customer's balance_below "
    "(once per fall).",
    "usage.budget_share_reached": "A period's usage reached a share of the customer's "
    "budget (once per share and period).",
    "grant.share_used": "Usage used a share of a grant (once per share and grant).",
}

EVENT_TYPE_NAMES = list(EVENT_TYPES)


def new_event_id() -> str:
    """`evt_` and 24 random hex digits (96 bits: never the same twice)."""
    return f"evt_{secrets.token_hex(12)}"


def instant_text(moment: datetime | None) -> str | None:
    """An instant as webhooks write it: ISO 8601 in UTC with a Z, or None."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_body(
    *, event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """What a delivery POSTs (signed) about an event, the same at every attempt and replay."""
    body: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "created_at": instant_text(created_at),
        "data": data,
    }
    return body
