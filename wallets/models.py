"""Prepaid credits: a wallet per customer and currency, its grants, and the ledger.

The ledger is the truth. It keeps two sums per wallet: the balance is the sum of its
money entries (grants, draw-downs, expiries, adjustments), and what is held is the sum of
its hold and release entries, negated; the available balance is the balance less what is
held. A grant's remaining amount is its grant entry plus the entries drawn from it.
`Wallet.balance`, `Wallet.held` and `CreditGrant.remaining` are caches of those sums,
changed in the same transaction as the entries that move them, under the wallet's row lock
(wallets.services).
"""

import uuid

from django.db import models

from contracts.fields import ExactDecimalField
from contracts.models import Customer, validate_currency
from metering.models import AppendOnlyModel

MONEY = {"max_digits": 32, "decimal_places": 12}


class Wallet(models.Model):
    """A customer's prepaid credits in one currency."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="wallets")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    balance = ExactDecimalField(default=0, editable=False, **MONEY)
    held = ExactDecimalField(
        default=0, editable=False, help_text="Reserved by active holds.", **MONEY
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "currency"], name="wallet_per_currency")
        ]

    def __str__(self) -> str:
        return f"{self.customer.external_id} {self.currency} wallet"

    @property
    def available(self):
        """What new spend may still reserve: the balance less the active holds."""
        return self.balance - self.held


class CreditGrant(models.Model):
    """Credits that arrived at once: drawn down by priority (highest first), then by the
    soonest expiry (never-expiring last), then oldest first."""

    class Source(models.TextChoices):
        PURCHASED = "purchased", "Purchased"
        PROMOTIONAL = "promotional", "Promotional"
        ALLOWANCE = "allowance", "Included allowance"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="grants")
    source = models.CharField(max_length=16, choices=Source.choices)
    amount = ExactDecimalField(**MONEY)
    remaining = ExactDecimalField(editable=False, **MONEY)
    priority = models.IntegerField(default=0, help_text="Higher is drawn first.")
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["wallet", "expires_at"], name="grant_wallet_expiry")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.amount} {self.wallet.currency}"


class Hold(models.Model):
    """Credits reserved for a model call before it is made (an authorization).

    Active until the usage event that carries its id is rated (settled: the hold is
    released and the real cost drawn, in the rating transaction), until it is released,
    or until it expires. `amount` is what it reserves of the wallet's credits; `estimate`
    is the worst-case price of the call, which may be more when the contract lets usage
    past the credits be billed in arrears.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SETTLED = "settled", "Settled"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds")
    amount = ExactDecimalField(**MONEY)
    estimate = ExactDecimalField(**MONEY)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    reference = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    settled_cost = ExactDecimalField(
        null=True, blank=True, help_text="The rated cost of the call that settled it.", **MONEY
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["wallet", "expires_at"],
                name="hold_active_expiry",
                condition=models.Q(status="active"),
            )
        ]

    def __str__(self) -> str:
        return f"hold {self.amount} ({self.get_status_display().lower()})"


class LedgerEntry(AppendOnlyModel):
    """One movement of a wallet's money, never changed: positive in, negative out.

    Money entries move `grant` (each moves exactly one) and the balance; hold entries
    (negative) and release entries (positive) move `hold` and what is held, never a grant.
    `reference` names what caused an entry, e.g. the usage a draw-down pays for.
    """

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        DRAW_DOWN = "draw_down", "Draw-down"
        EXPIRY = "expiry", "Expiry"
        ADJUSTMENT = "adjustment", "Adjustment"
        HOLD = "hold", "Hold"
        RELEASE = "release", "Release"

    HOLD_KINDS = (Kind.HOLD, Kind.RELEASE)

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    grant = models.ForeignKey(
        CreditGrant, on_delete=models.PROTECT, related_name="entries", null=True, blank=True
    )
    hold = models.ForeignKey(
        Hold, on_delete=models.PROTECT, related_name="entries", null=True, blank=True
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = ExactDecimalField(**MONEY)
    reference = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(grant__isnull=False, hold__isnull=True)
                | models.Q(grant__isnull=True, hold__isnull=False),
                name="ledger_entry_moves_a_grant_or_a_hold",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"
