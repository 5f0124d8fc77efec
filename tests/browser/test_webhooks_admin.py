"""Billing ops register a webhook endpoint and replay a delivery in a real browser; then every
webhooks page of the admin, at desktop (1280 x 800) and phone (390 x 844) widths, is saved to
test-artifacts/ to be looked at, and checked for what a person must be able to read."""

import json
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.conftest import FINALIZED
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import event_emit, webhook_deliveries_retry

from .conftest import admin_log_in, staff_with
from .test_price_corrections import pages_read

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; required under scripts/test, as the browser is
    if os.environ.get("TOKENTILL_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.browser

PERMISSIONS = (
    "add_webhookendpoint",
    "change_webhookendpoint",
    "view_webhookendpoint",
    "view_webhookevent",
    "add_webhookdelivery",
    "view_webhookdelivery",
)


@pytest.fixture
def billing_ops(django_user_model):
    return staff_with(django_user_model, PERMISSIONS)


def test_billing_ops_register_an_endpoint_and_replay_a_delivery(
    live_server, page, billing_ops, receiver, artifacts
):
    base = live_server.url
    admin_log_in(page, base)

    # register an endpoint taking invoice.finalized alone
    page.goto(f"{base}/admin/webhooks/webhookendpoint/add/")
    page.get_by_label("Url:").fill(receiver.url)
    page.get_by_label("Description:").fill("ERP")
    page.get_by_label("invoice.finalized", exact=True).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.event_types, endpoint.enabled) == (
        receiver.url, ["invoice.finalized"], True,
    )  # fmt: skip
    page.goto(f"{base}/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    expect(page.locator(".field-secret")).to_contain_text(endpoint.secret)

    # an invoice finalized: its first attempt is refused, the retry a minute later delivers
    receiver.statuses = [500, 200, 200]
    event = event_emit(event_type="invoice.finalized", data=FINALIZED)
    webhook_deliveries_retry(now=timezone.now() + timedelta(minutes=1))
    first = WebhookDelivery.objects.get()
    assert (first.status, first.attempts) == ("delivered", 2)

    # replayed from the deliveries' list
    page.goto(f"{base}/admin/webhooks/webhookdelivery/")
    page.locator(f"input[name=_selected_action][value='{first.pk}']").check()
    page.locator("select[name=action]").select_option("replay_selected")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("1 new delivery sent.")
    replay = WebhookDelivery.objects.exclude(pk=first.pk).get()
    assert (replay.event, replay.replay_of, replay.status) == (event, first, "delivered")
    assert [json.loads(body)["id"] for _, body in receiver.requests] == [event.event_id] * 3


def test_every_webhooks_page_reads_at_desktop_and_phone_widths(
    live_server, browser, settings, billing_ops, receiver, artifacts
):
    """Screenshots of each page, at both widths; no page is wider than the screen."""
    from webhooks.services import endpoint_create

    endpoint = endpoint_create(url=receiver.url, description="ERP", event_types=["invoice.paid"])
    receiver.statuses = [500, 200]
    event = event_emit(event_type="invoice.paid", data={**FINALIZED, "status": "paid"})
    webhook_deliveries_retry(now=timezone.now() + timedelta(minutes=1))
    delivery = WebhookDelivery.objects.get()
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    base = live_server.url
    pages = {
        "endpoints": "/admin/webhooks/webhookendpoint/",
        "endpoint_add": "/admin/webhooks/webhookendpoint/add/",
        "endpoint": f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        "events": "/admin/webhooks/webhookevent/",
        "event": f"/admin/webhooks/webhookevent/{event.pk}/change/",
        "deliveries": "/admin/webhooks/webhookdelivery/",
        "delivery": f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/",
    }
    assert pages_read(browser, base, pages, "webhooks", artifacts) == []
