"""Billing periods from a contract's cycle and anchor (pure: no Django).

A period starts at 00:00 UTC on the anchor day of a month and lasts 1, 3 or 12
months; it is half-open, ``[start, end)``.  An anchor day past a month's end is
that month's last day (anchor 31 gives Jan 31, Feb 28 or 29, Mar 31, ...), so
periods never skip a month and never overlap.  Quarterly and yearly periods
count their months from ``anchor_month``: a yearly contract anchored on
2026-03-15 renews every 15 March.

The periods run on before a contract starts and after it ends: a contract that
starts or ends inside a period covers only part of it, and its fixed fee and
allowance are prorated by that share like any amendment's (``pricing.tiers``).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["CYCLE_MONTHS", "calendar_month", "period_bounds", "period_holding", "span_text"]

CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


def _anchor_in(month_index: int, anchor_day: int) -> datetime:
    """The anchor instant in the month numbered ``year * 12 + month - 1``."""
    year, month = divmod(month_index, 12)
    day = min(anchor_day, calendar.monthrange(year, month + 1)[1])
    return datetime(year, month + 1, day, tzinfo=UTC)


def period_bounds(
    at: datetime, *, cycle: str, anchor_day: int, anchor_month: int = 1
) -> tuple[datetime, datetime]:
    """The period ``[start, end)`` of a ``cycle`` (monthly, quarterly, yearly) that holds ``at``."""
    if at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
    if cycle not in CYCLE_MONTHS:
        raise ValueError(f"cycle is one of {', '.join(CYCLE_MONTHS)}, not {cycle!r}")
    if not 1 <= anchor_day <= 31 or not 1 <= anchor_month <= 12:
        raise ValueError(f"anchor day 1-31 and month 1-12, not {anchor_day} and {anchor_month}")
    step = CYCLE_MONTHS[cycle]
    at = at.astimezone(UTC)
    index = at.year * 12 + at.month - 1
    # The first period-starting month at or before `at`'s month, then one back if the
    # anchor day in that month is still ahead of `at`.
    start_index = index - (index - (anchor_month - 1)) % step
    if _anchor_in(start_index, anchor_day) > at:
        start_index -= step
    return _anchor_in(start_index, anchor_day), _anchor_in(start_index + step, anchor_day)


def calendar_month(at: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) holding `at`: the period of usage outside any contract."""
    at = at.astimezone(UTC)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


class HasPeriods(Protocol):
    """What `period_holding` reads of a contract."""

    starts_at: datetime
    ends_at: datetime | None

    def period_bounds(self, at: datetime) -> tuple[datetime, datetime]: ...


def period_holding(contracts: Iterable[HasPeriods], at: datetime) -> tuple[datetime, datetime]:
    """The billing period holding `at`, for a customer with these contracts.

    A contract's periods run on before it starts and after it ends: from the start of the
    period it starts in to the end of the period it ends in, every instant is in one of
    its periods, and usage there, priced or not, belongs to that period. (The contract in
    force at `at` decides first; where the periods of two contracts meet, the later
    contract's.) Outside every contract's periods the period is the calendar month (UTC),
    cut where a contract's periods begin or end, so no instant is in two periods.
    """
    ordered = sorted(contracts, key=lambda contract: contract.starts_at, reverse=True)
    for contract in ordered:
        if contract.starts_at <= at and (contract.ends_at is None or at < contract.ends_at):
            return contract.period_bounds(at)
    start, end = calendar_month(at)
    for contract in ordered:
        first = contract.period_bounds(contract.starts_at)[0]
        last = None
        if contract.ends_at is not None:
            last = contract.period_bounds(contract.ends_at - timedelta(microseconds=1))[1]
        if first <= at and (last is None or at < last):
            return contract.period_bounds(at)
        if at < first:
            end = min(end, first)
        elif last is not None:
            start = max(start, last)
    return start, end


def span_text(start: datetime, end: datetime) -> str:
    """A half-open period `[start, end)` as its first and last days, as invoices write it:
    2026-11-01 to 2026-11-30."""
    return f"{start:%Y-%m-%d} to {end - timedelta(microseconds=1):%Y-%m-%d}"
