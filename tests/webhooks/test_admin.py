"""Billing webhooks in the admin: endpoints registered through the service (the secret
shown, wrong values refused with nothing stored), events and deliveries shown read only
and replayed by actions."""

import json

from django.contrib.messages import get_messages
from django.urls import reverse

from common.models import AuditEntry
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_create, endpoint_disable

from .conftest import finalized

ADD = reverse("admin:webhooks_webhookendpoint_add")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")
EVENTS = reverse("admin:webhooks_webhookevent_changelist")


def messages_of(page) -> list[str]:
    return [str(message) for message in get_messages(page.wsgi_request)]


def test_billing_ops_register_an_endpoint_and_see_its_secret(admin_client, admin_user, clock):
    page = admin_client.post(
        ADD,
        {"url": "https://erp.example/hooks", "description": "ERP", "enabled": "on",
         "event_types": ["invoice.finalized", "invoice.paid"]},
    )  # fmt: skip

    assert page.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.description, endpoint.enabled, endpoint.event_types) == (
        "https://erp.example/hooks", "ERP", True, ["invoice.finalized", "invoice.paid"],
    )  # fmt: skip
    shown = admin_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret in shown.content.decode()
    listed = admin_client.get(reverse("admin:webhooks_webhookendpoint_changelist"))
    assert "invoice.finalized, invoice.paid" in listed.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.object_id) == (
        f"user:{admin_user.username}", "webhook_endpoint.create", str(endpoint.pk),
    )  # fmt: skip


def test_a_wrong_endpoint_is_a_form_error_and_nothing_is_stored(admin_client):
    page = admin_client.post(ADD, {"url": "ftp://erp.example/hooks", "event_types": ["lost"]})

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {
        "url": ["Enter a valid URL."],
        "event_types": ["Select a valid choice. lost is not one of the available choices."],
    }
    assert WebhookEndpoint.objects.count() == 0


def test_an_endpoint_is_changed_through_the_service_and_never_deleted(admin_client, endpoint):
    secret = endpoint.secret
    url = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])

    page = admin_client.post(url, {"url": "https://erp.example/v2", "description": "ERP v2"})

    assert page.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.enabled, endpoint.event_types, endpoint.secret) == (
        "https://erp.example/v2", False, [], secret,
    )  # fmt: skip
    delete = reverse("admin:webhooks_webhookendpoint_delete", args=[endpoint.pk])
    assert admin_client.get(delete).status_code == 403


def test_endpoints_are_disabled_by_an_action(admin_client, endpoint):
    page = admin_client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "disable_selected", "_selected_action": [endpoint.pk]},
    )

    assert page.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled is False


def test_deliveries_are_replayed_by_an_action(admin_client, endpoint, clock, receiver, sent):
    receiver.statuses = [500, 200]
    with sent():
        event = finalized()
    first = WebhookDelivery.objects.get()

    with sent():
        page = admin_client.post(
            DELIVERIES, {"action": "replay_selected", "_selected_action": [first.pk]}
        )

    assert page.status_code == 302
    assert messages_of(page) == ["1 new delivery sent."]
    replay = WebhookDelivery.objects.exclude(pk=first.pk).get()
    assert (replay.event, replay.replay_of, replay.status) == (event, first, "delivered")
    assert [json.loads(body)["id"] for _, body in receiver.requests] == [event.event_id] * 2


def test_a_replay_to_a_disabled_endpoint_is_refused_and_nothing_is_stored(
    admin_client, endpoint, clock
):
    finalized()
    first = WebhookDelivery.objects.get()
    endpoint_disable(endpoint=endpoint)

    page = admin_client.post(
        DELIVERIES, {"action": "replay_selected", "_selected_action": [first.pk]}
    )

    assert messages_of(page) == [
        f"Delivery {first.pk}: The endpoint ERP is disabled: enable it to replay to it."
    ]
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [first.pk]


def test_events_are_delivered_again_to_the_endpoints_that_take_them(
    admin_client, endpoint, clock, receiver, sent
):
    # given an event delivered, then an endpoint registered that takes it and one that does not
    with sent():
        event = finalized()
    newer = endpoint_create(url=receiver.url, event_types=["invoice.finalized"])
    endpoint_create(url=receiver.url, event_types=["grant.created"])

    with sent():
        page = admin_client.post(
            EVENTS, {"action": "replay_selected", "_selected_action": [event.pk]}
        )

    assert messages_of(page) == ["2 new deliveries sent."]
    assert sorted(event.deliveries.values_list("endpoint_id", flat=True)) == [
        endpoint.pk, endpoint.pk, newer.pk,
    ]  # fmt: skip
    assert len(receiver.requests) == 3


def test_events_and_deliveries_are_shown_read_only(admin_client, endpoint, clock, sent):
    with sent():
        event = finalized()
    delivery = WebhookDelivery.objects.get()

    for url in (EVENTS, DELIVERIES):
        assert admin_client.get(url).status_code == 200
    shown = admin_client.get(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))
    text = shown.content.decode()
    assert event.event_id in text and "INV-000042" in text and "Delivered" in text
    page = admin_client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert admin_client.get(reverse("admin:webhooks_webhookevent_add")).status_code == 403
    assert admin_client.get(reverse("admin:webhooks_webhookdelivery_add")).status_code == 403
