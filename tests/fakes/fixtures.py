"""Fixtures of the fakes (via tests/conftest.py): the ``stripe`` library pointed at the fake
Stripe server, and a webhook receiver."""

import pytest
import stripe

from tests.fakes.stripe_server import FakeStripe
from tests.fakes.webhook_receiver import receiver

__all__ = ["receiver", "stripe_client", "stripe_fake"]

_STRIPE_SETTINGS = ("api_base", "api_key", "max_network_retries", "default_http_client")


@pytest.fixture
def stripe_fake():
    """A fresh fake Stripe on a free loopback port, with the library's module-level settings
    pointed at it and no network retries (a test that wants them sets
    ``stripe.max_network_retries``); the settings are put back afterwards."""
    fake = FakeStripe().start()
    saved = {name: getattr(stripe, name) for name in _STRIPE_SETTINGS}
    stripe.api_base = fake.url
    stripe.api_key = fake.api_key
    stripe.max_network_retries = 0
    stripe.default_http_client = None
    try:
        yield fake
    finally:
        for name, value in saved.items():
            setattr(stripe, name, value)
        fake.stop()


@pytest.fixture
def stripe_client(stripe_fake) -> stripe.StripeClient:
    """A ``stripe.StripeClient`` talking to ``stripe_fake``, without network retries."""
    return stripe.StripeClient(
        stripe_fake.api_key, base_addresses={"api": stripe_fake.url}, max_network_retries=0
    )
