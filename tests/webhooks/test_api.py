"""The webhooks API: endpoints registered, changed and disabled, deliveries listed and
replayed; refusals are 400 with `{field: [messages]}` and store nothing; customers' keys
are refused."""

import json
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from common.models import AuditEntry
from contracts.models import ApiKey
from contracts.services import customer_api_key_create
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.services import endpoint_create

from .conftest import FINALIZED, T, finalized

URL = "/api/v1/webhook-endpoints"
TYPES = (
    "invoice.finalized, invoice.paid, invoice.voided, credit_note.created, grant.created, "
    "grant.expired, wallet.low_balance, usage.budget_share_reached, grant.share_used"
)
BAD_TYPES = f"Give a list of event types among {TYPES}; an empty list [] takes them all."


def stored() -> list[tuple]:
    return list(
        WebhookEndpoint.objects.order_by("pk").values_list(
            "url", "description", "enabled", "event_types", "secret", "updated_at"
        )
    )


def test_an_endpoint_is_registered_with_a_secret_of_tokentills(api, clock):
    response = api.post(
        URL,
        {"url": "https://erp.example/hooks", "description": "ERP",
         "event_types": ["invoice.finalized", "invoice.paid"]},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert response.json() == {
        "id": endpoint.pk,
        "url": "https://erp.example/hooks",
        "description": "ERP",
        "enabled": True,
        "event_types": ["invoice.finalized", "invoice.paid"],
        "secret": endpoint.secret,
        "created_at": "2026-12-02T00:05:00Z",
        "updated_at": "2026-12-02T00:05:00Z",
    }
    assert endpoint.secret.startswith("whsec_")
    assert api.get(URL).json() == [response.json()]
    assert api.get(f"{URL}/{endpoint.pk}").json() == response.json()


def test_an_endpoint_is_changed_and_disabled_and_keeps_its_secret(api, clock):
    endpoint = endpoint_create(url="https://erp.example/hooks", event_types=["invoice.paid"])

    changed = api.patch(
        f"{URL}/{endpoint.pk}",
        {"url": "https://erp.example/v2/hooks", "event_types": []},
        format="json",
    )
    disabled = api.post(f"{URL}/{endpoint.pk}/disable")

    assert changed.status_code == 200
    assert (changed.json()["url"], changed.json()["event_types"]) == (
        "https://erp.example/v2/hooks", [],
    )  # fmt: skip
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert stored() == [("https://erp.example/v2/hooks", "", False, [], endpoint.secret, T)]
    enabled = api.patch(f"{URL}/{endpoint.pk}", {"enabled": True}, format="json")
    assert enabled.json()["enabled"] is True


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"url": "ftp://erp.example/hooks"}, {"url": ["Enter a valid URL."]}),
        ({"url": "erp.example"}, {"url": ["Enter a valid URL."]}),
        ({"description": "ERP"}, {"url": ["This field is required."]}),
        ({"url": "https://erp.example/h", "event_types": ["invoice.lost"]},
         {"event_types": [BAD_TYPES]}),
        ({"url": "https://erp.example/h", "event_types": ["invoice.paid", "invoice.paid"]},
         {"event_types": ["Each event type once."]}),
        ({"url": "https://erp.example/h", "event_types": "invoice.paid"},
         {"event_types": ['Expected a list of items but got type "str".']}),
        ({"url": "https://erp.example/h", "secret": "whsec_mine"}, {"secret": ["Unknown field."]}),
        ({"url": "https://erp.example/h", "description": "x" * 301},
         {"description": ["Ensure this value has at most 300 characters (it has 301)."]}),
    ],
)  # fmt: skip
def test_a_wrong_endpoint_is_refused_and_nothing_is_stored(api, clock, body, errors):
    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert WebhookEndpoint.objects.count() == 0


def test_a_wrong_change_is_refused_and_the_endpoint_is_as_it_was(api, clock, endpoint):
    before = stored()

    response = api.patch(
        f"{URL}/{endpoint.pk}",
        {"url": "mailto:ops@erp.example", "event_types": ["grant.lost"], "description": "new"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"url": ["Enter a valid URL."], "event_types": [BAD_TYPES]}
    assert stored() == before


def test_unknown_endpoints_and_deliveries_are_404(api):
    assert api.get(f"{URL}/7").json() == {"detail": "No webhook endpoint 7."}
    assert api.post(f"{URL}/7/disable").status_code == 404
    assert api.get(f"{URL}/7/deliveries").status_code == 404
    missing = api.post("/api/v1/webhook-deliveries/7/replay")
    assert (missing.status_code, missing.json()) == (404, {"detail": "No webhook delivery 7."})


def test_an_endpoints_deliveries_are_listed_newest_first_with_every_attempt(
    api, clock, endpoint, receiver, sent
):
    receiver.statuses = [500, 200]
    with sent():
        event = finalized()
    clock.at = T + timedelta(hours=1)
    with sent():
        second = finalized()

    response = api.get(f"{URL}/{endpoint.pk}/deliveries")

    assert response.status_code == 200
    first_delivery, second_delivery = WebhookDelivery.objects.order_by("pk")
    assert response.json() == [
        {
            "id": second_delivery.pk,
            "endpoint": endpoint.pk,
            "event": {"id": second.event_id, "type": "invoice.finalized",
                      "created_at": "2026-12-02T01:05:00Z", "data": FINALIZED},
            "status": "delivered",
            "attempts": 1,
            "response_status": 200,
            "last_error": None,
            "next_attempt_at": None,
            "delivered_at": "2026-12-02T01:05:00Z",
            "created_at": "2026-12-02T01:05:00Z",
            "replay_of": None,
            "history": [{"at": "2026-12-02T01:05:00Z", "response_status": 200, "error": "",
                         "next_attempt_at": None}],
        },
        {
            "id": first_delivery.pk,
            "endpoint": endpoint.pk,
            "event": {"id": event.event_id, "type": "invoice.finalized",
                      "created_at": "2026-12-02T00:05:00Z", "data": FINALIZED},
            "status": "pending",
            "attempts": 1,
            "response_status": 500,
            "last_error": "HTTP 500",
            "next_attempt_at": "2026-12-02T00:06:00Z",
            "delivered_at": None,
            "created_at": "2026-12-02T00:05:00Z",
            "replay_of": None,
            "history": [{"at": "2026-12-02T00:05:00Z", "response_status": 500,
                         "error": "HTTP 500", "next_attempt_at": "2026-12-02T00:06:00Z"}],
        },
    ]  # fmt: skip
    pending = api.get(f"{URL}/{endpoint.pk}/deliveries", {"status": "pending"}).json()
    assert [delivery["id"] for delivery in pending] == [first_delivery.pk]
    latest = api.get(f"{URL}/{endpoint.pk}/deliveries", {"limit": 1}).json()
    assert [delivery["id"] for delivery in latest] == [second_delivery.pk]
    wrong = api.get(f"{URL}/{endpoint.pk}/deliveries", {"status": "lost", "limit": 0})
    assert (wrong.status_code, wrong.json()) == (
        400,
        {"status": ['"lost" is not a valid choice.'],
         "limit": ["Ensure this value is greater than or equal to 1."]},
    )  # fmt: skip


def test_a_delivery_is_replayed_as_a_new_delivery_of_the_same_event(
    api, clock, endpoint, receiver, sent
):
    with sent():
        event = finalized()
    first = WebhookDelivery.objects.get()
    clock.at = T + timedelta(days=1)

    with sent():
        response = api.post(f"/api/v1/webhook-deliveries/{first.pk}/replay")

    assert response.status_code == 201
    replay = WebhookDelivery.objects.exclude(pk=first.pk).get()
    answer = response.json()
    assert (answer["id"], answer["event"]["id"], answer["replay_of"]) == (
        replay.pk, event.event_id, first.pk,
    )  # fmt: skip
    assert len(receiver.requests) == 2
    assert receiver.requests[0][1] == receiver.requests[1][1]  # the same event, to the byte


def test_replaying_to_a_disabled_endpoint_is_refused_and_nothing_is_stored(
    api, clock, endpoint, sent
):
    with sent():
        finalized()
    first = WebhookDelivery.objects.get()
    api.post(f"{URL}/{endpoint.pk}/disable")

    response = api.post(f"/api/v1/webhook-deliveries/{first.pk}/replay")

    assert response.status_code == 400
    assert response.json() == {
        "endpoint": ["The endpoint ERP is disabled: enable it to replay to it."]
    }
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [first.pk]


@pytest.fixture
def customer_key(acme) -> str:
    _, key = customer_api_key_create(customer=acme, name="dashboards", created_by="ops")
    return key


def test_customer_keys_are_refused_everything_and_nothing_changes(
    customer_key, endpoint, clock, sent
):
    with sent():
        finalized()
    delivery = WebhookDelivery.objects.get()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {customer_key}")
    urls = [
        URL,
        f"{URL}/{endpoint.pk}",
        f"{URL}/{endpoint.pk}/disable",
        f"{URL}/{endpoint.pk}/deliveries",
        f"/api/v1/webhook-deliveries/{delivery.pk}/replay",
    ]
    before = (stored(), WebhookEvent.objects.count(), WebhookDelivery.objects.count())

    for url in urls:
        for method in ("get", "post", "patch", "put", "delete"):
            response = getattr(client, method)(url, {"enabled": False}, format="json")
            assert response.status_code == 403, (method, url)
            assert response.json() == {"detail": "A customer's API key cannot call this endpoint."}
        assert APIClient().get(url).status_code == 401

    assert (stored(), WebhookEvent.objects.count(), WebhookDelivery.objects.count()) == before


def test_changes_to_endpoints_and_replays_are_in_the_audit_trail_without_the_secret(
    api, operator_key, clock, sent
):
    created = api.post(URL, {"url": "https://erp.example/hooks"}, format="json").json()
    endpoint_id = created["id"]
    api.patch(f"{URL}/{endpoint_id}", {"event_types": ["invoice.paid"]}, format="json")
    api.post(f"{URL}/{endpoint_id}/disable")
    api.patch(f"{URL}/{endpoint_id}", {"enabled": True, "event_types": []}, format="json")
    with sent():
        finalized()
    first = WebhookDelivery.objects.get()
    replay = api.post(f"/api/v1/webhook-deliveries/{first.pk}/replay").json()

    key = ApiKey.objects.get(name="test operator")
    entries = AuditEntry.objects.order_by("pk")
    assert {entry.actor for entry in entries} == {f"key:test operator ({key.prefix})"}
    shown = {"url": "https://erp.example/hooks", "description": "", "enabled": True,
             "event_types": "[]"}  # fmt: skip
    assert [(e.action, e.object_id, e.before, e.after) for e in entries] == [
        ("webhook_endpoint.create", str(endpoint_id), None, shown),
        ("webhook_endpoint.change", str(endpoint_id), shown,
         {**shown, "event_types": '["invoice.paid"]'}),
        ("webhook_endpoint.disable", str(endpoint_id),
         {**shown, "event_types": '["invoice.paid"]'},
         {**shown, "enabled": False, "event_types": '["invoice.paid"]'}),
        ("webhook_endpoint.change", str(endpoint_id),
         {**shown, "enabled": False, "event_types": '["invoice.paid"]'}, shown),
        ("webhook_delivery.replay", str(replay["id"]), None,
         {"event": first.event_id, "endpoint": endpoint_id, "replay_of": first.pk}),
    ]  # fmt: skip
    secret = WebhookEndpoint.objects.get().secret
    assert secret not in json.dumps([(entry.before, entry.after) for entry in entries])


def test_the_same_idempotency_key_registers_one_endpoint_and_replays_once(
    api, clock, endpoint, sent
):
    body = {"url": "https://erp.example/hooks", "description": "ERP"}
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="register-erp")
    again = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="register-erp")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert WebhookEndpoint.objects.count() == 2  # the fixture's and this one

    with sent():
        finalized()
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).get()
    replay_url = f"/api/v1/webhook-deliveries/{delivery.pk}/replay"
    for _ in range(2):
        api.post(replay_url, HTTP_IDEMPOTENCY_KEY="replay-1")
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1
