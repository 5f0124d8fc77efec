"""Billing webhooks: the endpoints operators register, the events emitted (an outbox
written in the transaction of the change that causes each), and their deliveries.

`Delivery` is what every signed delivery keeps, billing webhooks and wallets' alerts
alike: its status, its attempts and when the next one is due (webhooks.attempts).
"""

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from .events import EVENT_TYPES, new_event_id


def new_webhook_secret() -> str:
    """A signing secret, made by tokentill and never chosen from outside."""
    return f"whsec_{secrets.token_hex(24)}"


class Delivery(models.Model):
    """One thing to send, tried until delivered with a growing delay between attempts,
    each attempt in `history` (webhooks.attempts)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


def validate_event_types(value) -> None:
    if not isinstance(value, list) or not all(kind in EVENT_TYPES for kind in value):
        raise ValidationError(
            f"Give a list of event types among {', '.join(EVENT_TYPES)}; an empty list [] "
            "takes them all."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each event type once.")


class WebhookEndpoint(models.Model):
    """Where billing events are POSTed, signed with the endpoint's own secret."""

    # Text with the one URL validator that takes http(s) alone (a URLField would add its own
    # and say "Enter a valid URL." twice).
    url = models.CharField(
        max_length=500, validators=[URLValidator(schemes=["http", "https"])],
        help_text="Events are POSTed here as signed JSON.",
    )  # fmt: skip
    secret = models.CharField(max_length=80, default=new_webhook_secret, editable=False)
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(
        default=True, help_text="A disabled endpoint is sent nothing, its waiting deliveries "
        "included (they fail; replay them once it is enabled again).",
    )  # fmt: skip
    event_types = models.JSONField(
        default=list, blank=True, validators=[validate_event_types],
        help_text="The event types it takes; empty: all of them.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.description or self.url

    def takes(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)


class WebhookEvent(models.Model):
    """Something that happened to billing, once: never changed, delivered to each endpoint
    that takes its type. `event_id` is what receivers deduplicate by."""

    event_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=40, choices=[(kind, kind) for kind in EVENT_TYPES])
    data = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(Delivery):
    """An event sent to an endpoint. A replay is a delivery of its own, of the same event."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    replay_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replays"
    )

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event.type} to {self.endpoint}: {self.get_status_display()}"
