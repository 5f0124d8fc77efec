"""Moving prepaid credits: grants in, draw-downs, adjustments and expiries out.

Every write takes the wallet's row lock first (after the customer's, where both are
taken: DESIGN.md's order), writes its ledger entries, and moves the cached balance and
the grants' remaining amounts by the same sums in the same transaction, so the balance
always equals the sum of the entries. Two draw-downs racing for the last credits queue
on the lock: the second sees what the first left.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from contracts.models import Customer

from .alerts import alerts_check_wallet
from .models import CreditGrant, LedgerEntry, Wallet
from .selectors import grants_live

_ZERO = Decimal(0)
_PLACES = 12


class InsufficientCredits(Exception):
    """A draw-down that must be covered in full and cannot be: nothing was drawn."""


@dataclass(frozen=True)
class DrawDown:
    """What a draw-down took (`drawn`) and what it could not cover (`short`)."""

    drawn: Decimal
    short: Decimal


def wallet_get_or_create(*, customer: Customer, currency: str | None = None) -> Wallet:
    """The customer's wallet in `currency` (their billing currency), created on first use."""
    wallet, _ = Wallet.objects.get_or_create(
        customer=customer, currency=currency or customer.currency
    )
    return wallet


def credit_grant(
    *,
    customer: Customer,
    amount,
    source: str,
    priority: int = 0,
    expires_at=None,
    reason: str = "",
    created_by: str = "",
    currency: str | None = None,
) -> CreditGrant:
    """Add credits to the customer's wallet, usable at once; they expire at `expires_at`."""
    amount = _money(amount, "amount")
    now = timezone.now()
    errors = {}
    if source not in CreditGrant.Source.values:
        errors["source"] = f"Use one of {', '.join(CreditGrant.Source.values)}."
    if expires_at is not None and expires_at <= now:
        errors["expires_at"] = "A grant must expire in the future."
    if source == CreditGrant.Source.ADJUSTMENT and not reason.strip():
        errors["reason"] = "A manual adjustment needs a reason."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer.pk)
        wallet = _wallet_lock(wallet_get_or_create(customer=customer, currency=currency))
        grant = CreditGrant.objects.create(
            wallet=wallet,
            source=source,
            amount=amount,
            remaining=amount,
            priority=priority,
            effective_at=now,
            expires_at=expires_at,
            reason=reason,
            created_by=created_by,
        )
        _entry(grant, LedgerEntry.Kind.GRANT, amount, now, reason=reason, created_by=created_by)
        _add(wallet, "balance", amount)
        alerts_check_wallet(wallet=wallet)
    return grant


def wallet_draw_down(
    *,
    wallet: Wallet,
    amount,
    reference: str = "",
    partial: bool = True,
    kind: str = LedgerEntry.Kind.DRAW_DOWN,
    reason: str = "",
    created_by: str = "",
) -> DrawDown:
    """Take `amount` from the wallet's live grants: highest priority first, then the one
    that expires soonest (never-expiring last), then the oldest.

    With `partial` (usage billed in arrears past the credits), what the grants cannot cover
    is returned as `short`; without it, a draw-down the credits cannot cover in full takes
    nothing and raises InsufficientCredits.
    """
    amount = _money(amount, "amount")
    now = timezone.now()
    with transaction.atomic():
        wallet = _wallet_lock(wallet)
        grants = list(grants_live(wallet=wallet, at=now))
        available = sum((grant.remaining for grant in grants), _ZERO)
        if not partial and available < amount:
            raise InsufficientCredits(
                f"{wallet} has {_plain(available)} available; {_plain(amount)} was asked for."
            )
        left = amount
        for grant in grants:
            if not left:
                break
            take = min(grant.remaining, left)
            by = {"reference": reference, "reason": reason, "created_by": created_by}
            _entry(grant, kind, -take, now, **by)
            _add(grant, "remaining", -take)
            left -= take
        _add(wallet, "balance", -(amount - left))
        alerts_check_wallet(wallet=wallet)
    return DrawDown(drawn=amount - left, short=left)


def wallet_adjust(
    *, wallet: Wallet, amount, reason: str, created_by: str
) -> DrawDown | CreditGrant:
    """A manual correction with a required reason: a positive amount is a grant of its own
    (source: manual adjustment); a negative one is taken from the grants in draw-down order
    and must be covered in full."""
    if not reason.strip():
        raise ValidationError({"reason": "A manual adjustment needs a reason."})
    value = _decimal(amount, "amount")
    if value > 0:
        return credit_grant(
            customer=wallet.customer,
            currency=wallet.currency,
            amount=value,
            source=CreditGrant.Source.ADJUSTMENT,
            reason=reason,
            created_by=created_by,
        )
    return wallet_draw_down(
        wallet=wallet,
        amount=-value,
        partial=False,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        reason=reason,
        created_by=created_by,
    )


def grants_expire(*, now=None) -> int:
    """Expire what is left of every grant past its expiry, with a ledger entry each.

    Safe to run twice or in two workers at once: each grant is expired under its wallet's
    lock, and one with nothing left is skipped.
    """
    now = now or timezone.now()
    expired = 0
    due = CreditGrant.objects.filter(expires_at__lte=now, remaining__gt=0)
    for grant_id, wallet_id in due.values_list("pk", "wallet_id").order_by("wallet_id", "pk"):
        with transaction.atomic():
            wallet = _wallet_lock(Wallet(pk=wallet_id))
            grant = CreditGrant.objects.get(pk=grant_id)
            if grant.remaining <= 0:
                continue  # expired by another worker meanwhile
            _entry(grant, LedgerEntry.Kind.EXPIRY, -grant.remaining, now, reason="expired")
            _add(wallet, "balance", -grant.remaining)
            _add(grant, "remaining", -grant.remaining)
            alerts_check_wallet(wallet=wallet)
            expired += 1
    return expired


def grants_warn_expiring(*, now=None) -> int:
    """Email each customer once per grant that expires within TOKENTILL_EXPIRY_WARNING_DAYS
    with credits left. The grant is marked in the transaction that sends, under its row
    lock, so two workers never both send; a send that fails leaves it for the next run."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.TOKENTILL_EXPIRY_WARNING_DAYS)
    due = CreditGrant.objects.filter(
        expiry_warned_at__isnull=True, expires_at__gt=now, expires_at__lte=horizon
    ).filter(remaining__gt=0)
    warned = 0
    for grant_id in due.values_list("pk", flat=True).order_by("pk"):
        with transaction.atomic():
            grant = (
                CreditGrant.objects.select_for_update(skip_locked=True)
                .select_related("wallet__customer")
                .filter(pk=grant_id, expiry_warned_at__isnull=True)
                .first()
            )
            if grant is None:
                continue  # warned, or being warned, by another worker
            customer = grant.wallet.customer
            if customer.email:
                send_mail(
                    subject=f"{_plain(grant.remaining)} {grant.wallet.currency} of credits "
                    f"expire on {grant.expires_at:%Y-%m-%d}",
                    message=(
                        f"{customer.name}: {_plain(grant.remaining)} {grant.wallet.currency} "
                        f"of your {grant.get_source_display().lower()} credits expire at "
                        f"{grant.expires_at:%Y-%m-%d %H:%M} UTC. Usage until then draws on "
                        "them first among credits of the same priority."
                    ),
                    from_email=None,
                    recipient_list=[customer.email],
                )
            CreditGrant.objects.filter(pk=grant.pk).update(expiry_warned_at=now)
            warned += 1
    return warned


# --- helpers -------------------------------------------------------------------------------


def _wallet_lock(wallet: Wallet) -> Wallet:
    return Wallet.objects.select_for_update().select_related("customer").get(pk=wallet.pk)


def _entry(grant: CreditGrant, kind: str, amount: Decimal, at, **fields) -> LedgerEntry:
    return LedgerEntry.objects.create(
        wallet_id=grant.wallet_id, grant=grant, kind=kind, amount=amount, created_at=at, **fields
    )


def _add(row: models.Model, field: str, delta: Decimal) -> None:
    """`row.field += delta` in the database, under the wallet lock the caller holds.

    PostgreSQL adds in SQL (exact numeric); SQLite keeps these columns as text, so the sum
    is done here, in the transaction that holds SQLite's only write lock.
    """
    if connection.vendor == "postgresql":
        type(row).objects.filter(pk=row.pk).update(**{field: F(field) + delta})
        row.refresh_from_db(fields=[field])
        return
    fresh = type(row).objects.filter(pk=row.pk).values_list(field, flat=True).get()
    setattr(row, field, fresh + delta)
    type(row).objects.filter(pk=row.pk).update(**{field: fresh + delta})


def _plain(value: Decimal) -> str:
    """3.5, not 3.500000000000 (PostgreSQL) or 3.5E+0."""
    return format(value.normalize(), "f")


def _decimal(value, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValidationError({what: "Give the amount as text or a Decimal, never a float."})
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError({what: f"'{value}' is not a number."}) from None
    if not number.is_finite() or number.normalize().as_tuple().exponent < -_PLACES:
        raise ValidationError({what: f"Use a finite amount with at most {_PLACES} places."})
    return number


def _money(value, what: str) -> Decimal:
    number = _decimal(value, what)
    if number <= 0:
        raise ValidationError({what: "Must be greater than 0."})
    return number
