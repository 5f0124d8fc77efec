"""Prepaid credits: a wallet per customer and currency, its grants, and the ledger.

The ledger is the truth. It keeps two sums per wallet: the balance is the sum of its
money entries (grants, draw-downs, expiries, adjustments), and what is held is the sum of
its hold and release entries, negated; the available balance is the balance less what is
held. A grant's remaining amount is its grant entry plus the entries drawn from it.
`Wallet.balance`, `Wallet.held` and `CreditGrant.remaining` are caches of those sums,
changed in the same transaction as the entries that move them, under the wallet's row lock
(wallets.services).
"""

import re
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models

from common.fields import RATED_DIGITS, ExactDecimalField
from contracts.models import Customer, validate_currency
from metering.models import AppendOnlyModel
from pricing.money import money_label
from webhooks.models import Delivery, new_webhook_secret


class Wallet(models.Model):
    """A customer's prepaid credits in one currency."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="wallets")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    balance = ExactDecimalField(default=0, editable=False, **RATED_DIGITS)
    held = ExactDecimalField(
        default=0, editable=False, help_text="Reserved by active holds.", **RATED_DIGITS
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "currency"], name="wallet_per_currency")
        ]

    def __str__(self) -> str:
        return f"{self.customer.external_id} {self.currency} wallet"

    @property
    def available(self) -> Decimal:
        """What new spend may still reserve: the balance less the active holds."""
        return self.balance - self.held


class CreditGrant(models.Model):
    """Credits granted at once, or for later from `effective_at`: drawn down by priority
    (highest first), then by the soonest expiry (never-expiring last), then oldest first.

    Credits granted for later stay out of the wallet until they are effective: no ledger
    entry, nothing `remaining` and `credited_at` empty, so nothing can draw or hold them.
    They are credited (their grant entry written, the balance moved) by the first movement
    of the wallet once effective, or by beat within a minute (wallets.services).
    """

    class Source(models.TextChoices):
        PURCHASED = "purchased", "Purchased"
        PROMOTIONAL = "promotional", "Promotional"
        ALLOWANCE = "allowance", "Included allowance"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="grants")
    source = models.CharField(max_length=16, choices=Source.choices)
    amount = ExactDecimalField(**RATED_DIGITS)
    remaining = ExactDecimalField(editable=False, **RATED_DIGITS)
    priority = models.IntegerField(default=0, help_text="Higher is drawn first.")
    effective_at = models.DateTimeField(help_text="Usable from then on.")
    credited_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When its credits entered the wallet, with its grant entry: at once, or "
        "once effective for credits granted for later. Empty until then.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["wallet", "expires_at"], name="grant_wallet_expiry"),
            models.Index(
                fields=["effective_at"],
                name="grant_to_credit",
                condition=models.Q(credited_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {money_label(self.amount, self.wallet.currency)}"


class Hold(models.Model):
    """Credits reserved for a model call before it is made (an authorization).

    Active until the usage event that carries its id is rated and drawn (settled: the
    hold is released by the draw-down pass that drew the call's cost), until it is
    released, or until it expires. `amount` is what it reserves of the wallet's credits; `estimate`
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
    amount = ExactDecimalField(**RATED_DIGITS)
    estimate = ExactDecimalField(**RATED_DIGITS)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    reference = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    settled_cost = ExactDecimalField(
        null=True,
        blank=True,
        help_text="What was drawn for the call that settled it: its cost after discount beyond "
        "the allowance (null if the call could not be priced).",
        **RATED_DIGITS,
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
    amount = ExactDecimalField(**RATED_DIGITS)
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


# --- Thresholds, alerts and top-ups (wallets.alerts, wallets.topups) ----------------------

DEFAULT_SHARES = (50, 75, 90, 100)


def default_shares() -> list[int]:
    return list(DEFAULT_SHARES)


def _shares_check(value, most: int) -> None:
    if not isinstance(value, list) or not all(
        type(share) is int and 1 <= share <= most for share in value
    ):
        raise ValidationError(
            f"Give a list of whole percentages from 1 to {most}, e.g. [50, 75, 90, 100]; "
            "an empty list [] turns these alerts off."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each percentage once.")


def validate_budget_shares(value) -> None:
    """Shares of a budget: beyond 100 % too, to hear of an overrun."""
    _shares_check(value, 1000)


def validate_credit_shares(value) -> None:
    _shares_check(value, 100)


def validate_positive(value) -> None:
    if value is not None and value <= 0:
        raise ValidationError("Must be greater than 0.")


def email_addresses(text: str) -> list[str]:
    """The addresses in `text`, separated by commas, semicolons or spaces."""
    return [address for address in re.split(r"[\s,;]+", text) if address]


def validate_emails(text: str) -> None:
    for address in email_addresses(text):
        validate_email(address)


class AlertSettings(models.Model):
    """When a customer is alerted and where, and when a top-up is requested.

    Money is in the customer's billing currency: the budget is compared with the usage of
    each billing period after discount (before any allowance or credits); the balance
    thresholds watch the wallet in that currency. A customer without settings gets the
    defaults: credit-share alerts at 50, 75, 90 and 100 % of each grant, sent to the
    customer's billing email, and nothing else. The row is created the first time it is
    edited (wallets.alerts.alert_settings_update).
    """

    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="alert_settings"
    )
    budget = ExactDecimalField(
        null=True, blank=True, validators=[validate_positive], **RATED_DIGITS,
        help_text="Usage per billing period (after discount). Empty: no budget alerts.",
    )  # fmt: skip
    budget_shares = models.JSONField(
        default=default_shares, blank=True, validators=[validate_budget_shares],
        help_text="Percentages of the budget that alert, once each per period; [] for none.",
    )  # fmt: skip
    credit_shares = models.JSONField(
        default=default_shares, blank=True, validators=[validate_credit_shares],
        help_text="Percentages of each grant used that alert, once each per grant; [] for none.",
    )  # fmt: skip
    balance_below = ExactDecimalField(
        null=True, blank=True, validators=[validate_positive], **RATED_DIGITS,
        help_text="Alert once when the balance falls under this; again only after it has "
        "been back at or above it. Empty: none.",
    )  # fmt: skip
    emails = models.CharField(
        max_length=500, blank=True, validators=[validate_emails],
        help_text="Addresses separated by commas or spaces. Empty: the customer's billing email.",
    )  # fmt: skip
    webhook_url = models.URLField(
        max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])],
        help_text="Alerts are POSTed here as signed JSON. Empty: no webhook.",
    )  # fmt: skip
    webhook_secret = models.CharField(max_length=80, default=new_webhook_secret, editable=False)
    topup_below = ExactDecimalField(
        null=True, blank=True, validators=[validate_positive], **RATED_DIGITS,
        help_text="Request a top-up when the balance falls under this. Empty: no top-ups.",
    )  # fmt: skip
    topup_amount = ExactDecimalField(
        null=True, blank=True, validators=[validate_positive], **RATED_DIGITS,
        help_text="The amount of credits each top-up buys.",
    )  # fmt: skip
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"Alert settings of {self.customer.external_id}"

    def clean(self) -> None:
        if (self.topup_below is None) != (self.topup_amount is None):
            raise ValidationError(
                {"topup_amount": "Set both the top-up threshold and amount, or neither."}
            )

    def recipients(self) -> list[str]:
        return email_addresses(self.emails) or (
            [self.customer.email] if self.customer.email else []
        )


class Alert(models.Model):
    """A threshold crossed: recorded once, whatever retries or workers race.

    `key` names what the alert fires once for, and is unique per customer: "budget
    <period start> <share>%", "credits grant <id> <share>%" or "balance wallet <id>
    #<episode>". `threshold` is the budget, the grant's amount or the balance threshold;
    `amount` is the usage, the credits used or the balance when it fired. A balance
    alert's episode ends (`cleared_at`) when the balance is back at or above the
    threshold; the next fall under it is a new episode and alerts again.
    """

    class Kind(models.TextChoices):
        BUDGET = "budget", "Budget share used"
        CREDITS = "credits", "Credits share used"
        BALANCE = "balance", "Balance below"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=120)
    share = models.PositiveSmallIntegerField(null=True, blank=True)
    threshold = ExactDecimalField(**RATED_DIGITS)
    amount = ExactDecimalField(**RATED_DIGITS)
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts"
    )
    grant = models.ForeignKey(
        CreditGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts"
    )
    message = models.CharField(max_length=300)
    fired_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "key"], name="alert_once")]
        ordering = ["-fired_at", "-id"]

    def __str__(self) -> str:
        return self.message


class AlertDelivery(Delivery):
    """One alert sent over one channel: tried until delivered, with a growing delay,
    every attempt in `history` (wallets.alerts.alert_delivery_send, webhooks.attempts)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=500, help_text="The addresses or the URL.")
    payload = models.JSONField()

    class Meta:
        verbose_name_plural = "alert deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.target}: {self.get_status_display()}"


class TopUpRequest(models.Model):
    """Credits to buy because the balance fell under the customer's top-up threshold.

    At most one is open (requested) per wallet, so a run of draw-downs under the threshold
    asks once. Paying it grants the credits, once (wallets.topups.topup_mark_paid).
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="topups")
    amount = ExactDecimalField(**RATED_DIGITS)
    balance = ExactDecimalField(help_text="The balance when it was requested.", **RATED_DIGITS)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    reference = models.CharField(
        max_length=200, blank=True, help_text="The payment's reference, e.g. Stripe's id."
    )
    grant = models.OneToOneField(
        CreditGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="topup"
    )

    class Meta:
        verbose_name = "top-up request"
        constraints = [
            models.UniqueConstraint(
                fields=["wallet"],
                condition=models.Q(status="requested"),
                name="one_open_topup_per_wallet",
            )
        ]

    def __str__(self) -> str:
        amount = money_label(self.amount, self.wallet.currency)
        return f"Top-up of {amount}: {self.get_status_display()}"
