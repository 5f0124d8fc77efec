"""Rated usage: how each event was rated, rolled up per customer, period, price and terms."""

from django.db import models

from contracts.fields import ExactDecimalField
from contracts.models import ContractTerms, Customer, Price
from metering.models import UsageEvent

RATED_DIGITS = {"max_digits": 32, "decimal_places": 12}
#: The token metrics a rollup sums, beside its money.
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


class UsageRollup(models.Model):
    """The sum of the events of one customer and period that were rated alike: one price of
    one rate card version under one set of contract terms, for one model and feature.

    Reading current usage or closing a period reads these rows, never the events. Unpriced
    usage (no contract, or no price matches) and usage that failed to rate have rollups
    of their own, with `price` empty and `reason` saying why: visible, never free.
    `first_event_at`/`last_event_at` span every event ever rated into the row.
    """

    class Status(models.TextChoices):
        RATED = "rated", "Rated"
        UNPRICED = "unpriced", "Unpriced"
        FAILED = "failed", "Failed to rate"

    key = models.CharField(max_length=255, unique=True, editable=False)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="usage_rollups", db_index=False
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    terms = models.ForeignKey(
        ContractTerms, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    price = models.ForeignKey(
        Price, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    line = models.CharField(
        max_length=200, blank=True, help_text="The price's name: a tiered line across versions."
    )
    model = models.CharField(max_length=200)
    feature = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    event_count = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_creation_input_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    amount = ExactDecimalField(default=0, help_text="Per-event prices: money.", **RATED_DIGITS)
    quantity = ExactDecimalField(default=0, help_text="Tiered prices: quantity.", **RATED_DIGITS)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["customer", "period_start"], name="rollup_customer_period")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.period_start:%Y-%m-%d} {self.line or self.status}"


class RatedEvent(models.Model):
    """How one event was rated: its rollup (and so its price, version and terms) and its
    amount (per-event prices) or quantity (tiered prices). `reason` says why an unpriced
    or failed event has neither."""

    event = models.OneToOneField(
        UsageEvent, primary_key=True, on_delete=models.PROTECT, related_name="rating"
    )
    rollup = models.ForeignKey(UsageRollup, on_delete=models.PROTECT, related_name="events")
    amount = ExactDecimalField(null=True, blank=True, **RATED_DIGITS)
    quantity = ExactDecimalField(null=True, blank=True, **RATED_DIGITS)
    reason = models.CharField(max_length=500, blank=True)
    rated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"event {self.event_id}"


class UsageDrawDown(models.Model):
    """What a customer's prepaid credits have paid of a period's usage so far (`drawn`), and
    what they could not cover (`short`, billed in arrears). Moved in the rating transaction
    to match the period's billable usage: usage after discount beyond the included
    allowance, as the rollups say (billing.services._usage_draw_down), which also keeps
    `allowance_left` here for authorizations to read in one row."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    drawn = ExactDecimalField(default=0, **RATED_DIGITS)
    short = ExactDecimalField(default=0, **RATED_DIGITS)
    allowance_left = ExactDecimalField(
        default=0, help_text="The period's included allowance not yet used.", **RATED_DIGITS
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "period_start"], name="usage_draw_down_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.period_start:%Y-%m-%d}: {self.drawn} drawn"
