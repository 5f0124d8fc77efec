"""The invoicing tests' shared scenario: a clock they move, and acme's amended November."""

from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from contracts.services import contract_amend, contract_create
from wallets.models import CreditGrant
from wallets.services import credit_grant

from .conftest import NOVEMBER

HALFWAY = datetime(2026, 11, 16, tzinfo=UTC)  # 15 of November's 30 days on each side


class Clock:
    def __init__(self, now: datetime):
        self.now = now


def clock_set(monkeypatch, now: datetime) -> Clock:
    """A clock the test moves (after the `now` fixture the rate card needs froze one)."""
    clock = Clock(now)
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


def november_contract(customer, rate_card):
    """The customer from November 1: a fee of 30.00 and an allowance of 10.00 a month; from
    November 16 (half the month) a fee of 60.00 and 10 % off; 5.00 of prepaid credits."""
    contract = contract_create(
        customer=customer,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        fixed_fee=Decimal("30"),
        included_allowance=Decimal("10"),
    )
    contract_amend(
        contract=contract,
        effective_from=HALFWAY,
        fixed_fee=Decimal("60"),
        discount_percent=Decimal("10"),
    )
    credit_grant(customer=customer, amount="5", source=CreditGrant.Source.PURCHASED)
    return contract
