"""Billing periods from a contract's cycle and anchor (pure: no Django).

A period starts at 00:00 UTC on the anchor day of a month and lasts 1, 3 or 12
months; it is half-open, ``[start, end)``.  An anchor day past a month's end is
that month's last day (anchor 31 gives Jan 31, Feb 28 or 29, Mar 31, ...), so
periods never skip a month and never overlap.  Quarterly and yearly periods
count their months from ``anchor_month``: a yearly contract anchored on
2026-03-15 renews every 15 March.

The periods run on before a contract starts and after it ends: a contract that
starts or ends inside a period covers only part of it, and its fixed fee and
allowance are prorated by that share like any amendment's (``contracts.tiers``).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

__all__ = ["CYCLE_MONTHS", "period_bounds"]

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
