import pytest
from django.utils import timezone

from .support import T0, Clock


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Freezes time at T0 (auto_now fields, key use, revocation) until the test moves it."""
    frozen = Clock(T0)
    monkeypatch.setattr(timezone, "now", frozen.now)
    return frozen
