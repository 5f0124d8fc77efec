"""Customers and the operator API keys that services authenticate with."""

import hashlib
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from moneyed import CURRENCIES

from .formula import Formula, FormulaError, formula_parse
from .matching import Selector
from .metrics import METRIC_NAME, STANDARD_METRICS
from .price_builder import RATE_NAME_PATTERN
from .tiers import Tier, TierError, tiers_validate

EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"


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
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


KEY_PREFIX_LENGTH = 8
KEY_PATTERN = re.compile(r"^tt_([a-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")


def api_key_hash(key: str) -> str:
    """SHA-256 of the whole key.

    A key carries 256 random bits, so a fast hash is as safe as a slow one here (nothing
    to brute-force) and keeps authentication off the request's critical path.
    """
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """An operator key: full access to the API. Only its hash and public prefix are kept."""

    name = models.CharField(max_length=100)
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


class RateCardVersion(models.Model):
    """The prices of a rate card from an instant on: events are rated by the version in
    force at their timestamp. Once it has rated anything it is `locked_at` and never
    edited; a change of price is a new version from a later instant."""

    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    effective_from = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rate_card", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["rate_card", "number"], name="rate_card_version_number"
            ),
            models.UniqueConstraint(
                fields=["rate_card", "effective_from"], name="rate_card_version_instant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rate_card.name} v{self.number}"


class Price(models.Model):
    """How one kind of event is charged: which events (a selector), named rates with their
    unit, and a formula over the event's metrics and the rates (per-unit values).

    `per_event`: the formula is the money one event costs. `graduated`, `volume` and
    `package`: the formula is the quantity an event adds, and the period's total quantity
    is priced by `tiers` (or `package_size` / `package_price`); see contracts.tiers.
    """

    class Kind(models.TextChoices):
        PER_EVENT = "per_event", "Per event (formula)"
        GRADUATED = "graduated", "Graduated tiers"
        VOLUME = "volume", "Volume tiers"
        PACKAGE = "package", "Package"

    version = models.ForeignKey(RateCardVersion, on_delete=models.CASCADE, related_name="prices")
    name = models.CharField(max_length=200)
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
    package_price = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)

    class Meta:
        ordering = ["version", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="price_name_per_version")
        ]

    def __str__(self) -> str:
        return self.name

    def selector(self) -> Selector:
        return Selector(self.model_pattern, self.feature, self.property_filters)

    def parsed_formula(self) -> Formula:
        return formula_parse(
            self.formula, allowed_names=[*STANDARD_METRICS, *self.extra_metrics, *self.rates]
        )

    def clean(self):
        errors = {}
        if not isinstance(self.property_filters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.property_filters.items()
        ):
            errors["property_filters"] = 'Use a flat map of strings, e.g. {"inference": "batch"}.'
        if not isinstance(self.extra_metrics, list) or not all(
            isinstance(m, str) and METRIC_NAME.match(m) for m in self.extra_metrics
        ):
            errors["extra_metrics"] = "Use a list of lowercase metric names."
        rate_error = _rates_error(self.rates)
        if rate_error:
            errors["rates"] = rate_error
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
    if not isinstance(rates, dict):
        return 'Use {"rate_in": {"amount": "2.50", "per": 1000000}, ...}.'
    for name, rate in rates.items():
        if not re.match(RATE_NAME_PATTERN, name):
            return f"'{name}': rate names look like rate_in, rate_out (rate_ and a-z, 0-9, _)."
        if not isinstance(rate, dict) or set(rate) != {"amount", "per"}:
            return f"'{name}': give an amount and a unit (per 1, 1000 or 1000000)."
        if rate["per"] not in RATE_UNITS:
            return f"'{name}': the unit must be per 1, 1000 or 1000000 units."
        if isinstance(rate["amount"], bool) or not isinstance(rate["amount"], str | int):
            return f"'{name}': write the amount as text, e.g. \"2.50\" (money is never a float)."
        try:
            amount = Decimal(rate["amount"])
        except ArithmeticError:
            return f"'{name}': '{rate['amount']}' is not a number."
        if not amount.is_finite() or amount < 0:
            return f"'{name}': the amount must be a number of at least 0."
    return ""


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
