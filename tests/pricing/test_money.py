"""Money rounded and written (pricing.money): the two roundings and the text helpers,
with figures worked by hand."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.credits import credits_move, credits_moved
from pricing.money import (
    exact_label,
    exact_text,
    minor_text,
    money_label,
    money_round,
    plain,
    rated,
    unit_price_of,
    whole_quantity_line,
)
from pricing.rating import charge_shares


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("0.0000000000005"), D("0E-12")),  # half to even: down to 0
        (D("0.0000000000015"), D("0.000000000002")),  # half to even: up to 2
        (D("-0.0000000000025"), D("-0.000000000002")),
    ],
)
def test_rated_figures_round_half_to_even_at_12_places(value, expected):
    assert rated(value) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (D("10.005"), "USD", "10.01"),  # half up, where half to even would give 10.00
        (D("-10.005"), "USD", "-10.01"),  # a half goes away from zero
        (D("999.5"), "JPY", "1000"),  # no minor unit
        (D("1.2345"), "BHD", "1.235"),  # three places
        (0, "EUR", "0.00"),
    ],
)
def test_billed_figures_round_half_up_to_the_minor_unit(value, currency, expected):
    assert minor_text(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (D("100"), "USD", "100.00 USD"),
        (D("100.000000000000"), "USD", "100.00 USD"),  # as a grant stores it
        (D("999.5"), "JPY", "1,000 JPY"),  # no minor unit, half up
        (D("1234.5"), "JPY", "1,235 JPY"),
        (D("1234567.8949"), "USD", "1,234,567.89 USD"),
        (D("-10.005"), "USD", "-10.01 USD"),
        (D("-1234.5"), "EUR", "-1,234.50 EUR"),
        (D("1.2345"), "BHD", "1.235 BHD"),
        (D("-0.004"), "USD", "0.00 USD"),  # rounds to zero: no minus sign
        (0, "JPY", "0 JPY"),
    ],
)
def test_a_label_has_the_minor_places_thousands_separators_and_the_code(value, currency, expected):
    assert money_label(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (D("0.004005253"), "USD", "0.004005253000 USD"),
        (D("1234.567890123456"), "USD", "1,234.567890123456 USD"),
        (D("1234.5"), "JPY", "1,234.500000000000 JPY"),  # exact: 12 places whatever the unit
        (D("-225.8064516129035"), "EUR", "-225.806451612904 EUR"),  # half to even
        (D("-0.0000000000004"), "USD", "0.000000000000 USD"),
    ],
)
def test_an_exact_label_has_the_12_rated_places_separators_and_the_code(value, currency, expected):
    assert exact_label(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (D("-0.00750000"), 0, "-0.0075"),
        (D("1E+2"), 0, "100"),
        (D("100.000000000000"), 2, "100.00"),
        (D("0.000002500000"), 2, "0.0000025"),
    ],
)
def test_plain_text_has_no_exponent_and_no_trailing_zeros_past_its_places(value, places, expected):
    assert plain(value, places) == expected


def test_exact_text_has_the_12_rated_places():
    assert exact_text(D("0.01")) == "0.010000000000"


def test_a_line_shows_its_count_at_a_unit_price_only_when_it_divides_exactly():
    assert unit_price_of(D(3), D("0.030000000000")) == (D(3), D("0.010000000000"))
    assert unit_price_of(D(3), D("0.010000000000")) == (D(1), D("0.010000000000"))
    assert unit_price_of(D(0), D("5")) == (D(1), D("5"))


def test_a_whole_quantity_line_is_sent_only_when_half_up_rounding_gives_the_amount():
    # 3 x 0.335 cents = 1.005 cents, half up: 1 cent = 0.01 USD.
    assert whole_quantity_line(D(3), D("0.00335"), D("0.01"), "USD") == (3, "0.335")
    # 3 x 0.335 cents is not 2 cents: sent as an amount instead.
    assert whole_quantity_line(D(3), D("0.00335"), D("0.02"), "USD") is None
    assert whole_quantity_line(D("1.5"), D("1"), D("1.50"), "USD") is None
    assert whole_quantity_line(D(1), D("-5"), D("-5"), "USD") is None


def test_a_tiered_charge_is_shared_by_quantity_and_the_last_share_takes_the_rest():
    # 10.00 over 1 : 2 : 0: 3.333333333333, then 6.666666666667 (rounded), and the rest 0.
    assert charge_shares(D("10"), [D(1), D(2), D(0)]) == [
        D("3.333333333333"),
        D("6.666666666667"),
        D("0.000000000000"),
    ]


@given(
    charge=st.decimals(min_value=0, max_value=10**6, places=12),
    quantities=st.lists(st.decimals(min_value=0, max_value=10**6, places=6), min_size=1),
)
def test_shares_always_sum_to_the_charge(charge, quantities):
    assert sum(charge_shares(charge, quantities), D(0)) == charge


def test_money_round_keeps_a_rounded_amount_as_it_is():
    assert money_round(D("59.00"), "USD") == D("59.00")


@pytest.mark.parametrize(
    ("billable", "drawn", "short", "cover", "got", "moved", "after"),
    [
        # re-rated from 10.00 to 7.00, nothing short: 3.00 back to the wallet
        ("7", "10", "0", False, "0", ("0", "3", "0"), ("7", "0")),
        # 12.00 billable, 7.00 drawn, 4.00 in the wallet: 5.00 asked, 1.00 short
        ("12", "7", "0", False, "4", ("0", "0", "5"), ("11", "1")),
        # 1.00 short and re-rated 0.50 lower: off the shortfall first, nothing back
        ("11.5", "11", "1", False, "0", ("0.5", "0", "0"), ("11", "0.5")),
        # credits cover arrears: the 1.00 short is asked again, and now paid
        ("12", "11", "1", True, "1", ("0", "0", "1"), ("12", "0")),
    ],
)
def test_a_periods_credits_follow_its_billable_usage(
    billable, drawn, short, cover, got, moved, after
):
    move = credits_move(
        billable=D(billable), settled=D(0), drawn=D(drawn), short=D(short), cover=cover
    )

    assert (move.from_short, move.refund, move.ask) == tuple(D(x) for x in moved)
    result = credits_moved(move, drawn=D(drawn), short=D(short), got=D(got), cover=cover)
    assert result == (D(after[0]), D(after[1]))
    assert sum(result, D(0)) == D(billable)
