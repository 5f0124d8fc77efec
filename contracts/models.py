"""Customers and the operator API keys that services authenticate with."""

import hashlib
import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from moneyed import CURRENCIES

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
