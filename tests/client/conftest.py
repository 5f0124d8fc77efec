"""The client library against a live tokentill: a proxy in front of it that breaks what
a test asks, and clients with short timeouts and pauses."""

import pytest

from contracts.models import ContractTerms
from contracts.services import contract_create
from metering.models import UsageEvent
from tests.billing.conftest import NOVEMBER, standard_card
from tokentill_client import Tokentill

from .proxy import proxy_start

TIMEOUT = 2.0  # the clients' timeout in these tests: a lost answer costs this much


@pytest.fixture
def proxy(live_server):
    state, server = proxy_start(live_server.url)
    state.hang = TIMEOUT + 0.2
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_client(proxy, operator_key):
    """Clients of the live tokentill through the proxy, closed after the test. The batch
    goes when full or flushed (its interval is long) unless a test says otherwise."""
    clients = []

    def make(**settings) -> Tokentill:
        settings = {
            "api_key": operator_key,
            "base_url": proxy.url,
            "flush_interval": 60,
            "timeout": TIMEOUT,
            "backoff": 0.01,
            "max_backoff": 0.05,
            **settings,
        }
        client = Tokentill(**settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5)


@pytest.fixture
def on_contract(acme):
    """acme on the Standard card (gpt-4o at 2.50 / 10.00 / 1.25 per 1M) since November."""
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=standard_card(),
        anchor_day=1,
        overage_policy=ContractTerms.Overage.BLOCK,
    )
    return acme


def stored() -> dict[str, dict]:
    """Every stored event's metrics, by event id."""
    return dict(UsageEvent.objects.values_list("event_id", "metrics"))
