"""Billing webhooks: endpoints registered, events emitted into the outbox, deliveries sent,
retried and replayed.

`event_emit` is called by the service that makes the change (closing an invoice, a
grant, an alert...), inside its transaction: the event and a delivery to each enabled
endpoint that takes its type are rows written with the change, so a change that rolls
back leaves no event, and one that commits cannot lose its event. Each delivery is sent
by a task sent by name after the commit; what fails is retried by the every-minute sweep
(the policy and the claim that sends each attempt once are in webhooks.attempts).
"""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common.audit import audit_record, snapshot
from common.tasks import DELIVER_WEBHOOK, task_send_on_commit

from .attempts import deliveries_retry, delivery_attempt
from .events import EVENT_TYPES, event_body
from .models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from .signing import webhook_post

#: What operators may set on an endpoint, and what the audit trail keeps of it; its secret
#: is tokentill's own, and never in the trail.
ENDPOINT_FIELDS = ("url", "description", "enabled", "event_types")
NOT_SENT_DISABLED = "Not sent: the endpoint is disabled."


# --- Endpoints ------------------------------------------------------------------------------


def endpoint_create(**fields: Any) -> WebhookEndpoint:
    """Register an endpoint, with a new secret; validated in full, nothing stored if not."""
    return _endpoint_save(WebhookEndpoint(), fields, "webhook_endpoint.create")


def endpoint_update(*, endpoint: WebhookEndpoint, **fields: Any) -> WebhookEndpoint:
    """Change the fields given of an endpoint; validated in full, nothing stored if not."""
    return _endpoint_save(endpoint, fields, "webhook_endpoint.change")


def endpoint_disable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Send the endpoint nothing more: new events pass it by, and its waiting deliveries
    fail when they come due (replay them once it is enabled again)."""
    return _endpoint_save(endpoint, {"enabled": False}, "webhook_endpoint.disable")


def _endpoint_save(
    endpoint: WebhookEndpoint, fields: dict[str, Any], action: str
) -> WebhookEndpoint:
    unknown = set(fields) - set(ENDPOINT_FIELDS)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))} cannot be set")
    with transaction.atomic():
        before = None
        if endpoint.pk is not None:
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
            before = snapshot(endpoint, ENDPOINT_FIELDS)
        for name, value in fields.items():
            setattr(endpoint, name, value)
        endpoint.full_clean()
        endpoint.save()
        after = snapshot(endpoint, ENDPOINT_FIELDS)
        audit_record(action, endpoint, before=before, after=after)
    return endpoint


# --- Events ---------------------------------------------------------------------------------


def event_emit(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
    """Record that `event_type` happened, with a delivery to each enabled endpoint that
    takes it, in the caller's transaction; the deliveries are sent after it commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {event_type!r}")
    now = timezone.now()
    with transaction.atomic():
        event = WebhookEvent.objects.create(type=event_type, data=data, created_at=now)
        # Endpoints are few: which take the type is decided here, alike on every database.
        for endpoint in WebhookEndpoint.objects.filter(enabled=True).order_by("pk"):
            if endpoint.takes(event_type):
                _delivery_create(event, endpoint, now)
    return event


def _delivery_create(
    event: WebhookEvent,
    endpoint: WebhookEndpoint,
    now: datetime,
    replay_of: WebhookDelivery | None = None,
) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        event=event, endpoint=endpoint, replay_of=replay_of, created_at=now, next_attempt_at=now
    )
    task_send_on_commit(DELIVER_WEBHOOK, delivery.pk)
    return delivery


def _replay_create(
    event: WebhookEvent, endpoint: WebhookEndpoint, replay_of: WebhookDelivery | None
) -> WebhookDelivery:
    """A delivery someone asked for (an emitted event's are not): in the audit trail."""
    delivery = _delivery_create(event, endpoint, timezone.now(), replay_of=replay_of)
    shown = ("event", "endpoint", "replay_of")
    audit_record("webhook_delivery.replay", delivery, after=snapshot(delivery, shown))
    return delivery


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the delivery's event to its endpoint again: a new delivery of the same event
    (the same event id, so a receiver that has it can tell), whatever became of the first.
    Refused for a disabled endpoint."""
    return event_replay(event=delivery.event, endpoint=delivery.endpoint, replay_of=delivery)


def event_replay(
    *,
    event: WebhookEvent,
    endpoint: WebhookEndpoint,
    replay_of: WebhookDelivery | None = None,
) -> WebhookDelivery:
    """A new delivery of `event` to `endpoint`, sent at once; refused for a disabled one."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if not endpoint.enabled:
            raise ValidationError(
                {"endpoint": f"The endpoint {endpoint} is disabled: enable it to replay to it."}
            )
        return _replay_create(event, endpoint, replay_of)


def event_redeliver(*, event: WebhookEvent) -> list[WebhookDelivery]:
    """A new delivery of `event` to each enabled endpoint that takes its type now (one
    registered since included)."""
    with transaction.atomic():
        endpoints = WebhookEndpoint.objects.filter(enabled=True).order_by("pk")
        return [
            _replay_create(event, endpoint, None)
            for endpoint in endpoints
            if endpoint.takes(event.type)
        ]


# --- Sending --------------------------------------------------------------------------------


def webhook_delivery_send(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """One attempt at a delivery that is due; its status after, or None when it was not
    due. Safe to call twice or from two workers: the claim lets one through. A delivery
    to a disabled endpoint fails without a request."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, endpoint__enabled=False
    ).update(
        status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_error=NOT_SENT_DISABLED
    )
    return delivery_attempt(
        deliveries=WebhookDelivery.objects.select_related("event", "endpoint"),
        delivery_id=delivery_id,
        now=now,
        send=_post,
    )


def _post(delivery: WebhookDelivery) -> int:
    event, endpoint = delivery.event, delivery.endpoint
    body = event_body(
        event_id=event.event_id, event_type=event.type, created_at=event.created_at, data=event.data
    )
    return webhook_post(
        url=endpoint.url, payload=body, secret=endpoint.secret, delivery_id=delivery.pk
    )


def webhook_deliveries_retry(*, now: datetime | None = None) -> int:
    """Attempt every delivery due (beat: every minute); how many were delivered."""
    return deliveries_retry(
        model=WebhookDelivery,
        attempt=lambda pk, at: webhook_delivery_send(delivery_id=pk, now=at),
        now=now or timezone.now(),
    )
