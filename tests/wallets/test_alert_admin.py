"""Alerts and top-ups in the admin: settings saved through the service, deliveries retried,
top-ups marked paid once."""

from decimal import Decimal

import pytest
from django.urls import reverse

from wallets.alerts import alert_settings_update
from wallets.models import AlertDelivery, AlertSettings, CreditGrant, TopUpRequest
from wallets.services import credit_grant, wallet_draw_down

SETTINGS_FORM = {
    "budget": "",
    "budget_shares": "[50, 75, 90, 100]",
    "credit_shares": "[50, 75, 90, 100]",
    "balance_below": "",
    "emails": "",
    "webhook_url": "",
    "topup_below": "",
    "topup_amount": "",
}


def test_billing_ops_set_a_customers_alerts(acme, admin_client):
    page = admin_client.post(
        reverse("admin:wallets_alertsettings_add"),
        {
            **SETTINGS_FORM,
            "customer": acme.pk,
            "budget": "250",
            "budget_shares": "[80, 100]",
            "emails": "ops@acme.example cfo@acme.example",
            "webhook_url": "https://hooks.acme.example/tokentill",
        },
    )

    assert page.status_code == 302
    settings = AlertSettings.objects.get()
    assert (settings.budget, settings.budget_shares, settings.recipients()) == (
        Decimal(250), [80, 100], ["ops@acme.example", "cfo@acme.example"],
    )  # fmt: skip
    shown = admin_client.get(reverse("admin:wallets_alertsettings_change", args=[settings.pk]))
    assert settings.webhook_secret in shown.content.decode()


def test_wrong_settings_are_form_errors_and_nothing_is_stored(acme, admin_client):
    page = admin_client.post(
        reverse("admin:wallets_alertsettings_add"),
        {**SETTINGS_FORM, "customer": acme.pk, "budget_shares": "[50, 50]", "topup_below": "5"},
    )

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {
        "budget_shares": ["Each percentage once."],
        "topup_amount": ["Set both the top-up threshold and amount, or neither."],
    }
    assert AlertSettings.objects.count() == 0


@pytest.fixture
def failed_delivery(acme) -> AlertDelivery:
    grant = credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    wallet_draw_down(wallet=grant.wallet, amount="5")
    AlertDelivery.objects.update(status="failed", attempts=6, next_attempt_at=None)
    return AlertDelivery.objects.get()


def test_failed_deliveries_are_listed_and_retried_now(
    failed_delivery, admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    url = reverse("admin:wallets_alertdelivery_changelist")
    assert failed_delivery.target in admin_client.get(url, {"status": "failed"}).content.decode()
    assert (
        failed_delivery.target not in admin_client.get(url, {"status": "pending"}).content.decode()
    )

    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(
            url, {"action": "retry_selected", "_selected_action": [failed_delivery.pk]}
        )

    assert page.status_code == 302
    failed_delivery.refresh_from_db()
    assert (failed_delivery.status, failed_delivery.attempts) == ("delivered", 7)
    assert [mail.subject for mail in mailoutbox] == [
        "acme: 50 % of your 10.00 USD purchased credits used"
    ]


def test_a_top_up_marked_paid_twice_is_granted_once(acme, admin_client, admin_user):
    alert_settings_update(customer=acme, topup_below=Decimal("5"), topup_amount=Decimal("40"))
    wallet = credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED).wallet
    wallet_draw_down(wallet=wallet, amount="8")
    topup = TopUpRequest.objects.get()
    url = reverse("admin:wallets_topuprequest_changelist")

    for _ in range(2):
        page = admin_client.post(
            url, {"action": "mark_paid_selected", "_selected_action": [topup.pk]}
        )
        assert page.status_code == 302

    topup.refresh_from_db()
    assert (topup.status, topup.closed_by, topup.grant.amount) == (
        "paid", admin_user.username, Decimal(40),
    )  # fmt: skip
    wallet.refresh_from_db()
    assert wallet.balance == Decimal(42)
    assert wallet.grants.filter(source="purchased").count() == 2  # the first grant, the top-up


def test_alerts_and_top_ups_are_shown_read_only(failed_delivery, admin_client):
    alert = failed_delivery.alert
    for name in ("alert", "alertdelivery", "topuprequest", "alertsettings"):
        assert admin_client.get(reverse(f"admin:wallets_{name}_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:wallets_alert_change", args=[alert.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert alert.message in text and "billing@acme.example" in text and "Failed" in text
    assert admin_client.get(reverse("admin:wallets_alert_add")).status_code == 403
