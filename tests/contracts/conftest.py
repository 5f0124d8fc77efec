import pytest
from django.utils import timezone

from contracts.services import customer_create

from .contract_support import card_create
from .support import T0, Clock


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Freezes time at T0 (auto_now fields, key use, revocation) until the test moves it."""
    frozen = Clock(T0)
    monkeypatch.setattr(timezone, "now", frozen.now)
    return frozen


@pytest.fixture
def standard(db):
    """A USD rate card pricing gpt-4o and embeddings from 1 January 2025."""
    return card_create("Standard")


@pytest.fixture
def premium(db):
    return card_create("Premium")


@pytest.fixture
def globex(db):
    return customer_create(external_id="globex", name="Globex", currency="USD")
