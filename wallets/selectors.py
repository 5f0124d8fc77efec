"""Reads of wallets: balances and grants as the API, admin and portal show them."""

from collections.abc import Iterable
from datetime import datetime

from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from contracts.models import Customer

from .models import Alert, AlertSettings, CreditGrant, Hold, Wallet


def wallet_for(*, customer: Customer, currency: str | None = None) -> Wallet | None:
    """The customer's wallet in `currency` (their billing currency), or None before any grant."""
    return Wallet.objects.filter(customer=customer, currency=currency or customer.currency).first()


def grants_live(*, wallet: Wallet, at: datetime | None = None) -> QuerySet[CreditGrant]:
    """Grants with credits left that have not expired by `at` (now), in draw-down order:
    highest priority, then soonest expiry (never-expiring last), then oldest."""
    at = at or timezone.now()
    return (
        CreditGrant.objects.filter(wallet=wallet, remaining__gt=0)
        .filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=at))
        .order_by("-priority", models.F("expires_at").asc(nulls_last=True), "effective_at", "id")
    )


def holds_active(*, wallet: Wallet) -> QuerySet[Hold]:
    """The holds reserving the wallet's credits now, oldest first (an expired one counts
    until it is released: within a minute, or by the wallet's next hold)."""
    return Hold.objects.filter(wallet=wallet, status=Hold.Status.ACTIVE).order_by("created_at")


def customers_with_budget(*, customer_ids: Iterable[int]) -> set[int]:
    """Which of these customers have a usage budget to be alerted about."""
    return set(
        AlertSettings.objects.filter(
            customer_id__in=customer_ids, budget__isnull=False
        ).values_list("customer_id", flat=True)
    )


def alert_settings_for(*, customer: Customer) -> AlertSettings:
    """The customer's alert settings, or the defaults (unsaved) when they have none."""
    return AlertSettings.objects.filter(customer=customer).first() or AlertSettings(
        customer=customer
    )


def alerts_recent(
    *, customer: Customer, kind: str | None = None, limit: int = 100
) -> QuerySet[Alert]:
    """The customer's latest alerts, newest first, each with its deliveries."""
    alerts = Alert.objects.filter(customer=customer)
    if kind:
        alerts = alerts.filter(kind=kind)
    return alerts.order_by("-fired_at", "-id").prefetch_related("deliveries")[:limit]
