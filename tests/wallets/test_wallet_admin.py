"""Wallets in the admin as billing ops read them: every amount with the currency's minor
places, thousands separators and code (docs/development/money.md, "Money on screen"), and
a grant's expiry picked with the admin's date and time pickers."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from contracts.services import customer_create
from tests.admin_pages import shown
from wallets.alerts import alert_settings_update
from wallets.models import Alert, CreditGrant, LedgerEntry
from wallets.services import credit_grant, hold_place, wallet_draw_down


@pytest.fixture
def spent(acme):
    """acme's 10.00 USD of credits (under the 20.00 balance threshold: an alert), 8.004
    drawn: 1.996 left, under the 5.00 top-up threshold (a top-up of 40.00 is requested)."""
    alert_settings_update(
        customer=acme,
        budget=Decimal("1500"),
        balance_below=Decimal("20"),
        topup_below=Decimal("5"),
        topup_amount=Decimal("40"),
    )
    grant = credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    wallet_draw_down(wallet=grant.wallet, amount="8.004", reference="usage 2026-11")
    return grant.wallet


def test_a_grant_of_100_usd_shows_as_100_00_usd_on_the_list_and_the_page(acme, admin_client):
    wallet = credit_grant(customer=acme, amount="100", source="purchased", reason="PO 77").wallet

    listed = admin_client.get(reverse("admin:wallets_wallet_changelist"))
    page = admin_client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]))

    assert shown(listed, "balance_shown") == ["100.00 USD"]
    assert shown(listed, "held_shown") == ["0.00 USD"]
    assert shown(listed, "available_shown") == ["100.00 USD"]
    assert shown(page, "balance_shown") == ["100.00 USD"]
    assert shown(page, "amount_shown") == ["100.00 USD", "100.00 USD"]  # the grant, its entry
    assert shown(page, "remaining_shown") == ["100.00 USD"]
    assert shown(page, "moves") == ["Purchased 100.00 USD"]
    assert "100.000000000000" not in page.content.decode()


def test_what_is_left_shows_rounded_half_up_to_the_cent_and_never_minus_zero(spent, admin_client):
    # a draw that rounds to nothing: -0.004 is 0.00, not -0.00
    wallet_draw_down(wallet=spent, amount="0.004", reference="usage 2026-12")

    page = admin_client.get(reverse("admin:wallets_wallet_change", args=[spent.pk]))

    # 10 - 8.004 - 0.004 = 1.992: 1.99; the grant's remaining the same
    assert shown(page, "balance_shown") == ["1.99 USD"]
    assert shown(page, "available_shown") == ["1.99 USD"]
    assert shown(page, "remaining_shown") == ["1.99 USD"]
    # the ledger, oldest first: the grant, 8.004 drawn (8.00), 0.004 drawn (0.00)
    assert shown(page, "amount_shown") == ["10.00 USD", "10.00 USD", "-8.00 USD", "0.00 USD"]
    assert [entry.amount for entry in LedgerEntry.objects.order_by("id")] == [
        Decimal(10), Decimal("-8.004"), Decimal("-0.004"),
    ]  # fmt: skip


def test_a_yen_wallet_shows_whole_yen_with_separators(db, admin_client):
    umbrella = customer_create(external_id="umbrella", name="Umbrella", currency="JPY")
    wallet = credit_grant(customer=umbrella, amount="1234.5", source="purchased").wallet
    hold_place(customer=umbrella, amount="200", reference="call 1")

    listed = admin_client.get(reverse("admin:wallets_wallet_changelist"))
    page = admin_client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]))

    # 1234.5 half up is 1,235; available 1234.5 - 200 = 1034.5, 1,035
    assert shown(listed, "balance_shown") == ["1,235 JPY"]
    assert shown(listed, "held_shown") == ["200 JPY"]
    assert shown(listed, "available_shown") == ["1,035 JPY"]
    assert shown(page, "estimate_shown") == ["200 JPY"]  # the active hold's
    assert shown(page, "moves")[0] == "Purchased 1,235 JPY"


def test_alert_settings_alerts_and_top_ups_show_money_with_the_customers_currency(
    spent, admin_client
):
    settings_list = admin_client.get(reverse("admin:wallets_alertsettings_changelist"))
    topups = admin_client.get(reverse("admin:wallets_topuprequest_changelist"))
    balance_alert = Alert.objects.get(kind=Alert.Kind.BALANCE)
    alert_page = admin_client.get(reverse("admin:wallets_alert_change", args=[balance_alert.pk]))

    assert shown(settings_list, "budget_shown") == ["1,500.00 USD"]
    assert shown(settings_list, "balance_below_shown") == ["20.00 USD"]
    assert shown(settings_list, "topup_below_shown") == ["5.00 USD"]
    assert shown(settings_list, "topup_amount_shown") == ["40.00 USD"]
    assert shown(topups, "customer_shown") == ["acme"]
    assert shown(topups, "amount_shown") == ["40.00 USD"]
    assert shown(topups, "balance_shown") == ["2.00 USD"]  # 1.996, half up
    # the balance alert fired at the grant: 10.00 was under 20.00 already
    assert shown(alert_page, "threshold_shown") == ["20.00 USD"]
    assert shown(alert_page, "amount_shown") == ["10.00 USD"]
    assert shown(alert_page, "grant_shown") == ["-"]  # a balance alert names no grant


def test_the_grant_page_offers_the_admins_pickers_and_quick_expiries(acme, admin_client):
    page = admin_client.get(reverse("admin:wallets_grant"))

    html = page.content.decode()
    assert 'name="expires_at_0"' in html and 'name="expires_at_1"' in html  # date, time
    assert "admin/js/admin/DateTimeShortcuts.js" in html  # the calendar and the clock
    for days in (30, 90, 365):
        assert f'data-quick-for="id_expires_at" data-days="{days}">in {days} days</a>' in html


def test_a_grant_expires_at_the_picked_instant(acme, admin_client):
    answer = admin_client.post(
        reverse("admin:wallets_grant"),
        {"customer": acme.pk, "amount": "100", "source": "purchased", "priority": "0",
         "expires_at_0": "2031-01-31", "expires_at_1": "23:59:00", "reason": "PO 1234"},
    )  # fmt: skip

    grant = CreditGrant.objects.get()
    assert answer.status_code == 302
    assert grant.expires_at == datetime(2031, 1, 31, 23, 59, tzinfo=UTC)
    assert [str(m) for m in get_messages(answer.wsgi_request)] == [
        "Granted 100.00 USD to Acme Corp (acme)."
    ]


def test_a_grant_for_later_waits_outside_the_wallet_and_the_customer_page_shows_it(
    acme, admin_client
):
    admin_client.post(
        reverse("admin:wallets_grant"),
        {"customer": acme.pk, "amount": "40", "source": "promotional", "priority": "0",
         "effective_at_0": "2030-01-01", "effective_at_1": "00:00:00", "reason": "New year"},
    )  # fmt: skip

    grant = CreditGrant.objects.get()
    assert (grant.effective_at, grant.credited_at, grant.wallet.balance) == (
        datetime(2030, 1, 1, tzinfo=UTC),
        None,
        Decimal(0),
    )
    page = admin_client.get(reverse("admin:contracts_customer_change", args=[acme.pk]))
    html = page.content.decode()
    assert "Credits to come" in html
    assert '<td data-label="Amount" class="tt-money">40.00 USD</td>' in html
    assert '<td data-label="Effective (UTC)" class="nowrap">2030-01-01 00:00</td>' in html


@pytest.mark.parametrize(
    ("date", "time", "error"),
    [
        ("2031-01-31", "", "Enter a valid time."),
        ("31/01/2031", "10:00:00", "Enter a valid date."),
        ("2020-01-01", "00:00:00", "A grant must expire in the future."),
    ],
)
def test_a_wrong_expiry_is_refused_on_its_field_and_nothing_is_granted(
    acme, admin_client, date, time, error
):
    answer = admin_client.post(
        reverse("admin:wallets_grant"),
        {"customer": acme.pk, "amount": "100", "source": "purchased", "priority": "0",
         "expires_at_0": date, "expires_at_1": time},
    )  # fmt: skip

    assert answer.status_code == 200
    assert answer.context["form"].errors == {"expires_at": [error]}
    assert not CreditGrant.objects.exists()
    assert not acme.wallets.exists()
