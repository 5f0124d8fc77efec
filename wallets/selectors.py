"""Reads of wallets: balances and grants as the API, admin and portal show them."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from contracts.models import Customer

from .models import Alert, AlertSettings, CreditGrant, Hold, LedgerEntry, Wallet


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


def grants_live_of(*, wallet_ids: list[int], at: datetime) -> QuerySet[CreditGrant]:
    """`grants_live` of many wallets in one read, by wallet id, each wallet's in
    draw-down order."""
    return (
        CreditGrant.objects.filter(wallet_id__in=wallet_ids, remaining__gt=0)
        .filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=at))
        .order_by(
            "wallet_id", "-priority", models.F("expires_at").asc(nulls_last=True),
            "effective_at", "id",
        )
    )  # fmt: skip


def grants_pending(*, wallet: Wallet) -> QuerySet[CreditGrant]:
    """Grants made for later, not in the wallet yet, soonest first."""
    return CreditGrant.objects.filter(wallet=wallet, credited_at__isnull=True).order_by(
        "effective_at", "id"
    )


def grants_all(*, wallet: Wallet | None) -> QuerySet[CreditGrant]:
    """Every grant of the wallet (none without one), newest first: pending, live, used and
    expired alike."""
    if wallet is None:
        return CreditGrant.objects.none()
    return CreditGrant.objects.filter(wallet=wallet).order_by("-id")


class GrantStatus:
    """Where a grant stands: `pending` (granted for later, not credited yet), `live`
    (credits left, not expired), `used` (drawn to nothing) or `expired` (what was left at
    its expiry went, or goes at the next expiry run)."""

    PENDING, LIVE, USED, EXPIRED = "pending", "live", "used", "expired"
    ALL = (PENDING, LIVE, USED, EXPIRED)


@dataclass(frozen=True)
class GrantState:
    """A grant with its status at an instant and what of it expired."""

    grant: CreditGrant
    status: str
    expired: Decimal


def grants_state(*, grants: Sequence[CreditGrant], at: datetime | None = None) -> list[GrantState]:
    """Each grant with its status at `at` (now) and the credits it lost to expiry (its
    expiry entries, summed here: SQL's SUM over SQLite's text money goes through floats)."""
    at = at or timezone.now()
    expired: dict[int, Decimal] = defaultdict(Decimal)
    for grant_id, amount in LedgerEntry.objects.filter(
        grant__in=[grant.pk for grant in grants], kind=LedgerEntry.Kind.EXPIRY
    ).values_list("grant_id", "amount"):
        expired[grant_id] -= amount
    states = []
    for grant in grants:
        lost = expired[grant.pk]
        if grant.credited_at is None:
            status = GrantStatus.PENDING
        elif grant.expires_at is not None and grant.expires_at <= at and (lost or grant.remaining):
            status = GrantStatus.EXPIRED
        elif grant.remaining > 0:
            status = GrantStatus.LIVE
        else:
            status = GrantStatus.USED
        states.append(GrantState(grant=grant, status=status, expired=lost))
    return states


def holds_of(*, wallet: Wallet | None, status: str | None = None) -> QuerySet[Hold]:
    """The wallet's holds (none without one), newest first, of one status or all."""
    if wallet is None:
        return Hold.objects.none()
    holds = Hold.objects.filter(wallet=wallet)
    if status:
        holds = holds.filter(status=status)
    return holds.order_by("-created_at", "-id")


def ledger_of(*, wallet: Wallet | None, kind: str | None = None) -> QuerySet[LedgerEntry]:
    """The wallet's ledger entries (none without one), newest first, of one kind or all."""
    if wallet is None:
        return LedgerEntry.objects.none()
    entries = LedgerEntry.objects.filter(wallet=wallet)
    if kind:
        entries = entries.filter(kind=kind)
    return entries.order_by("-id")


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
