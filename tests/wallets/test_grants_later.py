"""Credits granted for later: out of the wallet (no entry, nothing remaining, nothing drawn
or held) until effective, then credited once, by the wallet's next movement or by beat."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from common.audit import acting_as
from common.models import AuditEntry
from contracts.services import customer_create
from wallets.models import Alert, CreditGrant, LedgerEntry, Wallet
from wallets.selectors import grants_all, grants_live, grants_state
from wallets.services import (
    InsufficientCredits,
    credit_grant,
    grants_credit_effective,
    grants_expire,
    hold_place,
    wallet_draw_down,
)

from .test_wallets import assert_consistent

T0 = datetime(2026, 12, 5, 10, tzinfo=UTC)
TOMORROW = T0 + timedelta(days=1)
HOUR = timedelta(hours=1)
PURCHASED, PROMOTIONAL = CreditGrant.Source.PURCHASED, CreditGrant.Source.PROMOTIONAL
D = Decimal


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = T0

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


def figures(wallet: Wallet) -> tuple[Decimal, Decimal]:
    wallet.refresh_from_db()
    return wallet.balance, wallet.available


def test_a_grant_for_later_is_neither_counted_drawn_nor_held_before_it_is_effective(acme, clock):
    later = credit_grant(
        customer=acme, amount="100", source=PURCHASED, effective_at=TOMORROW, reason="PO 7"
    )
    wallet = later.wallet

    assert (later.remaining, later.credited_at, later.effective_at) == (D(0), None, TOMORROW)
    assert figures(wallet) == (D(0), D(0))
    assert not wallet.entries.exists()
    assert list(grants_live(wallet=wallet)) == []
    taken = wallet_draw_down(wallet=wallet, amount="10")
    assert (taken.drawn, taken.short) == (D(0), D(10))
    with pytest.raises(InsufficientCredits):
        hold_place(customer=acme, amount="1")
    assert grants_credit_effective(now=TOMORROW - timedelta(microseconds=1)) == 0
    assert_consistent(wallet)


def test_once_effective_the_wallet_s_next_draw_credits_it_first_and_draws_from_it(acme, clock):
    wallet = credit_grant(
        customer=acme, amount="100", source=PURCHASED, effective_at=TOMORROW, created_by="ops"
    ).wallet

    clock.now = TOMORROW + timedelta(seconds=30)  # before beat's run
    drawn = wallet_draw_down(wallet=wallet, amount="12.5", reference="usage 2026-12-01")

    assert (drawn.drawn, drawn.short) == (D("12.5"), D(0))
    assert figures(wallet) == (D("87.5"), D("87.5"))
    assert list(wallet.entries.values_list("kind", "amount", "created_at", "created_by")) == [
        ("grant", D(100), clock.now, "ops"),
        ("draw_down", D("-12.5"), clock.now, ""),
    ]
    grant = CreditGrant.objects.get()
    assert (grant.remaining, grant.credited_at) == (D("87.5"), clock.now)
    assert grants_credit_effective() == 0  # credited already: beat finds nothing
    assert_consistent(wallet)


def test_a_hold_credits_what_became_effective_before_it_reserves(acme, clock):
    credit_grant(customer=acme, amount="3", source=PURCHASED, effective_at=TOMORROW)

    clock.now = TOMORROW
    hold = hold_place(customer=acme, amount="2")

    assert figures(hold.wallet) == (D(3), D(1))


def test_beat_credits_each_grant_once_effective_and_only_once(acme, clock):
    globex = customer_create(external_id="globex", name="Globex", currency="EUR")
    credit_grant(customer=acme, amount="40", source=PURCHASED, effective_at=TOMORROW)
    credit_grant(customer=globex, amount="7.25", source=PROMOTIONAL, effective_at=TOMORROW)
    credit_grant(customer=acme, amount="5", source=PURCHASED, effective_at=TOMORROW + HOUR)

    clock.now = TOMORROW
    assert grants_credit_effective() == 2
    assert grants_credit_effective() == 0

    assert figures(Wallet.objects.get(customer=acme)) == (D(40), D(40))
    assert figures(Wallet.objects.get(customer=globex)) == (D("7.25"), D("7.25"))
    assert LedgerEntry.objects.filter(kind="grant").count() == 2
    for wallet in Wallet.objects.all():
        assert_consistent(wallet)


def test_a_pending_grant_fires_no_credit_alert_and_counts_for_none(acme, clock):
    first = credit_grant(customer=acme, amount="10", source=PURCHASED)
    credit_grant(customer=acme, amount="100", source=PURCHASED, effective_at=TOMORROW)

    wallet_draw_down(wallet=first.wallet, amount="6")  # 60 % of the first grant

    # the first grant's 50 %, and nothing of the one to come (nothing of it is used)
    assert list(Alert.objects.values_list("grant_id", "share")) == [(first.pk, 50)]


def test_an_expiry_after_the_effective_instant_expires_what_is_left(acme, clock):
    grant = credit_grant(
        customer=acme, amount="20", source=PROMOTIONAL, effective_at=TOMORROW,
        expires_at=TOMORROW + timedelta(days=1),
    )  # fmt: skip
    clock.now = TOMORROW + timedelta(hours=1)
    wallet_draw_down(wallet=grant.wallet, amount="5")

    clock.now = TOMORROW + timedelta(days=2)
    assert grants_expire() == 1

    [state] = grants_state(grants=list(grants_all(wallet=grant.wallet)))
    assert (state.status, state.grant.remaining, state.expired) == ("expired", D(0), D(15))
    assert figures(grant.wallet) == (D(0), D(0))


@pytest.mark.parametrize(
    ("effective_at", "expires_at", "errors"),
    [
        (T0, None, {"effective_at": [
            "Give an instant in the future, or leave it out for credits usable at once."]}),
        (T0 - timedelta(days=1), T0 - timedelta(hours=1), {
            "effective_at": [
                "Give an instant in the future, or leave it out for credits usable at once."],
            "expires_at": ["A grant must expire in the future."]}),
        (TOMORROW, TOMORROW, {"expires_at": ["A grant must expire after it becomes effective."]}),
        (TOMORROW, T0 + timedelta(hours=1), {
            "expires_at": ["A grant must expire after it becomes effective."]}),
    ],
)  # fmt: skip
def test_a_grant_must_start_in_the_future_and_end_after_it_starts(
    acme, clock, effective_at, expires_at, errors
):
    with acting_as("command:test"), pytest.raises(ValidationError) as refused:
        credit_grant(
            customer=acme, amount="10", source=PURCHASED, effective_at=effective_at,
            expires_at=expires_at,
        )  # fmt: skip

    assert refused.value.message_dict == errors
    assert (Wallet.objects.count(), CreditGrant.objects.count(), AuditEntry.objects.count()) == (
        0, 0, 0,
    )  # fmt: skip


def test_the_audit_trail_records_a_grant_for_later_as_granted(acme, clock):
    with acting_as("command:test"):
        grant = credit_grant(
            customer=acme, amount="100", source=PURCHASED, effective_at=TOMORROW, reason="Q1"
        )

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.reason, entry.customer) == ("credit_grant.create", "Q1", "acme")
    assert (entry.after["id"], entry.after["remaining"], entry.after["credited_at"]) == (
        grant.pk, "0", None,
    )  # fmt: skip
    assert entry.after["effective_at"] == TOMORROW.isoformat()
