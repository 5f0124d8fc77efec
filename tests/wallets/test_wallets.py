"""Wallets: grants in, draw-downs in order, adjustments and expiries; the ledger is the truth."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from metering.models import AppendOnlyError
from tests.db_split import owner_connection
from wallets.models import CreditGrant, Hold, LedgerEntry, Wallet
from wallets.services import (
    InsufficientCredits,
    credit_grant,
    grants_expire,
    grants_warn_expiring,
    wallet_adjust,
    wallet_draw_down,
)

PURCHASED, PROMOTIONAL = CreditGrant.Source.PURCHASED, CreditGrant.Source.PROMOTIONAL


def ledger_sum(entries) -> Decimal:
    """Summed here: SQL's SUM over SQLite's text money would go through floats."""
    return sum(entries.values_list("amount", flat=True), Decimal(0))


def snapshot(wallet: Wallet) -> tuple:
    wallet.refresh_from_db()
    grants = list(wallet.grants.order_by("pk").values_list("pk", "remaining"))
    return wallet.balance, grants, list(wallet.entries.values_list("pk", flat=True))


def assert_consistent(wallet: Wallet) -> None:
    """The cached balance is the sum of the money entries and what is held the negated sum
    of the hold and release entries; each grant's remaining is its entries' sum, and each
    active hold's amount is what its entries hold."""
    wallet.refresh_from_db()
    holds = LedgerEntry.HOLD_KINDS
    assert wallet.balance == ledger_sum(wallet.entries.exclude(kind__in=holds))
    assert wallet.held == -ledger_sum(wallet.entries.filter(kind__in=holds))
    for grant in wallet.grants.all():
        assert grant.remaining == ledger_sum(grant.entries)
        assert grant.remaining >= 0
    for hold in wallet.holds.all():
        held = -ledger_sum(hold.entries)
        assert held == (hold.amount if hold.status == Hold.Status.ACTIVE else 0)
    assert wallet.held >= 0


def test_a_grant_adds_to_the_balance_with_a_ledger_entry(acme):
    grant = credit_grant(customer=acme, amount="100.00", source=PURCHASED, created_by="ops")

    wallet = grant.wallet
    assert (wallet.currency, grant.remaining) == ("USD", Decimal("100"))
    entry = wallet.entries.get()
    assert (entry.kind, entry.amount, entry.grant, entry.created_by) == (
        "grant",
        Decimal("100"),
        grant,
        "ops",
    )
    assert_consistent(wallet)
    assert wallet.balance == Decimal("100")


def test_draw_down_order_is_priority_then_soonest_expiry_then_oldest(acme):
    now = timezone.now()
    late = credit_grant(customer=acme, amount="10", source=PURCHASED)
    soon = credit_grant(
        customer=acme, amount="10", source=PURCHASED, expires_at=now + timedelta(days=3)
    )
    later = credit_grant(
        customer=acme, amount="10", source=PURCHASED, expires_at=now + timedelta(days=9)
    )
    promo = credit_grant(customer=acme, amount="10", source=PROMOTIONAL, priority=5)
    wallet = late.wallet

    result = wallet_draw_down(wallet=wallet, amount="25", reference="rated:1")

    assert (result.drawn, result.short) == (Decimal("25"), Decimal(0))
    drawn = list(
        wallet.entries.filter(kind="draw_down").values_list("grant_id", "amount", "reference")
    )
    assert drawn == [
        (promo.pk, Decimal("-10"), "rated:1"),
        (soon.pk, Decimal("-10"), "rated:1"),
        (later.pk, Decimal("-5"), "rated:1"),
    ]
    assert_consistent(wallet)
    assert wallet.balance == Decimal("15")


def test_a_partial_draw_down_returns_what_the_credits_could_not_cover(acme):
    wallet = credit_grant(customer=acme, amount="3.5", source=PURCHASED).wallet

    result = wallet_draw_down(wallet=wallet, amount="5")

    assert (result.drawn, result.short) == (Decimal("3.5"), Decimal("1.5"))
    assert_consistent(wallet)
    assert wallet.balance == 0


def test_a_draw_down_that_must_be_covered_in_full_takes_nothing_when_it_cannot(acme):
    wallet = credit_grant(customer=acme, amount="3.5", source=PURCHASED).wallet
    before = snapshot(wallet)

    with pytest.raises(InsufficientCredits, match=r"has 3\.5 available; 5 was asked for"):
        wallet_draw_down(wallet=wallet, amount="5", partial=False)

    assert snapshot(wallet) == before


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (0, "Must be greater than 0."),
        ("-1", "Must be greater than 0."),
        (1.5, "never a float"),
        ("abc", "'abc' is not a number."),
        ("NaN", "finite"),
        ("0.0000000000001", "at most 12 places"),
    ],
)
def test_bad_amounts_are_refused_and_nothing_is_stored(acme, amount, message):
    wallet = credit_grant(customer=acme, amount="10", source=PURCHASED).wallet
    before = snapshot(wallet)

    with pytest.raises(ValidationError, match=message):
        credit_grant(customer=acme, amount=amount, source=PURCHASED)
    with pytest.raises(ValidationError, match=message):
        wallet_draw_down(wallet=wallet, amount=amount)

    assert snapshot(wallet) == before


def test_grant_refusals_say_what_is_wrong(acme):
    with pytest.raises(ValidationError) as error:
        credit_grant(
            customer=acme,
            amount="5",
            source="gift",
            expires_at=timezone.now() - timedelta(seconds=1),
        )

    assert error.value.message_dict == {
        "source": ["Use one of purchased, promotional, allowance, refund, adjustment."],
        "expires_at": ["A grant must expire in the future."],
    }
    assert Wallet.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_adjustments_need_a_reason_and_go_either_way(acme):
    wallet = credit_grant(customer=acme, amount="10", source=PURCHASED).wallet
    before = snapshot(wallet)

    with pytest.raises(ValidationError, match="needs a reason"):
        wallet_adjust(wallet=wallet, amount="5", reason=" ", created_by="ops")
    assert snapshot(wallet) == before

    wallet_adjust(wallet=wallet, amount="2.5", reason="goodwill", created_by="ops")
    wallet_adjust(wallet=wallet, amount="-4", reason="double grant", created_by="lead")

    kinds = list(wallet.entries.values_list("kind", "amount", "reason", "created_by"))
    assert kinds[1:] == [
        ("grant", Decimal("2.5"), "goodwill", "ops"),
        ("adjustment", Decimal("-4"), "double grant", "lead"),
    ]
    assert_consistent(wallet)
    assert wallet.balance == Decimal("8.5")
    with pytest.raises(InsufficientCredits):
        wallet_adjust(wallet=wallet, amount="-9", reason="too much", created_by="ops")


def test_expiry_takes_what_is_left_once(acme, monkeypatch):
    now = timezone.now()
    expiring = credit_grant(
        customer=acme, amount="10", source=PROMOTIONAL, expires_at=now + timedelta(days=1)
    )
    credit_grant(customer=acme, amount="5", source=PURCHASED)
    wallet = expiring.wallet
    wallet_draw_down(wallet=wallet, amount="4")  # from the expiring grant first

    later = now + timedelta(days=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert grants_expire() == 1
    assert grants_expire() == 0  # run twice: nothing more

    entry = wallet.entries.get(kind="expiry")
    assert (entry.grant_id, entry.amount) == (expiring.pk, Decimal("-6"))
    assert_consistent(wallet)
    assert wallet.balance == Decimal("5")
    # an expired grant is never drawn from
    assert wallet_draw_down(wallet=wallet, amount="6").short == Decimal("1")


def test_ledger_entries_are_never_changed(acme):
    entry = credit_grant(customer=acme, amount="1", source=PURCHASED).wallet.entries.get()

    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_to_update_the_ledger(acme):
    """Even the owner is refused by the trigger (the runtime role, before it, by its
    privileges: tests/common/test_db_roles.py)."""
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql":
        pytest.skip("the append-only triggers are PostgreSQL's")
    credit_grant(customer=acme, amount="1", source=PURCHASED)
    with (
        owner_connection() as owner,
        pytest.raises(DatabaseError, match="append-only"),
        owner.cursor() as cursor,
    ):
        cursor.execute("UPDATE wallets_ledgerentry SET amount = 100")
    assert LedgerEntry.objects.get().amount == Decimal("1")


def test_spent_grants_are_not_drawn_from_again(acme):
    spent = credit_grant(customer=acme, amount="5.00", source=PURCHASED)
    credit_grant(customer=acme, amount="5", source=PURCHASED)
    wallet = spent.wallet
    # 5.00 - 5.00 leaves 0.00, which SQLite keeps as the text '0.00' (after any number)
    wallet_draw_down(wallet=wallet, amount="5.00")

    wallet_draw_down(wallet=wallet, amount="1")

    assert list(wallet.entries.filter(kind="draw_down").values_list("grant_id", "amount")) == [
        (spent.pk, Decimal("-5")),
        (spent.pk + 1, Decimal("-1")),
    ]
    assert list(CreditGrant.objects.filter(remaining__gt=0).values_list("pk", flat=True)) == [
        spent.pk + 1
    ]
    assert CreditGrant.objects.filter(remaining__lte=0).get() == spent


def test_customers_are_warned_once_before_credits_expire(acme, mailoutbox):
    now = timezone.now()
    soon = credit_grant(
        customer=acme, amount="25.50", source=PROMOTIONAL, expires_at=now + timedelta(days=6)
    )
    credit_grant(customer=acme, amount="5", source=PURCHASED, expires_at=now + timedelta(days=9))
    credit_grant(customer=acme, amount="5", source=PURCHASED)  # never expires

    assert grants_warn_expiring(now=now) == 1
    assert grants_warn_expiring(now=now) == 0  # once

    (mail,) = mailoutbox
    assert mail.to == ["billing@acme.example"]
    assert mail.subject == f"25.5 USD of credits expire on {soon.expires_at:%Y-%m-%d}"
    assert "promotional credits expire at" in mail.body
    # the 9-day grant is warned when it comes within the 7 days
    assert grants_warn_expiring(now=now + timedelta(days=3)) == 1
    assert len(mailoutbox) == 2
