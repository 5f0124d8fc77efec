"""Many draw-downs at once (the draw-down pass over many customers): each exactly as one
draw-down would take it, asks of one wallet in turn, alerts of every wallet checked."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from contracts.services import customer_create
from wallets.alerts import alert_settings_update
from wallets.models import Alert, CreditGrant, LedgerEntry, Wallet
from wallets.services import (
    DrawDown,
    DrawDownAsk,
    credit_grant,
    wallet_adjust,
    wallets_draw_down,
)

T = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
PURCHASED = CreditGrant.Source.PURCHASED


@pytest.fixture
def wallets(db, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: T)
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    high = credit_grant(customer=acme, amount="5", source=PURCHASED, priority=1)
    low = credit_grant(customer=acme, amount="10", source=PURCHASED)
    other = credit_grant(customer=globex, amount="2", source=PURCHASED)
    alert_settings_update(customer=globex, credit_shares=[50], balance_below=Decimal("1"))
    return high, low, other


def test_each_ask_takes_in_draw_down_order_and_asks_of_one_wallet_follow_each_other(wallets):
    high, low, other = wallets
    acme, globex = high.wallet, other.wallet

    taken = wallets_draw_down(
        asks=[
            DrawDownAsk(wallet=acme, amount=Decimal("7.5"), reference="usage 2026-11-01"),
            DrawDownAsk(wallet=globex, amount=Decimal("3"), reference="usage 2026-11-01"),
            DrawDownAsk(wallet=acme, amount=Decimal("8"), reference="usage 2026-10-01"),
        ]
    )

    # acme: 5 from the priority grant, then 2.5 of the other; then the 7.5 left of 8
    assert taken == [
        DrawDown(drawn=Decimal("7.5"), short=Decimal(0)),
        DrawDown(drawn=Decimal("2"), short=Decimal("1")),
        DrawDown(drawn=Decimal("7.5"), short=Decimal("0.5")),
    ]
    assert Wallet.objects.get(pk=acme.pk).balance == Decimal(0)
    assert Wallet.objects.get(pk=globex.pk).balance == Decimal(0)
    assert {grant.pk: grant.remaining for grant in CreditGrant.objects.all()} == {
        high.pk: Decimal(0),
        low.pk: Decimal(0),
        other.pk: Decimal(0),
    }
    entries = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DRAW_DOWN).order_by("pk")
    assert [(e.grant_id, e.amount, e.reference) for e in entries] == [
        (high.pk, Decimal("-5"), "usage 2026-11-01"),
        (low.pk, Decimal("-2.5"), "usage 2026-11-01"),
        (other.pk, Decimal("-2"), "usage 2026-11-01"),
        (low.pk, Decimal("-7.5"), "usage 2026-10-01"),
    ]
    # the balance equals the sum of the entries, wallet by wallet
    for wallet in (acme, globex):
        assert sum(e.amount for e in LedgerEntry.objects.filter(wallet=wallet)) == Decimal(0)
    # every wallet's alerts, by its customer's settings: acme's default shares for both
    # grants, globex's one share and its low balance
    keys = set(Alert.objects.values_list("customer__external_id", "key"))
    assert keys == {
        *{("acme", f"credits grant {high.pk} {share}%") for share in (50, 75, 90, 100)},
        *{("acme", f"credits grant {low.pk} {share}%") for share in (50, 75, 90, 100)},
        ("globex", f"credits grant {other.pk} 50%"),
        ("globex", f"balance wallet {globex.pk} #1"),
    }


def test_a_refused_amount_draws_nothing_from_any_wallet(wallets):
    high, _, other = wallets
    with pytest.raises(Exception, match="greater than 0"):
        wallets_draw_down(
            asks=[
                DrawDownAsk(wallet=high.wallet, amount=Decimal("1")),
                DrawDownAsk(wallet=other.wallet, amount=Decimal("0")),
            ]
        )
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DRAW_DOWN).exists()
    assert Wallet.objects.get(pk=high.wallet.pk).balance == Decimal("15")
    assert not Alert.objects.exists()


def test_the_entries_are_written_whole_in_the_order_taken(wallets):
    # On PostgreSQL one INSERT over arrays writes them (bulk_create on SQLite): every
    # column as an entry saved by itself would have it.
    high, low, other = wallets
    acme, globex = high.wallet, other.wallet
    reference = 'usage "2026-11" \\ été, {a,b}'

    wallets_draw_down(
        asks=[
            DrawDownAsk(wallet=globex, amount=Decimal("0.000000000001"), reference=reference),
            DrawDownAsk(wallet=acme, amount=Decimal("5.000000000001")),
            DrawDownAsk(wallet=globex, amount=Decimal("1.999999999999"), reference="x"),
        ]
    )
    wallet_adjust(wallet=acme, amount="-0.5", reason="goodwill 'taken back'", created_by="ops")

    entries = LedgerEntry.objects.exclude(kind=LedgerEntry.Kind.GRANT).order_by("pk")
    assert [
        (e.wallet_id, e.grant_id, e.hold_id, e.kind, e.amount, e.reference, e.reason,
         e.created_by, e.created_at)
        for e in entries
    ] == [
        (globex.pk, other.pk, None, "draw_down", Decimal("-0.000000000001"), reference, "", "", T),
        (acme.pk, high.pk, None, "draw_down", Decimal("-5"), "", "", "", T),
        (acme.pk, low.pk, None, "draw_down", Decimal("-0.000000000001"), "", "", "", T),
        (globex.pk, other.pk, None, "draw_down", Decimal("-1.999999999999"), "x", "", "", T),
        (acme.pk, low.pk, None, "adjustment", Decimal("-0.5"), "", "goodwill 'taken back'",
         "ops", T),
    ]  # fmt: skip
    assert Wallet.objects.get(pk=acme.pk).balance == Decimal("9.499999999999")
    assert Wallet.objects.get(pk=globex.pk).balance == Decimal(0)
    for wallet in (acme, globex):
        assert sum(e.amount for e in LedgerEntry.objects.filter(wallet=wallet)) == Decimal(
            Wallet.objects.get(pk=wallet.pk).balance
        )
