"""Reads of billing webhooks for the API and the admin."""

from django.db.models import QuerySet

from .models import WebhookDelivery, WebhookEndpoint


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("pk")


def endpoint_get(*, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(pk=endpoint_id).first()


def deliveries_of(
    *, endpoint: WebhookEndpoint, status: str | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first, each with its event."""
    deliveries = endpoint.deliveries.select_related("event").order_by("-created_at", "-pk")
    if status:
        deliveries = deliveries.filter(status=status)
    return list(deliveries[:limit])


def delivery_get(*, delivery_id: int) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    )
