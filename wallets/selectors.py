"""Reads of wallets: balances and grants as the API, admin and portal show them."""

from django.db import models
from django.utils import timezone

from contracts.models import Customer

from .models import CreditGrant, Hold, Wallet


def wallet_for(*, customer: Customer, currency: str | None = None) -> Wallet | None:
    """The customer's wallet in `currency` (their billing currency), or None before any grant."""
    return Wallet.objects.filter(customer=customer, currency=currency or customer.currency).first()


def grants_live(*, wallet: Wallet, at=None):
    """Grants with credits left that have not expired by `at` (now), in draw-down order:
    highest priority, then soonest expiry (never-expiring last), then oldest."""
    at = at or timezone.now()
    return (
        CreditGrant.objects.filter(wallet=wallet, remaining__gt=0)
        .filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=at))
        .order_by("-priority", models.F("expires_at").asc(nulls_last=True), "effective_at", "id")
    )


def holds_active(*, wallet: Wallet):
    """The holds reserving the wallet's credits now, oldest first (an expired one counts
    until it is released: within a minute, or by the wallet's next hold)."""
    return Hold.objects.filter(wallet=wallet, status=Hold.Status.ACTIVE).order_by("created_at")
