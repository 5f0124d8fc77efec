"""An estimated token count raised to a worst case: pricing.rating.estimated_tokens_bound."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.rating import estimated_tokens_bound


@pytest.mark.parametrize(
    ("tokens", "factor", "bound"),
    [
        (1000, "1.25", 1250),  # exact: nothing to round
        (9, "1.25", 12),  # 11.25 → 12: a bound rounds up, never down
        (7, "1.25", 9),  # 8.75 → 9
        (4, "1.25", 5),  # 5.00 exactly
        (3, "1.1", 4),  # 3.3 → 4
        (10, "1.1", 11),  # 11.0 exactly: no token added
        (0, "1.5", 0),
        (123_456_789, "1", 123_456_789),  # a factor of 1 changes nothing
        (1, "1.000000000001", 2),  # the smallest excess still costs a whole token
    ],
)
def test_an_estimate_is_multiplied_exactly_and_rounded_up(tokens, factor, bound):
    assert estimated_tokens_bound(tokens, Decimal(factor)) == bound


@pytest.mark.parametrize("factor", ["0.99", "0", "-1.25", "NaN", "Infinity"])
def test_a_factor_that_would_lower_the_count_is_refused(factor):
    with pytest.raises(ValueError, match="the safety factor must be at least 1"):
        estimated_tokens_bound(100, Decimal(factor))


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="a token count cannot be negative: -1"):
        estimated_tokens_bound(-1, Decimal("1.25"))


@given(
    st.integers(min_value=0, max_value=10**12),
    st.decimals(min_value=1, max_value=10, places=4, allow_nan=False, allow_infinity=False),
)
def test_the_bound_is_the_least_whole_count_at_or_above_the_product(tokens, factor):
    bound = estimated_tokens_bound(tokens, factor)

    assert bound >= tokens * factor > bound - 1
    assert bound >= tokens
