"""The billing webhook events of wallets: grants made and expired, and the alerts
(a low balance, a share of a budget or of a grant reached). Each is emitted by the
service that makes the change, in its transaction (webhooks.services.event_emit).

Credits are exact: money is text with 12 decimal places, as the wallet API answers it.
"""

from decimal import Decimal
from typing import Any

from pricing.money import exact_text
from webhooks.events import instant_text
from webhooks.services import event_emit

from .models import Alert, CreditGrant

#: The event type of each kind of alert.
ALERT_EVENTS = {
    Alert.Kind.BALANCE: "wallet.low_balance",
    Alert.Kind.BUDGET: "usage.budget_share_reached",
    Alert.Kind.CREDITS: "grant.share_used",
}


def alert_data(alert: Alert) -> dict[str, Any]:
    """What an alert's webhook (the customer's) and event (the operator's) say of it."""
    return {
        "alert_id": alert.pk,
        "customer_id": alert.customer.external_id,
        "kind": alert.kind,
        "share": alert.share,
        "threshold": exact_text(alert.threshold),
        "amount": exact_text(alert.amount),
        "currency": alert.currency,
        "period_start": instant_text(alert.period_start),
        "grant_id": alert.grant_id,
        "fired_at": instant_text(alert.fired_at),
        "message": alert.message,
    }


def alert_event_emit(*, alert: Alert) -> None:
    event_emit(event_type=ALERT_EVENTS[Alert.Kind(alert.kind)], data=alert_data(alert))


def grant_created_emit(*, grant: CreditGrant) -> None:
    event_emit(event_type="grant.created", data=_grant_data(grant))


def grant_expired_emit(*, grant: CreditGrant, expired: Decimal) -> None:
    """`expired`: what was left of the grant and expired."""
    event_emit(
        event_type="grant.expired", data={**_grant_data(grant), "expired": exact_text(expired)}
    )


def _grant_data(grant: CreditGrant) -> dict[str, Any]:
    wallet = grant.wallet
    return {
        "customer_id": wallet.customer.external_id,
        "grant_id": grant.pk,
        "source": grant.source,
        "amount": exact_text(grant.amount),
        "currency": wallet.currency,
        "priority": grant.priority,
        "effective_at": instant_text(grant.effective_at),
        "expires_at": instant_text(grant.expires_at),
        "reason": grant.reason,
    }
