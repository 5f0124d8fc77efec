"""Prepaid credits: a wallet per customer and currency, its grants, and the ledger.

The ledger is the truth: a wallet's balance is the sum of its entries, and a grant's
remaining amount is its grant entry plus the entries drawn from it. `Wallet.balance` and
`CreditGrant.remaining` are caches of those sums, changed in the same transaction as the
entries that move them, under the wallet's row lock (wallets.services).
"""

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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "currency"], name="wallet_per_currency")
        ]

    def __str__(self) -> str:
        return f"{self.customer.external_id} {self.currency} wallet"


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


class LedgerEntry(AppendOnlyModel):
    """One movement of a wallet's money, never changed: positive in, negative out.

    `grant` is the grant it moves (every entry so far moves exactly one); `reference`
    names what caused it, e.g. the rated event a draw-down pays for.
    """

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        DRAW_DOWN = "draw_down", "Draw-down"
        EXPIRY = "expiry", "Expiry"
        ADJUSTMENT = "adjustment", "Adjustment"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    grant = models.ForeignKey(CreditGrant, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = ExactDecimalField(**MONEY)
    reference = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"
