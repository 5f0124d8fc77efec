"""GET /api/v1/customers/{id}/wallet and the wallet's admin page."""

from datetime import timedelta
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from wallets.models import CreditGrant
from wallets.services import credit_grant, wallet_draw_down


def test_the_wallet_shows_balance_and_live_grants_in_draw_down_order(acme, api):
    expires = timezone.now() + timedelta(days=30)
    plain = credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    promo = credit_grant(
        customer=acme, amount="20", source="promotional", priority=1, expires_at=expires
    )
    wallet_draw_down(wallet=plain.wallet, amount="25")

    answer = api.get("/api/v1/customers/acme/wallet")

    assert answer.status_code == 200
    body = answer.json()
    assert (body["balance"], body["available"], body["currency"]) == (
        "95.000000000000",
        "95.000000000000",
        "USD",
    )
    assert [(g["id"], g["source"], g["remaining"]) for g in body["grants"]] == [
        (plain.pk, "purchased", "95.000000000000"),
    ]  # the promotional grant (priority 1) was drawn first, and is spent
    assert promo.pk not in [g["id"] for g in body["grants"]]


def test_a_customer_without_credits_has_an_empty_wallet(acme, api):
    body = api.get("/api/v1/customers/acme/wallet").json()

    assert (body["balance"], body["grants"]) == ("0.000000000000", [])


def test_unknown_customers_and_missing_keys_are_refused(db, api, client):
    assert api.get("/api/v1/customers/nobody/wallet").status_code == 404
    assert client.get("/api/v1/customers/nobody/wallet").status_code == 401


def test_the_admin_shows_the_wallet_with_grants_and_ledger(acme, admin_client):
    grant = credit_grant(customer=acme, amount="12.5", source="refund", reason="ticket 42")

    page = admin_client.get(reverse("admin:wallets_wallet_change", args=[grant.wallet.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert "ticket 42" in text and "Refund" in text
    assert Decimal("12.5") == grant.wallet.balance


def test_staff_grant_credits_in_the_admin_recorded_with_who(acme, admin_client, admin_user):
    page = admin_client.post(
        reverse("admin:wallets_grant"),
        {"customer": acme.pk, "amount": "100.00", "source": "purchased", "priority": "0",
         "expires_at": "", "reason": "PO 1234"},
    )  # fmt: skip

    wallet = acme.wallets.get()
    assert page.status_code == 302
    assert page["Location"] == reverse("admin:wallets_wallet_change", args=[wallet.pk])
    entry = wallet.entries.get()
    assert (entry.kind, entry.amount, entry.reason, entry.created_by) == (
        "grant",
        Decimal("100"),
        "PO 1234",
        admin_user.username,
    )


def test_an_adjustment_needs_a_reason_and_cannot_overdraw(acme, admin_client):
    wallet = credit_grant(customer=acme, amount="10", source="purchased").wallet
    url = reverse("admin:wallets_adjust", args=[wallet.pk])
    entries = list(wallet.entries.values_list("pk", flat=True))

    no_reason = admin_client.post(url, {"amount": "-5", "reason": ""})
    overdraw = admin_client.post(url, {"amount": "-50", "reason": "mistake"})

    assert no_reason.status_code == overdraw.status_code == 200
    assert no_reason.context["form"].errors == {"reason": ["This field is required."]}
    assert "has 10 available; 50 was asked for" in overdraw.context["form"].errors["amount"][0]
    assert list(wallet.entries.values_list("pk", flat=True)) == entries

    done = admin_client.post(url, {"amount": "-4", "reason": "double grant"})
    assert done.status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("6")


def test_staff_without_the_permission_cannot_grant(acme, client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)

    answer = client.post(
        reverse("admin:wallets_grant"), {"customer": acme.pk, "amount": "5", "source": "refund"}
    )

    assert answer.status_code == 403
    assert not acme.wallets.exists()
