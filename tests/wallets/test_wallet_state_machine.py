"""A hypothesis state machine over grants, draw-downs, holds, adjustments and expiries:
after every step the balance and what is held are the ledger's sums, no grant is below
zero, no hold reserves more than was available, and draw-downs take from the grants in
their order (checked against a model kept beside the wallet)."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from contracts.services import customer_create
from wallets.models import CreditGrant, Hold
from wallets.services import (
    InsufficientCredits,
    credit_grant,
    grants_expire,
    hold_place,
    hold_release,
    holds_expire,
    holds_settle,
    wallet_adjust,
    wallet_draw_down,
)

from .test_wallets import assert_consistent

AMOUNTS = st.decimals(min_value="0.01", max_value="500", places=2)
_machines = itertools.count()  # a customer per run: every run shares the test's transaction


class WalletMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.now = timezone.now()
        self.customer = customer_create(
            external_id=f"sm-{next(_machines)}", name="State machine", currency="USD"
        )
        self.wallet = None
        self.model = {}  # grant pk -> [priority, expires_at or None, pk, remaining]
        self.holds = {}  # active hold pk -> [amount, expires_at]

    def _order(self):
        live = [g for g in self.model.values() if g[3] > 0 and (g[1] is None or g[1] > self.now)]
        far = self.now + timedelta(days=10_000)
        return sorted(live, key=lambda g: (-g[0], g[1] or far, g[2]))

    @rule(amount=AMOUNTS, priority=st.integers(0, 3), days=st.none() | st.integers(1, 30))
    def grant(self, amount, priority, days):
        expires = self.now + timedelta(days=days) if days else None
        grant = credit_grant(
            customer=self.customer,
            amount=amount,
            source=CreditGrant.Source.PURCHASED,
            priority=priority,
            expires_at=expires,
        )
        self.wallet = grant.wallet
        self.model[grant.pk] = [priority, expires, grant.pk, amount]

    @rule(amount=AMOUNTS, partial=st.booleans())
    def draw_down(self, amount, partial):
        if self.wallet is None:
            return
        order = self._order()
        available = sum((g[3] for g in order), Decimal(0))
        if not partial and available < amount:
            with pytest.raises(InsufficientCredits):
                wallet_draw_down(wallet=self.wallet, amount=amount, partial=False)
            return
        result = wallet_draw_down(wallet=self.wallet, amount=amount, partial=partial)
        left = amount
        for g in order:  # the model takes in the documented order
            take = min(g[3], left)
            g[3] -= take
            left -= take
        assert (result.drawn, result.short) == (amount - left, left)

    def _available(self):
        held = sum((h[0] for h in self.holds.values()), Decimal(0))
        return sum((g[3] for g in self.model.values()), Decimal(0)) - held

    def _expire_holds(self):
        self.holds = {pk: h for pk, h in self.holds.items() if h[1] > self.now}

    @rule(amount=AMOUNTS, up_to=st.booleans())
    def hold(self, amount, up_to):
        if self.wallet is None:
            return
        self._expire_holds()  # a new hold releases the wallet's expired ones first
        available = max(self._available(), Decimal(0))
        if amount > available and not up_to:
            with pytest.raises(InsufficientCredits):
                hold_place(customer=self.customer, amount=amount)
            return
        hold = hold_place(customer=self.customer, amount=amount, up_to=up_to)
        assert hold.amount == min(amount, available)
        self.holds[hold.pk] = [hold.amount, hold.expires_at]

    @rule(data=st.data())
    def release(self, data):
        if not self.holds:
            return
        pk = data.draw(st.sampled_from(sorted(self.holds)))
        assert hold_release(hold=Hold.objects.get(pk=pk)) is True
        del self.holds[pk]

    @rule(data=st.data(), cost=AMOUNTS)
    def settle(self, data, cost):
        """A held call is rated: its cost is drawn (past the credits: short), its hold let go."""
        if not self.holds:
            return
        pk = data.draw(st.sampled_from(sorted(self.holds)))
        self.draw_down(cost, partial=True)
        customer = {pk: self.customer.pk}
        assert holds_settle(costs={pk: cost}, customer_ids=customer) == 1
        del self.holds[pk]

    @rule(minutes=st.integers(1, 10))
    def minutes_pass_and_holds_expire(self, minutes):
        self.now += timedelta(minutes=minutes)
        holds_expire(now=self.now)
        self._expire_holds()

    @rule(amount=AMOUNTS)
    def adjust_up(self, amount):
        if self.wallet is None:
            return
        grant = wallet_adjust(wallet=self.wallet, amount=amount, reason="test", created_by="sm")
        self.model[grant.pk] = [0, None, grant.pk, amount]

    @rule(days=st.integers(1, 40))
    def time_passes_and_grants_expire(self, days):
        self.now += timedelta(days=days)
        grants_expire(now=self.now)
        holds_expire(now=self.now)
        self._expire_holds()
        for g in self.model.values():
            if g[1] is not None and g[1] <= self.now:
                g[3] = Decimal(0)

    @invariant()
    def ledger_and_model_agree(self):
        if self.wallet is None:
            return
        assert_consistent(self.wallet)
        stored = dict(self.wallet.grants.values_list("pk", "remaining"))
        assert stored == {pk: g[3] for pk, g in self.model.items()}
        assert self.wallet.balance == sum((g[3] for g in self.model.values()), Decimal(0))
        active = dict(self.wallet.holds.filter(status="active").values_list("pk", "amount"))
        assert active == {pk: h[0] for pk, h in self.holds.items()}
        assert self.wallet.held == sum(active.values(), Decimal(0))


@pytest.mark.django_db
def test_wallet_state_machine(monkeypatch):
    machine_now = {}

    class Machine(WalletMachine):
        def __init__(self):
            super().__init__()
            machine_now["machine"] = self

    # draw-downs and grants see the machine's clock, so expiry is in its hands
    monkeypatch.setattr(
        timezone, "now", lambda: machine_now["machine"].now if machine_now else _real_now()
    )
    Machine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    Machine.TestCase().runTest()


_real_now = timezone.now
