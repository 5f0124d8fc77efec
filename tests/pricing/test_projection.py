"""The projection of a period's invoice to its end, worked by hand (pricing.projection)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from pricing.projection import invoice_projected, period_elapsed_share

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)  # 30 days


def projected(at: datetime, **overrides):
    terms = {
        "fixed_lines": [D("100.00")],
        "usage_lines": [[D("10.00"), D("2.50")]],
        "discounts": [D("0.1")],
        "allowances": [D("20")],
        "minimums": [D("50")],
        "start": START,
        "end": END,
        "at": at,
        "currency": "USD",
    }
    return invoice_projected(**{**terms, **overrides})


def test_usage_goes_on_at_its_rate_and_the_face_rule_applies_discount_allowance_minimum():
    # 12 of 30 days gone: usage 10.00 + 2.50 = 12.50, carried to 12.50 x 30/12 = 31.25
    result = projected(START + timedelta(days=12))

    assert result is not None
    assert result.fixed == D("100.00")
    assert result.usage == D("31.25")
    # 10 % of 31.25 = 3.125, rounded half up: 3.13; after discount 31.25 - 3.13 = 28.12
    assert result.discount == D("3.13")
    # allowance min(28.12, 20.00) = 20.00; true-up max(0, 50.00 - 28.12) = 21.88
    assert result.allowance_used == D("20.00")
    assert result.minimum_true_up == D("21.88")
    # 100.00 + 31.25 - 3.13 - 20.00 + 21.88 = 130.00
    assert result.total == D("130.00")


def test_usage_past_the_minimum_needs_no_true_up_and_rounds_once():
    # 10 of 30 days gone: 40.01 x 3 = 120.03; 10 % = 12.003 -> 12.00; after 108.03
    result = projected(
        START + timedelta(days=10),
        usage_lines=[[D("40.01")]],
        allowances=[D("0")],
    )

    assert result is not None
    assert (result.usage, result.discount, result.allowance_used) == (
        D("120.03"),
        D("12.00"),
        D("0.00"),
    )
    assert result.minimum_true_up == D("0")
    # 100.00 + 120.03 - 12.00 = 208.03
    assert result.total == D("208.03")


def test_each_segment_is_carried_by_the_same_share_and_its_own_discount():
    # 20 of 30 days gone, cut by an amendment: 6.00 before (no discount), 4.00 after (50 %)
    result = projected(
        START + timedelta(days=20),
        fixed_lines=[D("33.33"), D("66.67")],
        usage_lines=[[D("6.00")], [D("4.00")]],
        discounts=[D("0"), D("0.5")],
        allowances=[D("0"), D("0")],
        minimums=[D("0"), D("0")],
    )

    assert result is not None
    # 6.00 x 30/20 = 9.00 and 4.00 x 30/20 = 6.00; 50 % of 6.00 = 3.00
    assert (result.usage, result.discount) == (D("15.00"), D("3.00"))
    # 33.33 + 66.67 + 15.00 - 3.00 = 112.00
    assert result.total == D("112.00")


def test_a_third_of_a_cent_carried_rounds_half_up_to_the_minor_unit():
    # 7 of 30 days: 0.01 x 30/7 = 0.042857... -> 0.04
    result = projected(
        START + timedelta(days=7), usage_lines=[[D("0.01")]], discounts=[D("0")], minimums=[D("0")]
    )

    assert result is not None
    assert result.usage == D("0.04")
    # allowance min(0.04, 20.00) = 0.04: 100.00 + 0.04 - 0.04 = 100.00
    assert result.total == D("100.00")


def test_too_early_in_the_period_there_is_no_projection_and_after_it_the_draft_is_kept():
    assert projected(START + timedelta(seconds=59)) is None
    assert period_elapsed_share(start=START, end=END, at=END + timedelta(days=3)) == (
        30 * 86_400 * 1_000_000,
        30 * 86_400 * 1_000_000,
    )
    # Once the period is over, usage is what it was: 12.50, discount 1.25, allowance 11.25,
    # true-up 50.00 - 11.25 = 38.75; 100.00 + 12.50 - 1.25 - 11.25 + 38.75 = 138.75
    after = projected(END + timedelta(days=3))
    assert after is not None
    assert (after.usage, after.minimum_true_up, after.total) == (
        D("12.50"),
        D("38.75"),
        D("138.75"),
    )


def test_segments_must_match_their_terms():
    with pytest.raises(ValueError, match="each segment"):
        projected(START + timedelta(days=3), discounts=[D("0"), D("0")])
