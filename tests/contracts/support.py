"""Helpers for the contracts tests: a clock the test moves, and database snapshots."""

from datetime import UTC, datetime, timedelta

from contracts.models import ApiKey, Customer

T0 = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


class Clock:
    """What `django.utils.timezone.now()` returns while the `clock` fixture is active."""

    def __init__(self, start: datetime):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def customers_snapshot() -> list[dict]:
    return list(Customer.objects.order_by("pk").values())


def api_keys_snapshot() -> list[dict]:
    return list(ApiKey.objects.order_by("pk").values())
