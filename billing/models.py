"""Rated usage: how each event was rated, rolled up per customer, period, price and terms."""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Now

from common.fields import RATED_DIGITS, ExactDecimalField
from contracts.models import (
    BILLING_ADDRESS_MAX,
    TAX_ID_MESSAGE,
    TAX_ID_PATTERN,
    ContractTerms,
    Customer,
    Price,
    validate_address,
)
from metering.models import UsageEvent
from wallets.models import TopUpRequest

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

    # No database constraint to the event log, nor in HoldSettlement and BilledEvent: on
    # PostgreSQL the log is partitioned by month, and a foreign key may only reference a
    # unique key that holds the month. Rows here are written by the rater from events it
    # read in the same transaction, and the log is append-only; an archived month's
    # events are gone from the log while these rows stay (docs/operations/event-log.md).
    event = models.OneToOneField(
        UsageEvent,
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="rating",
        db_constraint=False,
    )
    rollup = models.ForeignKey(UsageRollup, on_delete=models.PROTECT, related_name="events")
    amount = ExactDecimalField(null=True, blank=True, **RATED_DIGITS)
    quantity = ExactDecimalField(null=True, blank=True, **RATED_DIGITS)
    reason = models.CharField(max_length=500, blank=True)
    rated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"event {self.event_id}"


class UsageDay(models.Model):
    """A customer's rated money of one UTC day, model and feature: the sum of the amounts
    of the events of that day rated at per-event prices (tiered prices are charged for a
    period as a whole, so they have no amount per event and are not here).

    Moved by the rater in the transaction that rates or re-rates the events, as rollups
    are (`rating.store.days_move`), so the portal charts any range of days from a few rows
    per day whatever the number of events. Days are the events' timestamps in UTC, not
    billing periods: a range need not be a period.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    day = models.DateField()
    model = models.CharField(max_length=200)
    feature = models.CharField(max_length=200, blank=True)
    event_count = models.BigIntegerField(default=0)
    amount = ExactDecimalField(default=0, **RATED_DIGITS)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "day", "model", "feature"], name="usage_day_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.day} {self.model} {self.feature}"


class UsageDrawDown(models.Model):
    """What a customer's prepaid credits have paid of a period's usage so far (`drawn`), and
    what they could not cover (`short`, billed in arrears). Moved in the rating transaction
    to match the period's billable usage: usage after discount beyond the included
    allowance, as the rollups say (billing.rating.draw_down._usage_draw_down), which also keeps
    `allowance_left` here for authorizations to read in one row. `settled` is what closing
    drew (above zero) or gave back (below) so that the invoice's credits line is what the
    ledger drew, to the minor unit (pricing.credits, rule 4): later draws keep it."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    drawn = ExactDecimalField(default=0, **RATED_DIGITS)
    short = ExactDecimalField(default=0, **RATED_DIGITS)
    allowance_left = ExactDecimalField(
        default=0, help_text="The period's included allowance not yet used.", **RATED_DIGITS
    )
    settled = ExactDecimalField(
        default=0, help_text="Rounding settled by invoices (drawn above zero).", **RATED_DIGITS
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


class DrawDownDue(models.Model):
    """A customer's period whose rated usage changed since its credits were last drawn: the
    draw-down queue. Each rating transaction writes a row of its own for each period it
    touched, so no draw-down pass takes it before that transaction commits (and none of them
    waits for another); the pass (billing.rating.draw_down.usage_draw_down_pending) takes a
    period with all its rows and draws it once however many batches touched it."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    period_start = models.DateTimeField()
    # Set by the database as the row is written (no writer names it), so /metrics can say
    # how long the oldest period has waited for its credits (billing.metrics).
    queued_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["customer", "period_start"], name="draw_down_due_period")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.period_start:%Y-%m-%d}"


class HoldSettlement(models.Model):
    """A hold whose call has been rated: the call's event, whose rating says the period and
    the cost. Written in the rating transaction with the period's draw-down row; the pass
    that draws that period settles the hold, after drawing, at what the call added to the
    period's billable usage (docs/guide/credits.md, "Authorizations"), so the credits it
    reserved are never free before they are spent."""

    hold_id = models.UUIDField(primary_key=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(
        UsageEvent, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )

    def __str__(self) -> str:
        return f"hold {self.hold_id}"


class InvoiceSequence(models.Model):
    """An issuer's gapless numbering: the next number is taken under this row's lock in the
    transaction that finalizes the invoice (or credit note), so a rollback leaves no gap
    and two closings never share a number."""

    name = models.CharField(max_length=50, unique=True)
    prefix = models.CharField(max_length=20)
    next_number = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}{self.next_number:06d} next)"


class Invoice(models.Model):
    """What a customer owes for a billing period: its lines, each rounded once to the
    currency's minor unit (pricing.money), and a total that is their sum. Never edited once
    finalized; a credit note corrects it."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        FINALIZED = "finalized", "Finalized"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=40, unique=True, null=True, blank=True)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    total = ExactDecimalField(default=0, **RATED_DIGITS)
    created_at = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    stripe_id = models.CharField(max_length=100, blank=True)
    stripe_status = models.CharField(max_length=30, blank=True)
    stripe_pushed_at = models.DateTimeField(null=True, blank=True)
    stripe_error = models.CharField(max_length=500, blank=True)
    stripe_event_at = models.DateTimeField(
        null=True, blank=True, help_text="When the Stripe event last applied was created."
    )
    stripe_claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is pushing it to Stripe until then."
    )
    stripe_hosted_url = models.URLField(
        max_length=500, blank=True, help_text="Stripe's page where the customer pays it."
    )
    due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When payment is due: its issue plus the contract's payment terms.",
    )
    emailed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it was emailed to the customer's billing email (Stripe off).",
    )

    class Meta:
        indexes = [
            models.Index(fields=["customer", "period_start"], name="invoice_customer_period")
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"


class InvoiceLine(models.Model):
    """One line of an invoice. `exact_amount` keeps the rated money (12 places); `amount`
    is it rounded once. A usage line names its price (and so rate card version) and terms,
    the period it bills, how many events it covers and their time span; the events it
    billed are recorded with it when the invoice is made (`BilledEvent`): those of that
    period, price and terms rated within [`rated_after`, `rated_until`]."""

    class Kind(models.TextChoices):
        FIXED_FEE = "fixed_fee", "Fixed fee"
        USAGE = "usage", "Usage"
        DISCOUNT = "discount", "Discount"
        ALLOWANCE = "allowance", "Included allowance used"
        MINIMUM = "minimum", "Minimum commitment true-up"
        LATE_USAGE = "late_usage", "Late usage"
        CREDITS = "credits", "Prepaid credits applied"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=300)
    period_start = models.DateTimeField(help_text="The billing period the line bills.")
    period_end = models.DateTimeField()
    quantity = ExactDecimalField(default=1, **RATED_DIGITS)
    unit_price = ExactDecimalField(default=0, **RATED_DIGITS)
    exact_amount = ExactDecimalField(**RATED_DIGITS)
    amount = ExactDecimalField(**RATED_DIGITS)
    price = models.ForeignKey(
        Price, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    terms = models.ForeignKey(
        ContractTerms, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    event_count = models.BigIntegerField(default=0)
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    rated_after = models.DateTimeField(null=True, blank=True)
    rated_until = models.DateTimeField(null=True, blank=True)
    stripe_id = models.CharField(max_length=100, blank=True)
    details = models.JSONField(
        default=list,
        blank=True,
        help_text="What a usage line billed, per metric, in the customer's words: "
        '[{"metric": "input_tokens", "label": "Input tokens", "quantity": "1200000", '
        '"rate": "2.50", "per": "1M tokens"}, ...]; rate is null when no single rate '
        "applies (tiers).",
    )

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position")
        ]

    def __str__(self) -> str:
        return f"{self.invoice} #{self.position}: {self.description}"


class BilledEvent(models.Model):
    """An event an invoice line billed, with what it was rated at then. Recorded when the
    invoice is made, so a line lists the events it billed whatever re-rating does later;
    an event re-rated after it was billed also shows under the line that billed the
    change."""

    line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="billed_events")
    event = models.ForeignKey(
        UsageEvent, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    amount = ExactDecimalField(null=True, blank=True, **RATED_DIGITS)
    quantity = ExactDecimalField(null=True, blank=True, **RATED_DIGITS)
    rated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["line", "event"], name="billed_event_once")]

    def __str__(self) -> str:
        return f"{self.line}: event {self.event_id}"


class BillingPeriod(models.Model):
    """A contract's billing period once it has been closed into an invoice.

    Open periods need no row: a period is open until its end, then in grace for
    TOKENTILL_PERIOD_GRACE_HOURS so late events still land in it, then closed. The
    `billed_*` figures are what invoices have billed for the period so far, as their lines
    say (in the currency's minor unit: its charges before credits, and the credits applied):
    a later change to the period is billed or credited as the difference, never twice."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.PROTECT, related_name="billing_periods"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    closed_at = models.DateTimeField()
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="periods")
    billed_total = ExactDecimalField(default=0, **RATED_DIGITS)
    billed_credits = ExactDecimalField(default=0, **RATED_DIGITS)
    billed_events = models.BigIntegerField(default=0)
    billed_until = models.DateTimeField(help_text="Usage rated until then has been billed.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "start"], name="billing_period_once")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"


class SellerDetails(models.Model):
    """Who issues the invoices, as they print at the top of each: one row, edited in the
    admin. Until it is saved there, documents use the TOKENTILL_SELLER_* settings
    (billing.selectors.seller_details)."""

    name = models.CharField(max_length=200)
    address = models.TextField(
        max_length=BILLING_ADDRESS_MAX,
        blank=True,
        validators=[validate_address],
        help_text="One line per line, as printed.",
    )
    tax_id = models.CharField(
        "tax id",
        max_length=50,
        blank=True,
        validators=[RegexValidator(TAX_ID_PATTERN, TAX_ID_MESSAGE)],
    )
    email = models.EmailField("contact email", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "seller details"
        verbose_name_plural = "seller details"

    def __str__(self) -> str:
        return self.name


class CreditNote(models.Model):
    """A correction of a finalized invoice that leaves the invoice as it was: re-rated
    usage billed too high, goodwill, or a void. Its credit goes back to the customer's
    wallet as credits, to Stripe against the invoice, or nowhere (recorded only)."""

    class Reason(models.TextChoices):
        RERATING = "rerating", "Re-rated usage"
        GOODWILL = "goodwill", "Goodwill"
        VOID = "void", "Invoice voided"

    class Destination(models.TextChoices):
        WALLET = "wallet", "Wallet credits"
        STRIPE = "stripe", "Stripe"
        NONE = "none", "Recorded only"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=40, unique=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    memo = models.CharField(max_length=300, blank=True)
    destination = models.CharField(max_length=8, choices=Destination.choices)
    exact_amount = ExactDecimalField(**RATED_DIGITS)
    amount = ExactDecimalField(**RATED_DIGITS)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()
    stripe_id = models.CharField(max_length=100, blank=True)
    stripe_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.number


# --- Stripe (billing.stripe.push pushes, billing.stripe.events applies what Stripe says) ---


class StripeCustomer(models.Model):
    """A customer's Stripe customer, created the first time something of theirs is pushed.
    Kept here rather than on the customer, so contracts knows nothing of Stripe."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="stripe")
    stripe_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "Stripe customer"

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.stripe_id}"


class TopUpInvoice(models.Model):
    """The Stripe invoice that charges a top-up request (wallets.TopUpRequest); paying it
    grants the credits (wallets.topups.topup_mark_paid). The same Stripe fields as an
    Invoice, so pushing and applying Stripe's events treat both alike."""

    request = models.OneToOneField(
        TopUpRequest, on_delete=models.PROTECT, related_name="stripe_invoice"
    )
    stripe_id = models.CharField(max_length=100, blank=True)
    stripe_item_id = models.CharField(max_length=100, blank=True)
    stripe_status = models.CharField(max_length=30, blank=True)
    stripe_pushed_at = models.DateTimeField(null=True, blank=True)
    stripe_error = models.CharField(max_length=500, blank=True)
    stripe_event_at = models.DateTimeField(null=True, blank=True)
    stripe_claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "top-up invoice"

    def __str__(self) -> str:
        return f"top-up {self.request_id}: {self.stripe_id or 'not in Stripe yet'}"


class StripeEvent(models.Model):
    """A webhook event from Stripe, stored once by its id before it is applied, so a
    redelivery changes nothing and a failed one can be applied again from the admin.
    `processed_at` is empty until it has been applied; `error` says why it was not."""

    stripe_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    created = models.DateTimeField(help_text="When Stripe created the event.")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "Stripe event"
        indexes = [models.Index(fields=["type", "created"], name="stripe_event_type_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"
