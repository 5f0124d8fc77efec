"""Tier and proration maths (pricing.tiers): exact examples, refusals and properties.

Pure functions: no database, no Django. Every expected amount below is worked
out by hand in the comment or id beside it.
"""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.tiers import (
    Tier,
    TierError,
    graduated_amount,
    graduated_amount_segments,
    graduated_breakdown,
    package_amount,
    period_shares,
    prorate,
    tiers_validate,
    volume_amount,
    volume_amount_segments,
)

# 0-1000 at 0.01, 1000-10000 at 0.008, above at 0.005; no flat fees.
STEPPED = [Tier(D(1000), D("0.01")), Tier(D(10000), D("0.008")), Tier(None, D("0.005"))]
# 0-100 free with a 5 fee, 100-500 at 0.10 with a 2 fee, above at 0.05 with a 1 fee.
WITH_FEES = [
    Tier(D(100), D(0), D(5)),
    Tier(D(500), D("0.10"), D(2)),
    Tier(None, D("0.05"), D(1)),
]
# The amendment example of the module docstring: old and new tables.
OLD = [Tier(D(1000), D(1)), Tier(None, D("0.5"))]
NEW = [Tier(D(1000), D(2)), Tier(None, D(1))]


# -- graduated ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "quantity", "amount"),
    [
        (STEPPED, D(0), D(0)),
        (STEPPED, D(1), D("0.01")),
        (STEPPED, D("0.25"), D("0.0025")),
        (STEPPED, D(1000), D(10)),  # exactly at up_to: all of it in tier 1
        (STEPPED, D("1000.5"), D("10.004")),  # 10 + 0.5 * 0.008
        (STEPPED, D(10000), D(82)),  # 10 + 9000 * 0.008
        (STEPPED, D(25000), D(157)),  # 82 + 15000 * 0.005
        (WITH_FEES, D(0), D(0)),  # no tier entered, no fee
        (WITH_FEES, D(50), D(5)),
        (WITH_FEES, D(100), D(5)),  # at the bound: tier 2 not entered
        (WITH_FEES, D(101), D("7.10")),  # 5 + 1 * 0.10 + 2
        (WITH_FEES, D(500), D(47)),  # 5 + 400 * 0.10 + 2
        (WITH_FEES, D(600), D(53)),  # 47 + 100 * 0.05 + 1
    ],
)
def test_graduated_prices_each_slice_at_its_own_tier(tiers, quantity, amount):
    assert graduated_amount(quantity, tiers) == amount


@pytest.mark.parametrize(
    ("tiers", "quantity", "lines"),
    [
        (STEPPED, D(0), []),
        (STEPPED, D(1000), [(1, D(1000), D(10))]),
        (STEPPED, D("1000.5"), [(1, D(1000), D(10)), (2, D("0.5"), D("0.004"))]),
        (
            STEPPED,
            D(25000),
            [(1, D(1000), D(10)), (2, D(9000), D(72)), (3, D(15000), D(75))],
        ),
        (WITH_FEES, D(101), [(1, D(100), D(5)), (2, D(1), D("2.10"))]),
    ],
)
def test_graduated_breakdown_names_each_tier_entered(tiers, quantity, lines):
    assert graduated_breakdown(quantity, tiers) == lines


def test_graduated_accepts_an_int_quantity_exactly():
    assert graduated_amount(25000, STEPPED) == D(157)


def test_graduated_is_exact_beyond_28_significant_digits():
    # given a quantity and a price whose product has 33 significant digits
    quantity = D("99999999999999999999.999")
    tiers = [Tier(None, D("1.000000001"))]

    # then nothing is rounded away:
    # 99999999999999999999.999 + 99999999999.999999999999 = 100000000099999999999.998999999999
    assert graduated_amount(quantity, tiers) == D("100000000099999999999.998999999999")


# -- volume and package -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "quantity", "amount"),
    [
        (STEPPED, D(0), D(0)),
        (STEPPED, D(1000), D(10)),  # at up_to: tier 1's price
        (STEPPED, D(1001), D("8.008")),  # all 1001 at 0.008
        (STEPPED, D(10000), D(80)),
        (STEPPED, D("10000.5"), D("50.0025")),  # all at 0.005
        (WITH_FEES, D(0), D(0)),  # no tier reached, no fee
        (WITH_FEES, D(100), D(5)),  # 100 * 0 + 5
        (WITH_FEES, D(101), D("12.1")),  # 101 * 0.10 + 2
        (WITH_FEES, D(600), D(31)),  # 600 * 0.05 + 1
    ],
)
def test_volume_prices_every_unit_at_the_tier_the_total_reaches(tiers, quantity, amount):
    assert volume_amount(quantity, tiers) == amount


@pytest.mark.parametrize(
    ("quantity", "size", "price", "amount"),
    [
        (D(0), D(1000), D(2), D(0)),
        (D(1), D(1000), D(2), D(2)),
        (D(1000), D(1000), D(2), D(2)),  # exactly one package
        (D(1001), D(1000), D(2), D(4)),
        (D("2500.5"), D(1000), D(2), D(6)),
        (D("1.2"), D("0.5"), D("0.3"), D("0.9")),  # ceil(2.4) = 3 packages
    ],
)
def test_package_charges_whole_packages(quantity, size, price, amount):
    assert package_amount(quantity, package_size=size, package_price=price) == amount


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"quantity": D(5), "package_size": D(0), "package_price": D(1)},
            ValueError,
            "package_size must be greater than 0, got 0",
        ),
        (
            {"quantity": D(5), "package_size": D(10), "package_price": D(-1)},
            ValueError,
            "package_price must not be negative, got -1",
        ),
        (
            {"quantity": D(-1), "package_size": D(10), "package_price": D(1)},
            ValueError,
            "quantity must not be negative, got -1",
        ),
        (
            {"quantity": 1.5, "package_size": D(10), "package_price": D(1)},
            TypeError,
            "quantity must be a Decimal, got float",
        ),
    ],
)
def test_package_refuses_impossible_arguments(kwargs, error, message):
    quantity = kwargs.pop("quantity")

    with pytest.raises(error) as caught:
        package_amount(quantity, **kwargs)

    assert str(caught.value) == message


def test_amounts_refuse_a_negative_or_float_quantity():
    with pytest.raises(ValueError) as negative:
        graduated_amount(D("-0.5"), STEPPED)
    with pytest.raises(TypeError) as floating:
        volume_amount(0.5, STEPPED)

    assert str(negative.value) == "quantity must not be negative, got -0.5"
    assert str(floating.value) == "quantity must be a Decimal, got float"


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([], "a tier table needs at least one tier"),
        (
            [Tier(D(5000), D(1)), Tier(D(1000), D(1)), Tier(None, D(1))],
            "tier 2: up_to (1000) must be greater than tier 1's (5000)",
        ),
        (
            [Tier(D(1000), D(1)), Tier(D(1000), D(1)), Tier(None, D(1))],
            "tier 2: up_to (1000) must be greater than tier 1's (1000)",
        ),
        (
            [Tier(None, D(1)), Tier(None, D(1))],
            "tier 1: only the last tier may have no upper bound (up_to None)",
        ),
        (
            [Tier(D(1000), D(1))],
            "tier 1: the last tier must have no upper bound (up_to None), got 1000",
        ),
        ([Tier(D(0), D(1)), Tier(None, D(1))], "tier 1: up_to (0) must be greater than 0"),
        ([Tier(D(-5), D(1)), Tier(None, D(1))], "tier 1: up_to (-5) must be greater than 0"),
        (
            [Tier(D(1000), D(-1)), Tier(None, D(1))],
            "tier 1: unit_price (-1) must not be negative",
        ),
        (
            [Tier(D(1000), D(1)), Tier(None, D(1), D("-0.5"))],
            "tier 2: flat_fee (-0.5) must not be negative",
        ),
        (
            [Tier(D(1000), 0.01), Tier(None, D(1))],
            "tier 1: unit_price must be a Decimal, got float",
        ),
        (
            [Tier(D(1000), D(1)), Tier(None, D("NaN"))],
            "tier 2: unit_price must be a finite number, got NaN",
        ),
        ([{"up_to": None, "unit_price": D(1)}], "tier 1: expected a Tier, got dict"),
    ],
)
def test_validation_refuses_a_bad_table_naming_the_tier(tiers, message):
    with pytest.raises(TierError) as caught:
        tiers_validate(tiers)

    assert str(caught.value) == message


def test_every_amount_function_validates_its_table():
    broken = [Tier(D(5000), D(1)), Tier(D(1000), D(1)), Tier(None, D(1))]

    for price in (graduated_amount, graduated_breakdown, volume_amount):
        with pytest.raises(TierError):
            price(D(1), broken)
    with pytest.raises(TierError):
        graduated_amount_segments([(D(1), STEPPED), (D(1), broken)])
    with pytest.raises(TierError):
        volume_amount_segments([(D(1), broken)])


def test_a_valid_table_passes_validation():
    assert tiers_validate(STEPPED) is None
    assert tiers_validate([Tier(None, D(0))]) is None


# -- tiers across an amendment ------------------------------------------------------------


def test_graduated_positions_run_on_across_an_amendment():
    # given 800 units under the old table, then 500 under the new one
    amounts = graduated_amount_segments([(D(800), OLD), (D(500), NEW)])

    # then the new units sit at positions 800..1300: 200 at 2 + 300 at 1
    assert amounts == [D(800), D(700)]


def test_a_tier_fee_is_charged_in_the_segment_that_first_enters_the_tier():
    # given 50 units under a table without fees, then 100 under WITH_FEES:
    # positions 50..150, so WITH_FEES's tier 1 (0-100) was already entered before
    # the amendment - no 5 fee - and tier 2 is entered now: 50 * 0.10 + 2
    assert graduated_amount_segments([(D(50), OLD), (D(100), WITH_FEES)]) == [D(50), D(7)]


def test_a_segment_starting_on_a_tier_boundary_pays_that_tiers_fee():
    # given 100 units (tier 1, fee 5) then 1 unit, the first unit of tier 2
    amounts = graduated_amount_segments([(D(100), WITH_FEES), (D(1), WITH_FEES)])

    assert amounts == [D(5), D("2.10")]
    assert sum(amounts) == graduated_amount(D(101), WITH_FEES)


def test_graduated_segments_of_nothing():
    assert graduated_amount_segments([]) == []
    assert graduated_amount_segments([(D(0), OLD), (D(0), NEW)]) == [D(0), D(0)]


def test_volume_tier_is_decided_by_the_period_total_across_an_amendment():
    # given a new table whose tier 2 carries a flat fee of 3
    new = [Tier(D(1000), D("0.02")), Tier(D(10000), D("0.016"), D(3)), Tier(None, D("0.01"))]

    # when 800 units are used before the amendment and 700 after (total 1500: tier 2)
    amounts = volume_amount_segments([(D(800), STEPPED), (D(700), new)])

    # then each segment pays tier 2 of its own table; the fee of the table in force
    # at the period end comes in the last segment: 800 * 0.008, 700 * 0.016 + 3
    assert amounts == [D("6.4"), D("14.2")]


def test_volume_fee_lands_in_the_last_segment_even_when_it_used_nothing():
    amounts = volume_amount_segments([(D(100), WITH_FEES), (D(0), WITH_FEES)])

    assert amounts == [D(0), D(5)]
    assert sum(amounts) == volume_amount(D(100), WITH_FEES)


def test_volume_segments_of_nothing_cost_nothing():
    assert volume_amount_segments([]) == []
    assert volume_amount_segments([(D(0), WITH_FEES), (D(0), WITH_FEES)]) == [D(0), D(0)]


# -- prorate ------------------------------------------------------------------------------

DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("amount", "covered", "period", "share"),
    [
        (D(100), 10 * DAY, 30 * DAY, D("33.333333333333")),
        (D(100), 20 * DAY, 30 * DAY, D("66.666666666667")),
        (D(100), 30 * DAY, 30 * DAY, D("100.000000000000")),
        (D(100), timedelta(0), 30 * DAY, D("0E-12")),
        (D(-100), 10 * DAY, 30 * DAY, D("-33.333333333333")),  # a credit
        (D(50), timedelta(hours=1), 31 * DAY, D("0.067204301075")),  # 50 / 744
        (D("1E-12"), DAY, 2 * DAY, D("0E-12")),  # 0.5e-12: tie to even (0)
        (D("3E-12"), DAY, 2 * DAY, D("2E-12")),  # 1.5e-12: tie to even (2)
        (D("5E-12"), DAY, 2 * DAY, D("2E-12")),  # 2.5e-12: tie to even (2)
        (D(1), timedelta(microseconds=1), DAY, D("0.000000000012")),  # 1/86400000000
    ],
)
def test_prorate_is_exact_to_twelve_places(amount, covered, period, share):
    result = prorate(amount, covered=covered, period=period)

    assert result == share
    assert result.as_tuple().exponent == -12


@pytest.mark.parametrize(
    ("covered", "period", "error", "message"),
    [
        (
            31 * DAY,
            30 * DAY,
            ValueError,
            "covered (31 days, 0:00:00) must be between 0 and the period (30 days, 0:00:00)",
        ),
        (
            -DAY,
            30 * DAY,
            ValueError,
            "covered (-1 day, 0:00:00) must be between 0 and the period (30 days, 0:00:00)",
        ),
        (timedelta(0), timedelta(0), ValueError, "period must be positive, got 0:00:00"),
        (1, 30 * DAY, TypeError, "covered and period must be timedelta"),
    ],
)
def test_prorate_refuses_a_share_outside_the_period(covered, period, error, message):
    with pytest.raises(error) as caught:
        prorate(D(100), covered=covered, period=period)

    assert str(caught.value) == message


def test_prorate_refuses_a_float_amount():
    with pytest.raises(TypeError) as caught:
        prorate(100.0, covered=DAY, period=30 * DAY)

    assert str(caught.value) == "amount must be a Decimal, got float"


# -- period_shares ------------------------------------------------------------------------

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 2, 1, tzinfo=UTC)
MID = datetime(2025, 1, 15, 12, tzinfo=UTC)
LATER = datetime(2025, 1, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("points", "shares"),
    [
        ([], [(START, END)]),
        ([MID], [(START, MID), (MID, END)]),
        ([START], [(START, END)]),  # a change at the start governs the whole period
        ([END], [(START, END)]),  # the end is outside [start, end)
        ([START - DAY, END + DAY], [(START, END)]),
        ([MID, MID], [(START, MID), (MID, END)]),
        ([MID, MID.astimezone(timezone(timedelta(hours=2)))], [(START, MID), (MID, END)]),
        ([LATER, MID], [(START, MID), (MID, LATER), (LATER, END)]),
        ([LATER, START, MID, END, MID], [(START, MID), (MID, LATER), (LATER, END)]),
    ],
    ids=[
        "no change",
        "one mid-period",
        "at start",
        "at end",
        "outside",
        "duplicates",
        "same instant, other zone",
        "unsorted",
        "everything at once",
    ],
)
def test_period_shares_tile_the_period(points, shares):
    assert period_shares(START, END, points) == shares


def test_period_shares_refuses_an_empty_or_naive_period():
    with pytest.raises(ValueError) as empty:
        period_shares(END, START, [])
    with pytest.raises(ValueError) as naive:
        period_shares(START, END, [datetime(2025, 1, 10)])

    assert str(empty.value) == (
        "period_end (2025-01-01 00:00:00+00:00) must be after "
        "period_start (2025-02-01 00:00:00+00:00)"
    )
    assert str(naive.value) == "change point must be timezone-aware, got 2025-01-10T00:00:00"


# -- properties ---------------------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10**7, places=3)
prices = st.decimals(min_value=0, max_value=100, places=6)
fees = st.decimals(min_value=0, max_value=1000, places=2)


@st.composite
def tier_tables(draw):
    """Valid tables of 1 to 4 tiers with strictly increasing bounds."""
    steps = draw(st.lists(st.decimals(min_value="0.001", max_value=10**6, places=3), max_size=3))
    bounds, total = [], D(0)
    for step in steps:
        total += step
        bounds.append(total)
    return [Tier(up_to, draw(prices), draw(fees)) for up_to in [*bounds, None]]


@st.composite
def split(draw, total_max=10**6):
    """A list of 1 to 5 non-negative quantities (one period's segments)."""
    return draw(
        st.lists(st.decimals(min_value=0, max_value=total_max, places=3), min_size=1, max_size=5)
    )


@given(quantities, tier_tables())
def test_graduated_equals_the_sum_of_its_breakdown(quantity, tiers):
    lines = graduated_breakdown(quantity, tiers)

    assert graduated_amount(quantity, tiers) == sum((amount for _, _, amount in lines), D(0))
    assert sum((part for _, part, _ in lines), D(0)) == quantity


@given(quantities, prices, fees)
def test_graduated_with_one_unbounded_tier_is_quantity_times_price(quantity, price, fee):
    expected = quantity * price + (fee if quantity > 0 else 0)

    assert graduated_amount(quantity, [Tier(None, price, fee)]) == expected


@given(quantities, quantities, tier_tables())
def test_graduated_never_decreases_with_quantity(first, second, tiers):
    low, high = sorted((first, second))

    assert graduated_amount(low, tiers) <= graduated_amount(high, tiers)


@given(quantities, tier_tables(), st.decimals(min_value="0.001", max_value=10**6, places=3))
def test_amounts_are_never_negative(quantity, tiers, size):
    assert graduated_amount(quantity, tiers) >= 0
    assert volume_amount(quantity, tiers) >= 0
    assert package_amount(quantity, package_size=size, package_price=D("0.5")) >= 0


@given(split(), tier_tables())
def test_splitting_a_period_under_unchanged_graduated_terms_changes_nothing(parts, tiers):
    amounts = graduated_amount_segments([(part, tiers) for part in parts])

    assert len(amounts) == len(parts)
    assert sum(amounts, D(0)) == graduated_amount(sum(parts, D(0)), tiers)


@given(split(), tier_tables())
def test_splitting_a_period_under_unchanged_volume_terms_changes_nothing(parts, tiers):
    amounts = volume_amount_segments([(part, tiers) for part in parts])

    assert len(amounts) == len(parts)
    assert sum(amounts, D(0)) == volume_amount(sum(parts, D(0)), tiers)


@given(
    st.decimals(min_value=-(10**6), max_value=10**6, places=4),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=1, max_value=400 * 86_400 * 10**6),
    st.lists(st.floats(min_value=0, max_value=1), max_size=6),
)
def test_prorated_shares_of_a_period_sum_to_the_amount(amount, start, length_us, cuts):
    # given a period cut at arbitrary instants (floats only place the cuts)
    end = start + timedelta(microseconds=length_us)
    points = [start + timedelta(microseconds=int(length_us * cut)) for cut in cuts]
    shares = period_shares(start, end, points)
    period = end - start

    # when the amount is prorated over each share
    total = sum((prorate(amount, covered=e - s, period=period) for s, e in shares), D(0))

    # then the pieces add up to the amount within half a unit in the 12th place each
    assert abs(total - amount) <= len(shares) * D("0.5E-12")
    assert shares[0][0] == start and shares[-1][1] == end
    assert all(a_end == b_start for (_, a_end), (b_start, _) in pairwise(shares))


@given(
    quantities,
    st.decimals(min_value="0.001", max_value=10**5, places=3),
    st.decimals(min_value="0.01", max_value=1000, places=2),
)
def test_package_amount_is_a_whole_number_of_packages(quantity, size, price):
    amount = package_amount(quantity, package_size=size, package_price=price)
    packages, remainder = divmod(amount, price)

    assert remainder == 0
    assert packages * size >= quantity
    assert quantity == 0 or (packages - 1) * size < quantity
