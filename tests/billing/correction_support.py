"""The price corrections' shared scenario, worked out by hand.

The Standard card prices gpt-4o's output at 10.00 per 1M tokens from November 1, 2026. Two
customers are on it from November 1 (monthly periods from the 1st):

- acme, with a fee of 30.00 a month: one call of 1M output tokens on November 5 and two on
  November 28 (10.00 each); November is closed on December 2 into INV-000001, 60.00
  (30.00 + 30.00), unpaid. One more call on December 3 (10.00): December is open.
- globex, no fee: one call of 2M output tokens on December 2 (20.00). Its November, with
  nothing in it, is closed too (INV-000002, 0.00).

It is now Thursday, December 4 2026, noon. Last week, from Friday November 27, gpt-4o's
output should have been 5.00 per 1M: the correction halves the three calls since then.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from billing.invoicing.closing import periods_close_due
from billing.models import RatedEvent, UsageRollup
from contracts.models import Price, PriceCorrection, RateCardVersion
from contracts.services import contract_create, customer_create
from metering.models import UnratedEvent
from wallets.models import LedgerEntry

from .conftest import NOVEMBER, event, ingest, rate

DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
JANUARY = datetime(2027, 1, 1, tzinfo=UTC)
LAST_WEEK = datetime(2026, 11, 27, tzinfo=UTC)
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
MILLION_OUT = {"output_tokens": 1_000_000}  # 10.00 at 10.00 per 1M output tokens
REASON = "Output is 5.00 per 1M since the price change of November 27"
NOV = "2026-11-01 to 2026-11-30"
D = Decimal


class Clock:
    def __init__(self, now: datetime):
        self.now = now


def clock_set(monkeypatch, now: datetime = NOW) -> Clock:
    clock = Clock(now)
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


def two_customers(clock: Clock, acme, rate_card):
    """The scenario above, up to now (December 4, noon); returns globex."""
    clock.now = datetime(2026, 11, 1, 9, tzinfo=UTC)
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, fixed_fee=D(30)
    )
    contract_create(customer=globex, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    clock.now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    ingest(
        event("nov-5", datetime(2026, 11, 5, 10, tzinfo=UTC), metrics=MILLION_OUT),
        event("nov-28-a", datetime(2026, 11, 28, 9, tzinfo=UTC), metrics=MILLION_OUT),
        event("nov-28-b", datetime(2026, 11, 28, 10, tzinfo=UTC), metrics=MILLION_OUT),
    )
    rate()
    clock.now = DECEMBER + timedelta(hours=25)
    assert periods_close_due() == 2  # acme's INV-000001 (60.00), globex's INV-000002 (0.00)
    clock.now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    ingest(
        event("dec-3", datetime(2026, 12, 3, 9, tzinfo=UTC), metrics=MILLION_OUT),
        event(
            "globex-dec-2",
            datetime(2026, 12, 2, 10, tzinfo=UTC),
            metrics={"output_tokens": 2_000_000},
            customer="globex",
        ),
    )
    rate()
    clock.now = NOW
    return globex


def stored() -> dict:
    """Every row a correction or a re-rate could touch: to show a refusal or a preview
    stored nothing."""
    return {
        "versions": list(RateCardVersion.objects.order_by("pk").values()),
        "prices": list(Price.objects.order_by("pk").values()),
        "corrections": list(PriceCorrection.objects.order_by("pk").values()),
        "queue": list(UnratedEvent.objects.order_by("pk").values()),
        "rollups": list(UsageRollup.objects.order_by("pk").values()),
        "ratings": list(RatedEvent.objects.order_by("pk").values()),
        "ledger": list(LedgerEntry.objects.order_by("pk").values()),
    }
