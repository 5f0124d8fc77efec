"""Holds: credits reserved before a call, released, settled or expired; never lost or doubled."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from contracts.services import customer_create
from wallets.models import CreditGrant, Hold, LedgerEntry, Wallet
from wallets.services import (
    InsufficientCredits,
    credit_grant,
    hold_place,
    hold_release,
    holds_expire,
    holds_settle,
    wallet_draw_down,
)

from .test_wallets import assert_consistent, snapshot

START = timezone.now().replace(microsecond=0)


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves: `clock.now += timedelta(...)`."""

    class Clock:
        now = START

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def wallet(acme, clock) -> Wallet:
    return credit_grant(customer=acme, amount="10.00", source=CreditGrant.Source.PURCHASED).wallet


def figures(wallet: Wallet) -> tuple[Decimal, Decimal, Decimal]:
    wallet.refresh_from_db()
    return wallet.balance, wallet.held, wallet.available


def test_a_hold_reserves_credits_without_touching_the_balance_or_any_grant(wallet, settings):
    settings.TOKENTILL_HOLD_SECONDS = 120
    hold = hold_place(customer=wallet.customer, amount="4.25", estimate="6", reference="call 1")

    assert figures(wallet) == (Decimal("10"), Decimal("4.25"), Decimal("5.75"))
    assert (hold.amount, hold.estimate, hold.status, hold.reference) == (
        Decimal("4.25"), Decimal("6"), "active", "call 1",
    )  # fmt: skip
    assert hold.expires_at == START + timedelta(seconds=120)
    entry = wallet.entries.get(kind="hold")
    assert (entry.amount, entry.hold, entry.grant, entry.reference) == (
        Decimal("-4.25"), hold, None, "call 1",
    )  # fmt: skip
    assert wallet.grants.get().remaining == Decimal("10")
    assert_consistent(wallet)


def test_a_hold_the_available_credits_cannot_cover_reserves_nothing(wallet):
    hold_place(customer=wallet.customer, amount="7")
    before = snapshot(wallet), list(Hold.objects.values_list("pk", "status"))

    with pytest.raises(InsufficientCredits, match=r"has 3 available; 3\.01 was asked for"):
        hold_place(customer=wallet.customer, amount="3.01")

    assert (snapshot(wallet), list(Hold.objects.values_list("pk", "status"))) == before
    assert figures(wallet) == (Decimal("10"), Decimal("7"), Decimal("3"))


def test_up_to_reserves_what_is_available_for_usage_billed_in_arrears(wallet):
    hold_place(customer=wallet.customer, amount="8")

    hold = hold_place(customer=wallet.customer, amount="5", estimate="5", up_to=True)
    empty = hold_place(customer=wallet.customer, amount="1", up_to=True)

    assert (hold.amount, hold.estimate, empty.amount) == (Decimal("2"), Decimal("5"), Decimal(0))
    assert figures(wallet) == (Decimal("10"), Decimal("10"), Decimal(0))
    assert not empty.entries.exists()  # a hold of nothing moves nothing
    assert_consistent(wallet)


@pytest.mark.parametrize("amount", ["-1", 1.5, "abc"])
def test_a_bad_amount_is_refused_and_nothing_is_held(wallet, amount):
    before = snapshot(wallet)

    with pytest.raises(ValidationError):
        hold_place(customer=wallet.customer, amount=amount)

    assert snapshot(wallet) == before
    assert not Hold.objects.exists()


def test_releasing_gives_the_credits_back_once(wallet, clock):
    hold = hold_place(customer=wallet.customer, amount="4")
    clock.now += timedelta(seconds=5)

    assert hold_release(hold=hold) is True
    assert hold_release(hold=hold) is False

    hold.refresh_from_db()
    assert (hold.status, hold.closed_at) == ("released", clock.now)
    assert figures(wallet) == (Decimal("10"), Decimal(0), Decimal("10"))
    assert list(hold.entries.values_list("kind", "amount")) == [
        ("hold", Decimal("-4")),
        ("release", Decimal("4")),
    ]
    assert_consistent(wallet)


def test_holds_expire_on_time_and_a_new_hold_releases_expired_ones_first(wallet, clock, settings):
    settings.TOKENTILL_HOLD_SECONDS = 60
    first = hold_place(customer=wallet.customer, amount="6")
    clock.now += timedelta(seconds=30)
    second = hold_place(customer=wallet.customer, amount="4")

    clock.now += timedelta(seconds=29)
    assert holds_expire() == 0  # the first has one second left
    clock.now += timedelta(seconds=1)
    # the first has expired but is not released yet: a new hold releases it first
    third = hold_place(customer=wallet.customer, amount="5")

    statuses = dict(Hold.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "expired", second.pk: "active", third.pk: "active"}
    assert figures(wallet) == (Decimal("10"), Decimal("9"), Decimal("1"))

    clock.now += timedelta(seconds=30)
    assert holds_expire() == 1
    assert holds_expire() == 0
    assert Hold.objects.get(pk=second.pk).status == "expired"
    assert figures(wallet) == (Decimal("10"), Decimal("5"), Decimal("5"))
    assert_consistent(wallet)


def test_settling_releases_the_hold_and_records_the_cost_once(wallet, acme):
    hold = hold_place(customer=wallet.customer, amount="4")
    wallet_draw_down(wallet=wallet, amount="1.5")  # the rated call's cost, drawn by rating

    assert holds_settle(costs={hold.pk: Decimal("1.5")}, customer_ids={hold.pk: acme.pk}) == 1
    assert holds_settle(costs={hold.pk: Decimal("1.5")}, customer_ids={hold.pk: acme.pk}) == 0

    hold.refresh_from_db()
    assert (hold.status, hold.settled_cost) == ("settled", Decimal("1.5"))
    assert figures(wallet) == (Decimal("8.5"), Decimal(0), Decimal("8.5"))
    assert_consistent(wallet)


def test_an_event_of_another_customer_cannot_settle_a_hold(wallet):
    hold = hold_place(customer=wallet.customer, amount="4")
    other = customer_create(external_id="globex", name="Globex", currency="USD")

    assert holds_settle(costs={hold.pk: Decimal(1)}, customer_ids={hold.pk: other.pk}) == 0

    assert Hold.objects.get().status == "active"
    assert figures(wallet) == (Decimal("10"), Decimal("4"), Decimal("6"))


def test_the_ledger_refuses_an_entry_that_moves_neither_a_grant_nor_a_hold(wallet):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=wallet, kind="hold", amount=Decimal(-1), created_at=timezone.now()
        )


def test_the_admin_shows_active_holds_and_their_ledger_entries(wallet, admin_client):
    from django.urls import reverse

    active = hold_place(customer=wallet.customer, amount="4", reference="chat 7")
    released = hold_place(customer=wallet.customer, amount="1", reference="chat 8")
    hold_release(hold=released)

    page = admin_client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]))

    assert page.status_code == 200
    holds = next(f for f in page.context["inline_admin_formsets"] if f.opts.model is Hold)
    assert [form.original for form in holds] == [active]
    content = page.content.decode()
    assert "Active holds" in content and "chat 8" in content  # released: on the ledger only
