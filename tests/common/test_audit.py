"""The audit trail: each change made by ops records who, when, what (before and after) and
why, in the change's transaction; work nobody asked for records nothing."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from common.audit import acting_as
from common.models import AuditEntry
from contracts.models import ApiKey
from contracts.services import customer_api_key_create, customer_update
from portal.services import portal_user_invite
from wallets.models import CreditGrant, Wallet
from wallets.services import InsufficientCredits, credit_grant, wallet_adjust


def entries() -> list[tuple]:
    return list(
        AuditEntry.objects.order_by("id").values_list("actor", "action", "customer", "reason")
    )


def test_an_api_change_records_the_key_and_the_object_after(api):
    api.post(
        "/api/v1/customers",
        {"external_id": "acme", "name": "Acme Corp", "currency": "USD"},
        format="json",
    )

    key = ApiKey.objects.get(name="test operator")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.customer) == (
        f"key:test operator ({key.prefix})",
        "customer.create",
        "acme",
    )
    assert entry.before is None
    assert (entry.after["external_id"], entry.after["currency"]) == ("acme", "USD")


def test_a_change_records_the_object_before_and_after(api, acme):
    api.patch("/api/v1/customers/acme", {"name": "Acme Inc"}, format="json")

    entry = AuditEntry.objects.get(action="customer.change")
    assert (entry.before["name"], entry.after["name"]) == ("Acme Corp", "Acme Inc")


def test_work_nobody_asked_for_records_nothing(acme):
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    customer_update(customer=acme, name="Acme Inc")

    assert entries() == []


def test_a_command_records_under_its_name_with_the_reason(acme):
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    with acting_as("command:adjust"):
        wallet_adjust(
            wallet=Wallet.objects.get(), amount=Decimal("-2.5"), reason="goodwill back",
            created_by="ops",
        )  # fmt: skip

    assert entries() == [("command:adjust", "wallet.adjust", "acme", "goodwill back")]
    assert AuditEntry.objects.get().after == {"amount": "-2.5", "drawn": "2.5"}


def test_a_change_that_is_refused_records_nothing(acme):
    credit_grant(customer=acme, amount="1", source=CreditGrant.Source.PURCHASED)
    with acting_as("command:adjust"), pytest.raises(InsufficientCredits):
        wallet_adjust(wallet=Wallet.objects.get(), amount="-5", reason="too much", created_by="x")

    assert entries() == []


def test_an_admin_change_records_the_signed_in_user(admin_client, admin_user, acme):
    admin_client.post(
        reverse("admin:wallets_grant"),
        {"customer": acme.pk, "amount": "100.00", "source": "purchased", "priority": "0",
         "expires_at": "", "reason": "PO 1234"},
    )  # fmt: skip

    assert entries() == [(f"user:{admin_user.username}", "credit_grant.create", "acme", "PO 1234")]


def test_the_trail_reads_over_the_api_filtered_and_newest_first(api, acme):
    with acting_as("command:setup"):
        credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
        customer_api_key_create(customer=acme, name="acme reader", created_by="ops")

    page = api.get("/api/v1/audit", {"customer": "acme"}).json()

    assert [row["action"] for row in page["results"]] == ["api_key.create", "credit_grant.create"]
    assert "key_hash" not in page["results"][0]["after"]
    assert page["results"][1]["after"]["amount"] == "10"
    assert (
        api.get("/api/v1/audit", {"action": "credit_grant.create"}).json()["results"][0][
            "object_type"
        ]
        == "wallets.creditgrant"
    )


def test_a_customer_key_reads_none_of_the_trail(acme):
    _, key = customer_api_key_create(customer=acme, name="acme reader", created_by="ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    assert client.get("/api/v1/audit").status_code == 403


def test_a_plain_admin_save_records_the_object_before_and_after(admin_client, admin_user, acme):
    with acting_as("command:invite"):
        invited = portal_user_invite(
            customer=acme, email="ada@acme.example", role="viewer", invited_by="ops"
        )

    admin_client.post(
        reverse("admin:portal_portaluser_change", args=[invited.pk]), {"role": "admin"}
    )

    assert entries() == [
        ("command:invite", "portal_user.invite", "acme", ""),
        (f"user:{admin_user.username}", "portaluser.change", "acme", ""),
    ]
    change = AuditEntry.objects.get(action="portaluser.change")
    assert (change.before["role"], change.after["role"]) == ("viewer", "admin")
