"""Customers, API keys, rate cards and prices, and the contracts that tie them."""

import hashlib
import re
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from moneyed import CURRENCIES

from common.fields import DecimalDigits
from pricing.cycles import period_bounds
from pricing.formula import Formula, FormulaError, formula_parse
from pricing.matching import Selector
from pricing.metrics import METRIC_NAME, STANDARD_METRICS
from pricing.money import RATED_PLACES
from pricing.standard import RATE_NAME_PATTERN
from pricing.tiers import Tier, TierError, tiers_validate

#: The longest payment terms a contract may set, in days.
PAYMENT_TERMS_MAX_DAYS = 365
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"


#: A tax number as tax offices print them: letters, digits, spaces and - . / (VAT, GST, EIN).
TAX_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9 ./-]{0,48}[A-Za-z0-9])?$"
TAX_ID_MESSAGE = (
    "Use 1-50 letters, digits, spaces or - . / (starting and ending with a letter or digit)."
)
BILLING_ADDRESS_MAX = 500
ADDRESS_LINES_MAX = 8


def validate_address(value: str) -> None:
    """An address prints on documents: at most 8 lines, no control characters but line
    breaks."""
    if any((ord(char) < 32 and char not in "\r\n") or char == "\x7f" for char in value):
        raise ValidationError("Remove the control characters (only line breaks may be used).")
    if len(value.strip().splitlines()) > ADDRESS_LINES_MAX:
        raise ValidationError(f"Use at most {ADDRESS_LINES_MAX} lines.")


def validate_currency(value: str) -> None:
    if value not in CURRENCIES or value == "XXX":
        raise ValidationError(f"'{value}' is not an ISO 4217 currency code.")


class Customer(models.Model):
    """Someone billed by tokentill, known to services by `external_id`.

    `external_id` and `currency` are fixed at creation: events, seals and (later) money
    refer to them, so changing either would rewrite history.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    external_id = models.CharField(
        max_length=100,
        unique=True,
        validators=[
            RegexValidator(
                EXTERNAL_ID_PATTERN,
                "Use 1-100 letters, digits or . _ : @ - (starting with a letter or digit).",
            )
        ],
        help_text="The id your services send as customer_id.",
    )
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    email = models.EmailField("billing email", blank=True)
    legal_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="The name invoices are made out to; empty: the name above.",
    )
    billing_address = models.TextField(
        max_length=BILLING_ADDRESS_MAX,
        blank=True,
        validators=[validate_address],
        help_text="Printed under the legal name on invoices, one line per line.",
    )
    tax_id = models.CharField(
        "tax id",
        max_length=50,
        blank=True,
        validators=[RegexValidator(TAX_ID_PATTERN, TAX_ID_MESSAGE)],
        help_text="VAT, GST or other tax number, printed on invoices.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"

    @property
    def billed_name(self) -> str:
        """The name on the customer's documents: the legal name, else the name."""
        return self.legal_name.strip() or self.name


KEY_PREFIX_LENGTH = 8
KEY_PATTERN = re.compile(r"^tt_([a-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")


def api_key_hash(key: str) -> str:
    """SHA-256 of the whole key.

    A key carries 256 random bits, so a fast hash is as safe as a slow one here (nothing
    to brute-force) and keeps authentication off the request's critical path.
    """
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """An API key; only its hash and public prefix are kept.

    Without a customer it is an operator key, with full access to the API. With one it is
    that customer's read-only key: it reads their usage, wallet and invoices and nothing
    else (contracts.permissions).
    """

    name = models.CharField(max_length=100)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="Empty for an operator key; else the only customer the key can read.",
    )
    created_by = models.CharField(max_length=150, blank=True)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (tt_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- Rate cards and prices --------------------------------------------------------------

RATE_UNITS = {1: "per unit", 1_000: "per 1K", 1_000_000: "per 1M"}


class RateCard(models.Model):
    """A named price list in one currency; its prices live in effective-dated versions."""

    name = models.CharField(max_length=200, unique=True)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"

    def clean(self):
        # The API finds a card by its name, as one segment of the URL.
        if "/" in (self.name or ""):
            raise ValidationError(
                {"name": "A rate card's name cannot hold a /: the API finds a card by its name."}
            )


class RateCardVersion(models.Model):
    """The prices of a rate card from an instant on. The version in force at an instant is
    the highest-numbered one that has started by then, so a correction (a new version from
    an instant in the past) supersedes what it corrects. Once a version has rated anything
    it is `locked_at` and never edited; a change of price is a new version."""

    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    effective_from = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    correction = models.ForeignKey(
        "PriceCorrection",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="versions",
        help_text="The price correction that made this version, if one did.",
    )
    locked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rate_card", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["rate_card", "number"], name="rate_card_version_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rate_card.name} v{self.number}"


class PriceCorrection(models.Model):
    """One price of a rate card corrected from an instant in the past: who did it, why,
    what it set, and the versions it made (`versions`: one for each version that was in
    force from that instant on, each a copy of it with the correction). A row is never
    edited; a second correction is a row of its own."""

    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="corrections")
    price_name = models.CharField(max_length=200)
    effective_from = models.DateTimeField()
    rates = models.JSONField(
        default=dict,
        blank=True,
        help_text='The rates it set: {"rate_out": {"amount": "5.00", "per": 1000000}}.',
    )
    formula = models.TextField(blank=True, help_text="The formula it set; empty: unchanged.")
    reason = models.TextField(help_text="Why the price was corrected.")
    created_by = models.CharField(
        max_length=150, help_text="Who corrected it: a staff user, an API key, a command."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rate_card", "-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.rate_card.name}: {self.price_name} corrected from "
            f"{self.effective_from:%Y-%m-%d %H:%M} UTC"
        )


class Price(models.Model):
    """How one kind of event is charged: which events (a selector), named rates with their
    unit, and a formula over the event's metrics and the rates (per-unit values).

    `per_event`: the formula is the money one event costs. `graduated`, `volume` and
    `package`: the formula is the quantity an event adds, and the period's total quantity
    is priced by `tiers` (or `package_size` / `package_price`); see pricing.tiers.
    """

    class Kind(models.TextChoices):
        PER_EVENT = "per_event", "Per event (formula)"
        GRADUATED = "graduated", "Graduated tiers"
        VOLUME = "volume", "Volume tiers"
        PACKAGE = "package", "Package"

    version = models.ForeignKey(RateCardVersion, on_delete=models.CASCADE, related_name="prices")
    name = models.CharField(max_length=200)
    display_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="What the customer's invoice calls it, e.g. GPT-4o. Empty: the price's name.",
    )
    position = models.PositiveIntegerField(
        default=0, help_text="Order within the version; the first wins between equal matches."
    )
    model_pattern = models.CharField(
        max_length=200, help_text="A model name, or a pattern with * such as gpt-4o*."
    )
    feature = models.CharField(max_length=200, blank=True, help_text="Empty: any feature.")
    property_filters = models.JSONField(
        default=dict,
        blank=True,
        help_text='Properties the event must have, e.g. {"inference": "batch"}.',
    )
    rates = models.JSONField(
        default=dict,
        help_text='Named rates: {"rate_in": {"amount": "2.50", "per": 1000000}, ...}.',
    )
    extra_metrics = models.JSONField(
        default=list, blank=True, help_text="Metrics beyond the standard ones the formula uses."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PER_EVENT)
    formula = models.TextField()
    tiers = models.JSONField(default=list, blank=True)
    package_size = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    package_price = models.DecimalField(
        max_digits=24, decimal_places=RATED_PLACES, null=True, blank=True
    )

    class Meta:
        ordering = ["version", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="price_name_per_version")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def shown_name(self) -> str:
        """The name the customer's invoice lines give it: its display name, else its name
        (the catalog names a price by its model, as the customer calls it)."""
        return self.display_name or self.name

    def selector(self) -> Selector:
        return Selector(self.model_pattern, self.feature, self.property_filters)

    def parsed_formula(self) -> Formula:
        return formula_parse(
            self.formula, allowed_names=[*STANDARD_METRICS, *self.extra_metrics, *self.rates]
        )

    def clean(self):
        errors = {}
        if self.display_name != self.display_name.strip() or not self.display_name.isprintable():
            errors["display_name"] = (
                "Write the display name on one line, without spaces at either end "
                "(empty: the price's name)."
            )
        if not isinstance(self.property_filters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.property_filters.items()
        ):
            errors["property_filters"] = 'Use a flat map of strings, e.g. {"inference": "batch"}.'
        if not isinstance(self.extra_metrics, list) or not all(
            isinstance(m, str) and METRIC_NAME.match(m) for m in self.extra_metrics
        ):
            errors["extra_metrics"] = "Use a list of lowercase metric names."
        rate, rate_error = rate_problem(self.rates)
        if rate_error:
            errors["rates"] = rate_validation_error(rate, rate_error)
        elif "extra_metrics" not in errors:
            try:
                self.parsed_formula()
            except FormulaError as error:
                errors["formula"] = str(error)
        errors.update(self._charge_errors())
        if errors:
            raise ValidationError(errors)

    def _charge_errors(self) -> dict:
        if self.kind == self.Kind.PACKAGE:
            if not (self.package_size and self.package_size > 0 and self.package_price is not None):
                return {"package_size": "A package price needs a size above 0 and a price."}
            if self.package_price < 0:
                return {"package_price": "Must not be negative."}
        elif self.kind in (self.Kind.GRADUATED, self.Kind.VOLUME):
            try:
                tiers_validate(tiers_from_json(self.tiers))
            except (TierError, TypeError, KeyError, ArithmeticError) as error:
                return {"tiers": f"{error}"}
        return {}


def tiers_from_json(tiers: list) -> list[Tier]:
    """[{"up_to": "1000000" or null, "unit_price": "0.000002", "flat_fee": "0"}, ...]"""
    return [
        Tier(
            up_to=None if tier.get("up_to") is None else Decimal(str(tier["up_to"])),
            unit_price=Decimal(str(tier["unit_price"])),
            flat_fee=Decimal(str(tier.get("flat_fee", "0"))),
        )
        for tier in tiers
    ]


def _rates_error(rates) -> str:
    return rate_problem(rates)[1]


def rate_problem(rates) -> tuple[str, str]:
    """The first thing wrong with a price's rates: (the rate's name, what is wrong), or
    ("", "") when they are right. The name is "" when the whole map is wrong."""
    if not isinstance(rates, dict):
        return "", 'Use {"rate_in": {"amount": "2.50", "per": 1000000}, ...}.'
    for name, rate in rates.items():
        if not re.match(RATE_NAME_PATTERN, name):
            return (
                name,
                f"'{name}': rate names look like rate_in, rate_out (rate_ and a-z, 0-9, _).",
            )
        if not isinstance(rate, dict) or set(rate) != {"amount", "per"}:
            return name, f"'{name}': give an amount and a unit (per 1, 1000 or 1000000)."
        if rate["per"] not in RATE_UNITS:
            return name, f"'{name}': the unit must be per 1, 1000 or 1000000 units."
        if isinstance(rate["amount"], bool) or not isinstance(rate["amount"], str | int):
            return (
                name,
                f"'{name}': write the amount as text, e.g. \"2.50\" (money is never a float).",
            )
        try:
            amount = Decimal(rate["amount"])
        except ArithmeticError:
            return name, f"'{name}': '{rate['amount']}' is not a number."
        if not amount.is_finite() or amount < 0:
            return name, f"'{name}': the amount must be a number of at least 0."
    return "", ""


def rate_validation_error(rate: str, message: str) -> ValidationError:
    """A refused rate, saying which one (`params["rate"]`), so an answer can name where:
    `rates.rate_out` rather than `rates`. The message is kept as written (`%` escaped:
    Django formats a message that has params)."""
    return ValidationError(message.replace("%", "%%"), code="rate", params={"rate": rate})


class CatalogPrice(models.Model):
    """A public list price of a model, as shipped in contracts/catalog/prices.json: the
    starting point for rate cards (catalog cost plus a markup)."""

    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=200)
    match = models.CharField(max_length=200)
    effective_from = models.DateField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    rates = models.JSONField(help_text="Per 1M tokens: input, output, cached_input, ...")
    long_context = models.JSONField(null=True, blank=True)
    batch_discount = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    source = models.URLField(max_length=500, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"], name="catalog_price_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from}"


# --- Contracts and their amendments -----------------------------------------------------


class Contract(models.Model):
    """A customer's agreement over ``[starts_at, ends_at)``: how often they are billed, and
    (in its terms) at which prices and fees.

    The cycle and anchor are fixed for the contract's life: a period cut at a cycle change
    would belong to neither cycle. To change them, end the contract at a period's end and
    start a new one there. Everything else changes by amendment (ContractTerms).
    """

    class Cycle(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        QUARTERLY = "quarterly", "Quarterly"
        YEARLY = "yearly", "Yearly"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: open-ended.")
    billing_cycle = models.CharField(max_length=16, choices=Cycle.choices, default=Cycle.MONTHLY)
    anchor_day = models.PositiveSmallIntegerField(
        help_text="Day of the month periods start on, 1-31 (31: the month's last day)."
    )
    anchor_month = models.PositiveSmallIntegerField(
        default=1, help_text="Quarterly and yearly cycles count their months from this one."
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(PAYMENT_TERMS_MAX_DAYS)],
        help_text="Days from an invoice's issue to its due date, 0 to 365 (0: due on "
        "receipt). Empty: TOKENTILL_PAYMENT_TERMS_DAYS.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer", "starts_at"]
        indexes = [models.Index(fields=["customer", "starts_at"], name="contract_cust_start")]

    def __str__(self) -> str:
        return f"{self.customer.external_id} from {self.starts_at:%Y-%m-%d}"

    def clean(self):
        errors = {}
        if not 1 <= (self.anchor_day or 0) <= 31:
            errors["anchor_day"] = "Use a day from 1 to 31."
        if not 1 <= (self.anchor_month or 0) <= 12:
            errors["anchor_month"] = "Use a month from 1 to 12."
        if (
            isinstance(self.starts_at, datetime)
            and isinstance(self.ends_at, datetime)
            and self.ends_at <= self.starts_at
        ):
            errors["ends_at"] = "A contract must end after it starts."
        if errors:
            raise ValidationError(errors)

    def period_bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """The billing period ``[start, end)`` that holds ``at`` (pricing.cycles)."""
        return period_bounds(
            at, cycle=self.billing_cycle, anchor_day=self.anchor_day, anchor_month=self.anchor_month
        )


# Per-period money of a contract's terms. 15 digits is what SQLite keeps exactly (it stores
# NUMERIC beyond that as a float and rounds); 4 places is finer than any currency's minor
# unit. So up to 99,999,999,999.9999, exact on both databases.
MONEY_DIGITS: DecimalDigits = {"max_digits": 15, "decimal_places": 4}


class ContractTerms(models.Model):
    """The terms of a contract from `effective_from` on: number 1 is the original contract,
    each amendment adds the next. Rows are never edited: an amendment is a new row, so the
    full history stays visible and every rated amount names the terms that produced it.

    Money is per full billing period, in the customer's currency; fixed fee, allowance and
    minimum are prorated by the share of a period each set of terms covers.
    """

    class Overage(models.TextChoices):
        ARREARS = "arrears", "Bill overage in arrears"
        BLOCK = "block", "Block when credits and allowance are spent"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="terms")
    number = models.PositiveIntegerField()
    effective_from = models.DateTimeField()
    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="terms")
    fixed_fee = models.DecimalField(default=Decimal(0), **MONEY_DIGITS)
    included_allowance = models.DecimalField(
        default=Decimal(0), help_text="Usage money included each period.", **MONEY_DIGITS
    )
    overage_policy = models.CharField(
        max_length=16, choices=Overage.choices, default=Overage.ARREARS
    )
    credits_cover_arrears = models.BooleanField(
        default=True,
        help_text="Credits added during a period also pay for its usage already past the "
        "credits; otherwise that usage stays billed in arrears on the invoice.",
    )
    minimum_commitment = models.DecimalField(default=Decimal(0), **MONEY_DIGITS)
    discount_percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=Decimal(0),
        help_text="Taken off usage, e.g. 10 for 10 %.",
    )
    price_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text="Rates replaced for this customer, by price name: "
        '{"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}}.',
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "contract terms"
        verbose_name_plural = "contract terms"
        ordering = ["contract", "number"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "number"], name="contract_terms_number"),
            models.UniqueConstraint(
                fields=["contract", "effective_from"], name="contract_terms_instant"
            ),
        ]

    def __str__(self) -> str:
        kind = "contract" if self.number == 1 else f"amendment {self.number - 1}"
        return f"{self.contract}: {kind} from {self.effective_from:%Y-%m-%d %H:%M}"

    @property
    def discount(self) -> Decimal:
        """The discount as a fraction (10 % is 0.1), exactly."""
        return self.discount_percent.scaleb(-2)

    def clean(self):
        errors = {}
        # A value that is not a Decimal here has already been refused by clean_fields.
        for name in ("fixed_fee", "included_allowance", "minimum_commitment"):
            value = getattr(self, name)
            if isinstance(value, Decimal) and value < 0:
                errors[name] = "Must not be negative."
        discount = self.discount_percent
        if isinstance(discount, Decimal) and not 0 <= discount <= 100:
            errors["discount_percent"] = "Use a percentage from 0 to 100."
        overrides = self.price_overrides
        if not isinstance(overrides, dict) or not all(
            isinstance(rates, dict) for rates in overrides.values()
        ):
            errors["price_overrides"] = (
                'Use {"price name": {"rate_in": {"amount": "2.00", "per": 1000000}}}.'
            )
        else:
            for price_name, rates in overrides.items():
                message = _rates_error(rates) or ("" if rates else "name at least one rate.")
                if message:
                    errors["price_overrides"] = f"{price_name}: {message}"
                    break
        if errors:
            raise ValidationError(errors)


#: What an amendment may change; everything else about a contract is fixed.
TERMS_FIELDS = (
    "rate_card",
    "fixed_fee",
    "included_allowance",
    "overage_policy",
    "credits_cover_arrears",
    "minimum_commitment",
    "discount_percent",
    "price_overrides",
)
#: A set of terms as its history shows it (admin, API).
TERMS_HISTORY_FIELDS = (
    "number",
    "effective_from",
    *TERMS_FIELDS,
    "note",
    "created_by",
    "created_at",
)


class TermsChange(models.Model):
    """From `effective_from` on, a customer's terms changed (a contract or an amendment was
    added, a contract's end moved, their rate card priced a call it did not price before:
    `price_add_from`). Billing reads these and re-rates the usage already
    rated from that instant, then marks them applied: written in the same transaction as
    the change, so no change is ever missed."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], condition=models.Q(applied_at__isnull=True), name="terms_change_todo"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: terms changed from {self.effective_from:%Y-%m-%d %H:%M}"
