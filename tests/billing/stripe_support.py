"""Shared by the Stripe tests: tokentill pointed at the fake Stripe, a closed invoice whose
lines have a sub-cent unit price and negative amounts, and signed webhook deliveries."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.invoicing.closing import period_close
from billing.models import Invoice
from tests.fakes.stripe_server import FakeStripe
from wallets.alerts import alert_settings_update
from wallets.models import CreditGrant, TopUpRequest
from wallets.services import credit_grant, wallet_draw_down

from .conftest import NOVEMBER, event, ingest, rate
from .invoice_support import Clock, november_contract

SECRET = "whsec_tokentill_test"
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
MILLION_OUT = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's rates
#: 1,234 x 2.50/1M + 567 x 10.00/1M = 0.003085 + 0.00567 = 0.008755
SMALL = {"input_tokens": 1234, "output_tokens": 567}
D = Decimal


def stripe_on(settings, fake: FakeStripe) -> FakeStripe:
    """tokentill's Stripe settings pointed at the fake, with no retries by the library (a
    test that wants them sets TOKENTILL_STRIPE_MAX_NETWORK_RETRIES)."""
    settings.STRIPE_API_KEY = fake.api_key
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.TOKENTILL_STRIPE_MAX_NETWORK_RETRIES = 0
    settings.TOKENTILL_STRIPE_TIMEOUT_SECONDS = 5
    settings.TOKENTILL_STRIPE_COLLECTION_METHOD = "send_invoice"
    settings.TOKENTILL_STRIPE_DAYS_UNTIL_DUE = 30
    return fake


def november_closed(clock: Clock, customer, rate_card) -> Invoice:
    """The customer's November (`november_used`) closed into its invoice (INV-000001)."""
    contract = november_used(clock, customer, rate_card)
    clock.now = DECEMBER + timedelta(hours=25)
    return period_close(contract=contract, start=NOVEMBER, end=DECEMBER)


def november_used(clock: Clock, customer, rate_card):
    """The customer's contract and November's usage, rated; closed, an invoice of 59.03.

    From November 1 a fee of 30.00 a month and an allowance of 10.00; from November 16 a
    fee of 60.00 and 10 % off; 5.00 of prepaid credits. Usage: two calls of 10.00 and three
    of 0.008755 under the first terms (20.026265 over 5 calls: 4.005253 each, a sub-cent
    unit price of 400.5253 cents), one of 10.00 under the amendment. By hand: 15.00 + 30.00
    + 20.03 + 10.00 - 1.00 (discount) - 10.00 (allowance) - 5.00 (credits) = 59.03.
    """
    contract = november_contract(customer, rate_card)
    clock.now = datetime(2026, 11, 25, tzinfo=UTC)
    ingest(
        event("a", datetime(2026, 11, 5, 10, tzinfo=UTC), metrics=MILLION_OUT),
        event("b", datetime(2026, 11, 5, 11, tzinfo=UTC), metrics=MILLION_OUT),
        *(event(f"s{n}", datetime(2026, 11, 6, n, tzinfo=UTC), metrics=SMALL) for n in range(3)),
        event("c", datetime(2026, 11, 20, 10, tzinfo=UTC), metrics=MILLION_OUT),
    )
    rate()
    return contract


def topup_requested(customer) -> TopUpRequest:
    """A top-up of 100.00, asked for when the customer's 50.00 of credits fell to 5.00."""
    alert_settings_update(
        customer=customer, topup_below=D("20"), topup_amount=D("100"), credit_shares=[]
    )
    grant = credit_grant(customer=customer, amount="50", source=CreditGrant.Source.PROMOTIONAL)
    wallet_draw_down(wallet=grant.wallet, amount="45")
    return TopUpRequest.objects.get()


def deliver(client, fake: FakeStripe, stripe_event: dict, *, timestamp: int | None = None):
    """POST a Stripe event to the webhook endpoint, signed as Stripe signs it."""
    payload, headers = fake.sign(stripe_event, SECRET, timestamp=timestamp)
    return client.post("/stripe/webhook", payload, content_type="application/json", headers=headers)


def recorded(fake: FakeStripe, event_type: str) -> dict:
    """The one event of `event_type` the fake recorded."""
    (found,) = [e for e in fake.events if e["type"] == event_type]
    return found
