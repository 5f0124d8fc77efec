"""Billing periods from a cycle and an anchor (pricing.cycles): pure, no database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.cycles import CYCLE_MONTHS, period_bounds


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


MICROSECOND = timedelta(microseconds=1)

# (cycle, anchor_day, anchor_month, at, expected start, expected end)
PERIODS = [
    # Monthly, anchor 1: calendar months.
    ("monthly", 1, 1, utc(2025, 2, 10), utc(2025, 2, 1), utc(2025, 3, 1)),
    ("monthly", 1, 1, utc(2025, 12, 31, 23, 59), utc(2025, 12, 1), utc(2026, 1, 1)),
    ("monthly", 1, 1, utc(2026, 1, 1), utc(2026, 1, 1), utc(2026, 2, 1)),
    # Monthly, anchor 15: the instant at the boundary belongs to the period it starts.
    ("monthly", 15, 1, utc(2025, 2, 15) - MICROSECOND, utc(2025, 1, 15), utc(2025, 2, 15)),
    ("monthly", 15, 1, utc(2025, 2, 15), utc(2025, 2, 15), utc(2025, 3, 15)),
    ("monthly", 15, 1, utc(2025, 1, 10), utc(2024, 12, 15), utc(2025, 1, 15)),
    # The anchor month is irrelevant to a monthly cycle.
    ("monthly", 15, 7, utc(2025, 2, 20), utc(2025, 2, 15), utc(2025, 3, 15)),
    # Monthly, anchor 31: the last day of short months, never skipping February.
    ("monthly", 31, 1, utc(2025, 2, 10), utc(2025, 1, 31), utc(2025, 2, 28)),
    ("monthly", 31, 1, utc(2025, 2, 28), utc(2025, 2, 28), utc(2025, 3, 31)),
    ("monthly", 31, 1, utc(2025, 3, 30, 12), utc(2025, 2, 28), utc(2025, 3, 31)),
    ("monthly", 31, 1, utc(2025, 4, 29), utc(2025, 3, 31), utc(2025, 4, 30)),
    ("monthly", 31, 1, utc(2025, 4, 30), utc(2025, 4, 30), utc(2025, 5, 31)),
    ("monthly", 31, 1, utc(2024, 2, 28, 12), utc(2024, 1, 31), utc(2024, 2, 29)),
    ("monthly", 31, 1, utc(2024, 2, 29), utc(2024, 2, 29), utc(2024, 3, 31)),
    # Anchors 29 and 30 in February of common and leap years.
    ("monthly", 29, 1, utc(2025, 3, 1), utc(2025, 2, 28), utc(2025, 3, 29)),
    ("monthly", 29, 1, utc(2024, 2, 28, 23), utc(2024, 1, 29), utc(2024, 2, 29)),
    ("monthly", 29, 1, utc(2024, 3, 1), utc(2024, 2, 29), utc(2024, 3, 29)),
    ("monthly", 30, 1, utc(2025, 3, 1), utc(2025, 2, 28), utc(2025, 3, 30)),
    ("monthly", 30, 1, utc(2100, 2, 28), utc(2100, 2, 28), utc(2100, 3, 30)),  # 2100: common
    ("monthly", 30, 1, utc(2000, 2, 28), utc(2000, 1, 30), utc(2000, 2, 29)),  # 2000: leap
    # Quarterly from January: calendar quarters.
    ("quarterly", 1, 1, utc(2025, 5, 20), utc(2025, 4, 1), utc(2025, 7, 1)),
    ("quarterly", 1, 1, utc(2025, 1, 1), utc(2025, 1, 1), utc(2025, 4, 1)),
    ("quarterly", 1, 1, utc(2024, 12, 31, 23), utc(2024, 10, 1), utc(2025, 1, 1)),
    # Quarterly from 15 February: Feb, May, Aug, Nov.
    ("quarterly", 15, 2, utc(2025, 1, 10), utc(2024, 11, 15), utc(2025, 2, 15)),
    ("quarterly", 15, 2, utc(2025, 2, 15), utc(2025, 2, 15), utc(2025, 5, 15)),
    ("quarterly", 15, 2, utc(2025, 5, 14), utc(2025, 2, 15), utc(2025, 5, 15)),
    # Quarterly anchors clipped to the month's end: Nov/Feb/May/Aug 30, Dec/Mar/Jun/Sep 31.
    ("quarterly", 30, 11, utc(2025, 3, 1), utc(2025, 2, 28), utc(2025, 5, 30)),
    ("quarterly", 30, 11, utc(2024, 2, 29, 1), utc(2024, 2, 29), utc(2024, 5, 30)),
    ("quarterly", 31, 12, utc(2025, 7, 1), utc(2025, 6, 30), utc(2025, 9, 30)),
    ("quarterly", 31, 12, utc(2025, 12, 31), utc(2025, 12, 31), utc(2026, 3, 31)),
    # Yearly from 15 March.
    ("yearly", 15, 3, utc(2026, 3, 15) - MICROSECOND, utc(2025, 3, 15), utc(2026, 3, 15)),
    ("yearly", 15, 3, utc(2026, 3, 15), utc(2026, 3, 15), utc(2027, 3, 15)),
    ("yearly", 15, 3, utc(2026, 1, 1), utc(2025, 3, 15), utc(2026, 3, 15)),
    # Yearly from 29 February: the 28th in common years.
    ("yearly", 29, 2, utc(2024, 2, 29), utc(2024, 2, 29), utc(2025, 2, 28)),
    ("yearly", 29, 2, utc(2025, 2, 27), utc(2024, 2, 29), utc(2025, 2, 28)),
    ("yearly", 29, 2, utc(2025, 2, 28), utc(2025, 2, 28), utc(2026, 2, 28)),
    ("yearly", 29, 2, utc(2027, 12, 1), utc(2027, 2, 28), utc(2028, 2, 29)),
    # Yearly from 1 January: calendar years.
    ("yearly", 1, 1, utc(2025, 7, 4), utc(2025, 1, 1), utc(2026, 1, 1)),
]


@pytest.mark.parametrize(("cycle", "day", "month", "at", "start", "end"), PERIODS)
def test_the_period_holding_an_instant(cycle, day, month, at, start, end):
    assert period_bounds(at, cycle=cycle, anchor_day=day, anchor_month=month) == (start, end)


def test_the_anchor_month_defaults_to_january():
    assert period_bounds(utc(2025, 5, 20), cycle="quarterly", anchor_day=1) == (
        utc(2025, 4, 1),
        utc(2025, 7, 1),
    )


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [
        # 00:30 on 1 March at UTC+2 is 22:30 UTC on 28 February: still February's period.
        (
            datetime(2025, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            utc(2025, 2, 1),
            utc(2025, 3, 1),
        ),
        # 23:30 on 28 February at UTC-5 is 04:30 UTC on 1 March: March's period.
        (
            datetime(2025, 2, 28, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            utc(2025, 3, 1),
            utc(2025, 4, 1),
        ),
    ],
)
def test_periods_are_cut_in_utc_whatever_the_instants_offset(at, start, end):
    bounds = period_bounds(at, cycle="monthly", anchor_day=1)

    assert bounds == (start, end)
    assert [bound.tzinfo for bound in bounds] == [UTC, UTC]


@pytest.mark.parametrize(
    ("at", "arguments", "message"),
    [
        (
            datetime(2025, 2, 10),
            {"cycle": "monthly", "anchor_day": 1},
            "at must be timezone-aware, got 2025-02-10T00:00:00",
        ),
        (
            utc(2025, 2, 10),
            {"cycle": "weekly", "anchor_day": 1},
            "cycle is one of monthly, quarterly, yearly, not 'weekly'",
        ),
        (
            utc(2025, 2, 10),
            {"cycle": "monthly", "anchor_day": 0},
            "anchor day 1-31 and month 1-12, not 0 and 1",
        ),
        (
            utc(2025, 2, 10),
            {"cycle": "monthly", "anchor_day": 32},
            "anchor day 1-31 and month 1-12, not 32 and 1",
        ),
        (
            utc(2025, 2, 10),
            {"cycle": "yearly", "anchor_day": 1, "anchor_month": 13},
            "anchor day 1-31 and month 1-12, not 1 and 13",
        ),
        (
            utc(2025, 2, 10),
            {"cycle": "yearly", "anchor_day": 1, "anchor_month": 0},
            "anchor day 1-31 and month 1-12, not 1 and 0",
        ),
    ],
)
def test_bad_arguments_are_refused(at, arguments, message):
    with pytest.raises(ValueError) as refused:
        period_bounds(at, **arguments)

    assert str(refused.value) == message


# --- properties -------------------------------------------------------------------------

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2199, 12, 31), timezones=offsets
)
cycles = st.sampled_from(sorted(CYCLE_MONTHS))
anchor_days = st.integers(min_value=1, max_value=31)
anchor_months = st.integers(min_value=1, max_value=12)


def month_number(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


@given(at=instants, cycle=cycles, day=anchor_days, month=anchor_months)
def test_the_instant_is_inside_its_half_open_period(at, cycle, day, month):
    start, end = period_bounds(at, cycle=cycle, anchor_day=day, anchor_month=month)

    assert start <= at < end


@given(at=instants, cycle=cycles, day=anchor_days, month=anchor_months)
def test_a_period_starts_on_the_anchor_at_midnight_utc_and_lasts_its_cycle(at, cycle, day, month):
    start, end = period_bounds(at, cycle=cycle, anchor_day=day, anchor_month=month)

    for bound in (start, end):
        assert bound.tzinfo is UTC
        assert (bound.hour, bound.minute, bound.second, bound.microsecond) == (0, 0, 0, 0)
        assert (bound.day == day) or (day > bound.day and (bound + timedelta(days=1)).day == 1)
        assert (bound.month - month) % CYCLE_MONTHS[cycle] == 0
    assert month_number(end) - month_number(start) == CYCLE_MONTHS[cycle]


@given(at=instants, cycle=cycles, day=anchor_days, month=anchor_months)
def test_consecutive_periods_tile_with_no_gap_or_overlap(at, cycle, day, month):
    anchors = {"cycle": cycle, "anchor_day": day, "anchor_month": month}
    start, end = period_bounds(at, **anchors)

    # The boundary instants belong to the period they start ...
    assert period_bounds(start, **anchors) == (start, end)
    # ... the next period starts where this one ends, and the previous one ends where it starts.
    assert period_bounds(end, **anchors)[0] == end
    assert period_bounds(start - MICROSECOND, **anchors)[1] == start
    assert period_bounds(end - MICROSECOND, **anchors) == (start, end)
