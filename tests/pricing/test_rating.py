"""The rating engine's pure core (pricing.rating): exact examples, refusals and properties.

Pure functions: no database, no Django. Every expected figure below is worked out
by hand in the comment or id beside it.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.formula import formula_parse
from pricing.matching import Selector
from pricing.rating import (
    PER_UNITS,
    PriceTerms,
    Rate,
    RatingError,
    Segment,
    calls_billable,
    event_amount,
    event_quantity,
    event_values,
    period_charges,
    price_for_event,
    segment_at,
    tiered_charges,
)
from pricing.tiers import Tier

CANONICAL = "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
METRICS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens")
# gpt-4o's list prices: $2.50 / $10.00 / $1.25 per million input / output / cached-input tokens.
GPT_4O = {
    "rate_in": Rate(D("2.50"), 1_000_000),
    "rate_out": Rate(D("10.00"), 1_000_000),
    "rate_cached": Rate(D("1.25"), 1_000_000),
}
# 0-1000 at 0.01, 1000-10000 at 0.008, above at 0.005.
STEPPED = (Tier(D(1000), D("0.01")), Tier(D(10000), D("0.008")), Tier(None, D("0.005")))
T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def price(
    formula=CANONICAL,
    *,
    price_id=1,
    model="gpt-4o",
    feature="",
    properties=None,
    rates=None,
    kind="per_event",
    **extra,
) -> PriceTerms:
    rates = GPT_4O if rates is None else rates
    return PriceTerms(
        price_id=price_id,
        selector=Selector(model, feature, properties or {}),
        rates=rates,
        formula=formula_parse(formula, allowed_names=[*METRICS, *rates]),
        kind=kind,
        **extra,
    )


# -- rates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "per_unit"),
    [
        (Rate(D("2.50"), 1_000_000), D("0.0000025")),
        (Rate(D("10.00"), 1_000_000), D("0.00001")),
        (Rate(D("1.25"), 1_000_000), D("0.00000125")),
        (Rate(D("0.15"), 1_000), D("0.00015")),
        (Rate(D("0.002"), 1), D("0.002")),
        (Rate(D(3)), D(3)),  # per one unit unless said otherwise
        (Rate(D(0), 1_000_000), D(0)),
    ],
)
def test_a_rate_per_unit_is_its_amount_divided_exactly(rate, per_unit):
    assert rate.per_unit == per_unit


@pytest.mark.parametrize(
    ("amount", "per", "message"),
    [
        (D("2.50"), 100, "a rate is per 1, 1,000 or 1,000,000 units, not 100"),
        (D("2.50"), True, "a rate is per 1, 1,000 or 1,000,000 units, not True"),
        (D("-1"), 1, "a rate's amount must not be negative, got -1"),
        (2.5, 1, "a rate's amount must be a Decimal, not float"),
        (D("NaN"), 1, "a rate's amount must be a finite number, got NaN"),
    ],
)
def test_a_rate_is_refused_when_it_cannot_be_read(amount, per, message):
    with pytest.raises(RatingError) as caught:
        Rate(amount, per)

    assert str(caught.value) == message


# -- one event, per-event prices ----------------------------------------------------------


def test_the_canonical_example_costs_exactly_one_cent():
    # given gpt-4o at $2.50 / $10.00 / $1.25 per 1M tokens
    gpt_4o = price()

    # when a call with 1,000 input, 500 output and 2,000 cached tokens is rated
    amount = event_amount(
        gpt_4o, {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}
    )

    # then 1000 * 0.0000025 + 500 * 0.00001 + 2000 * 0.00000125 = 0.0025 + 0.005 + 0.0025
    assert amount == D("0.010000000000")
    assert str(amount) == "0.010000000000"  # kept at 12 places, not rounded to cents


@pytest.mark.parametrize(
    ("metrics", "amount"),
    [
        # no cached_input_tokens at all: 0.0025 + 0.005 + 0
        ({"input_tokens": 1000, "output_tokens": 500}, D("0.0075")),
        # decimal strings, as the event log stores non-integral values
        (
            {"input_tokens": "1000", "output_tokens": "500", "cached_input_tokens": "2000"},
            D("0.01"),
        ),
        # half a token of output: 0.5 * 0.00001
        ({"output_tokens": "0.5"}, D("0.000005")),
        # Decimals are taken too: 1 * 0.0000025 + 1 * 0.00001 + 1 * 0.00000125
        (
            {"input_tokens": D(1), "output_tokens": D(1), "cached_input_tokens": D(1)},
            D("0.00001375"),
        ),
        # metrics the formula does not use change nothing
        ({"input_tokens": 1000, "reasoning_tokens": 99, "images": 7}, D("0.0025")),
        ({}, D(0)),
        # a billion input tokens: 1e9 * 0.0000025, exactly
        ({"input_tokens": 1_000_000_000}, D(2500)),
    ],
)
def test_an_event_costs_its_metrics_at_the_per_unit_rates(metrics, amount):
    assert event_amount(price(), metrics) == amount


def test_a_formula_sees_rates_per_unit_and_the_metrics_it_uses_with_zero_for_absent_ones():
    values = event_values(price(), {"input_tokens": 1000, "output_tokens": "0.5", "images": 3})

    assert values == {
        "rate_in": D("0.0000025"),
        "rate_out": D("0.00001"),
        "rate_cached": D("0.00000125"),
        "input_tokens": D(1000),
        "output_tokens": D("0.5"),
        "cached_input_tokens": D(0),
    }


@pytest.mark.parametrize(
    ("rates", "metrics", "amount"),
    [
        # 0.5 per token * 0.000000000001 token = 5e-13: half an ulp, to even (0)
        ({"r": Rate(D("0.5"))}, {"input_tokens": "0.000000000001"}, D("0E-12")),
        # 1.5e-12 to even: 2e-12
        ({"r": Rate(D("1.5"))}, {"input_tokens": "0.000000000001"}, D("2E-12")),
        # 2.5e-12 to even: 2e-12
        ({"r": Rate(D("2.5"))}, {"input_tokens": "0.000000000001"}, D("2E-12")),
        # 1/3 of a cent per token... typed as 0.0033333333333333 (16 places): 0.003333333333
        ({"r": Rate(D("0.0033333333333333"))}, {"input_tokens": 1}, D("0.003333333333")),
        # $2.50 per 1M on 0.3 tokens: 0.00000075 exactly
        ({"r": Rate(D("2.50"), 1_000_000)}, {"input_tokens": "0.3"}, D("0.00000075")),
    ],
)
def test_an_event_amount_is_rounded_half_to_even_to_12_places(rates, metrics, amount):
    result = event_amount(price("input_tokens * r", rates=rates), metrics)

    assert result == amount
    assert result.as_tuple().exponent == -12


def test_a_formula_that_gives_a_negative_amount_is_refused_at_rating_time():
    # given a formula that subtracts: output tokens cost less than nothing
    credit = price("input_tokens * rate_in - output_tokens * rate_out", price_id=7)

    # then an event where the subtraction wins is refused, naming the price and the value
    with pytest.raises(RatingError) as caught:
        event_amount(credit, {"input_tokens": 1000, "output_tokens": 1000})
    assert str(caught.value) == (
        "price 7: the formula gives -0.0075 for this event, and a charge must not be "
        "negative (a credit is an adjustment, not a price)"
    )
    # and one where it does not is rated: 4000 * 0.0000025 - 500 * 0.00001 = 0.01 - 0.005
    assert event_amount(credit, {"input_tokens": 4000, "output_tokens": 500}) == D("0.005")


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"input_tokens": -1}, "price 3: metric 'input_tokens' must not be negative, got -1"),
        (
            {"input_tokens": 1.5},
            "price 3: metric 'input_tokens' must be an int or a decimal string, not float",
        ),
        (
            {"input_tokens": True},
            "price 3: metric 'input_tokens' must be an int or a decimal string, not bool",
        ),
        ({"input_tokens": "lots"}, "price 3: metric 'input_tokens' is not a number: 'lots'"),
        (
            {"input_tokens": "Infinity"},
            "price 3: metric 'input_tokens' is not a number: 'Infinity'",
        ),
    ],
)
def test_an_event_with_an_unreadable_metric_is_refused(metrics, message):
    with pytest.raises(RatingError) as caught:
        event_amount(price(price_id=3), metrics)

    assert str(caught.value) == message


def test_a_formula_error_at_rating_time_is_a_rating_error_naming_the_price():
    # given a price per output token relative to input, and an event without input
    ratio = price("output_tokens / input_tokens * rate_out", price_id=4)

    with pytest.raises(RatingError) as caught:
        event_amount(ratio, {"output_tokens": 10})

    assert str(caught.value).startswith("price 4: ")
    assert "division by zero" in str(caught.value)


# -- one event, tiered prices -------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "metrics", "quantity"),
    [
        ("input_tokens + output_tokens", {"input_tokens": 1000, "output_tokens": 500}, D(1500)),
        ("(input_tokens + output_tokens) / 1000", {"input_tokens": 1000}, D(1)),
        ("input_tokens / 1000", {"input_tokens": 1}, D("0.001")),
        ("input_tokens / 3", {"input_tokens": 1}, D("0.333333333333")),  # 12 places
        ("input_tokens / 3", {"input_tokens": 2}, D("0.666666666667")),  # half-even, up
        ("input_tokens + output_tokens", {}, D(0)),
    ],
)
def test_a_tiered_price_turns_each_event_into_a_quantity(formula, metrics, quantity):
    line = price(formula, rates={}, kind="graduated", tiers=STEPPED)

    assert event_quantity(line, metrics) == quantity


def test_amount_and_quantity_each_belong_to_their_kind_of_price():
    line = price("input_tokens", rates={}, kind="volume", tiers=STEPPED, price_id=5)

    with pytest.raises(RatingError) as amount:
        event_amount(line, {"input_tokens": 1})
    with pytest.raises(RatingError) as quantity:
        event_quantity(price(price_id=6), {"input_tokens": 1})

    assert str(amount.value) == (
        "price 5 is volume: its events add a quantity (event_quantity), "
        "priced over the period (tiered_charges)"
    )
    assert str(quantity.value) == ("price 6 is per_event: its events cost an amount (event_amount)")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"kind": "flat"}, "price 1: kind must be one of per_event, graduated, volume, package"),
        ({"tiers": STEPPED}, "price 1: only graduated and volume prices have tiers"),
        ({"kind": "graduated"}, "price 1: a tier table needs at least one tier"),
        (
            {"package_size": D(1000), "package_price": D(1)},
            "price 1: only package prices have a package size and price",
        ),
        ({"kind": "package", "package_price": D(1)}, "price 1: package_size must be a Decimal"),
        (
            {"kind": "package", "package_size": D(0), "package_price": D(1)},
            "price 1: package_size must be greater than 0, got 0",
        ),
        (
            {"kind": "package", "package_size": D(10), "package_price": D(-1)},
            "price 1: package_price must not be negative, got -1",
        ),
    ],
)
def test_price_terms_that_cannot_be_rated_are_refused_when_built(extra, message):
    with pytest.raises(RatingError) as caught:
        price("input_tokens", rates={}, **extra)

    assert str(caught.value).startswith(message)


# -- which price --------------------------------------------------------------------------

PRICES = (
    price(price_id=1, model="gpt-4o*"),
    price(price_id=2, model="gpt-4o"),
    price(price_id=3, model="gpt-4o", feature="support"),
    price(price_id=4, model="gpt-4o", properties={"inference": "batch"}),
    price(price_id=5, model="gpt-4o-mini*"),
)


@pytest.mark.parametrize(
    ("model", "feature", "properties", "price_id"),
    [
        ("gpt-4o", "", {}, 2),  # exact beats the pattern
        ("gpt-4o-2024-08-06", "", {}, 1),  # only the pattern matches
        ("gpt-4o-mini", "", {}, 5),  # the longer pattern is more specific
        ("gpt-4o", "support", {}, 3),  # a feature beats any feature
        ("gpt-4o", "search", {}, 2),
        ("gpt-4o", "", {"inference": "batch"}, 4),  # a property filter beats none
        ("gpt-4o", "", {"inference": "online"}, 2),
        ("claude-sonnet-4-5", "", {}, None),  # unpriced: no price, never free
    ],
)
def test_the_most_specific_price_applies_and_none_means_unpriced(
    model, feature, properties, price_id
):
    chosen = price_for_event(PRICES, model=model, feature=feature, properties=properties)

    assert (chosen and chosen.price_id) == price_id


def test_no_prices_leave_every_event_unpriced():
    assert price_for_event((), model="gpt-4o", feature="", properties={}) is None


# -- properties of one event --------------------------------------------------------------

metric_values = st.one_of(
    st.integers(min_value=0, max_value=10**10),
    st.decimals(min_value=0, max_value=10**6, places=6).map(lambda value: format(value, "f")),
)
event_metrics = st.dictionaries(st.sampled_from(METRICS), metric_values, max_size=len(METRICS))
rates = st.builds(
    Rate,
    st.decimals(min_value=0, max_value=1000, places=4),
    st.sampled_from(PER_UNITS),
)
# Formulas in which every term is multiplied by a rate.
RATED_FORMULAS = (
    CANONICAL,
    "max(input_tokens * rate_in, output_tokens * rate_out)",
    "(input_tokens + cached_input_tokens) * rate_in + ceil(output_tokens / 1000) * rate_out",
    "if(input_tokens > 200000, input_tokens * rate_cached, input_tokens * rate_in)",
    "min(input_tokens, 1000) * rate_in + max(input_tokens - 1000, 0) * rate_cached",
)


@given(
    formula=st.sampled_from(RATED_FORMULAS),
    per=st.sampled_from(PER_UNITS),
    metrics=event_metrics,
)
def test_a_price_whose_rates_are_all_zero_costs_nothing(formula, per, metrics):
    zero = {name: Rate(D(0), per) for name in ("rate_in", "rate_out", "rate_cached")}

    assert event_amount(price(formula, rates=zero), metrics) == 0


@given(rate_in=rates, rate_out=rates, rate_cached=rates, metrics=event_metrics)
def test_an_amount_is_the_exact_cost_to_half_an_ulp_of_12_places_and_never_negative(
    rate_in, rate_out, rate_cached, metrics
):
    terms = {"rate_in": rate_in, "rate_out": rate_out, "rate_cached": rate_cached}

    amount = event_amount(price(rates=terms), metrics)

    exact = sum(
        Fraction(D(metrics.get(metric, 0))) * Fraction(terms[rate].amount) / terms[rate].per
        for metric, rate in (
            ("input_tokens", "rate_in"),
            ("output_tokens", "rate_out"),
            ("cached_input_tokens", "rate_cached"),
        )
    )
    assert amount >= 0
    assert amount.as_tuple().exponent == -12
    assert abs(Fraction(amount) - exact) <= Fraction(1, 2 * 10**12)


# -- tiered lines over a period -----------------------------------------------------------

OLD = (Tier(D(1000), D(1)), Tier(None, D("0.5")))
NEW = (Tier(D(1000), D(2)), Tier(None, D(1)))


def graduated(tiers, price_id=1):
    return price("input_tokens", rates={}, kind="graduated", tiers=tiers, price_id=price_id)


def volume(tiers, price_id=1):
    return price("input_tokens", rates={}, kind="volume", tiers=tiers, price_id=price_id)


def package(size, cost, price_id=1):
    return price(
        "input_tokens",
        rates={},
        kind="package",
        package_size=D(size),
        package_price=D(cost),
        price_id=price_id,
    )


@pytest.mark.parametrize(
    ("segments", "charges"),
    [
        ([], []),
        ([(D(2500), graduated(STEPPED))], [D(22)]),  # 1000 * 0.01 + 1500 * 0.008
        # tier positions run on: 800 at 1 under OLD; then positions 800..1300 under NEW:
        # 200 * 2 + 300 * 1 = 700 (pricing.tiers' example)
        ([(D(800), graduated(OLD)), (D(500), graduated(NEW))], [D(800), D(700)]),
        # volume: the total 1300 is in tier 2 of both tables: 800 * 0.5 and 500 * 1
        ([(D(800), volume(OLD)), (D(500), volume(NEW))], [D(400), D(500)]),
        # package of 1000 at $10: 2500 units need 3 packages
        ([(D(2500), package(1000, 10))], [D(30)]),
        # the same in two segments: 600 buys 1 package (covers 1000); 1900 reaches 2500,
        # 1500 beyond the cover: 2 more packages
        ([(D(600), package(1000, 10)), (D(1900), package(1000, 10))], [D(10), D(20)]),
        # a smaller, cheaper package from the amendment on: 500 used buys one package
        # of 1000 for $10, covering up to 1000; 700 more reach 1200, 200 beyond the
        # cover: one new package of 300 at $4
        ([(D(500), package(1000, 10)), (D(700), package(300, 4))], [D(10), D(4)]),
        # nothing used in a segment buys nothing there
        ([(D(0), package(1000, 10)), (D(1), package(1000, 10))], [D(0), D(10)]),
    ],
)
def test_a_tiered_line_is_charged_per_segment_with_positions_running_on(segments, charges):
    assert tiered_charges(segments) == charges


def test_tiered_amounts_are_rounded_on_the_running_total_of_the_period():
    # given a unit price of 5e-13: one unit is half an ulp of the 12th place
    tiny = graduated((Tier(None, D("0.0000000000005")),))

    # when two segments use one unit each
    charges = tiered_charges([(D(1), tiny), (D(1), tiny)])

    # then the running totals 5e-13 and 1e-12 round (half to even) to 0 and 1e-12: the
    # second segment is charged the step, and the two sum to the unsplit period's 1e-12
    assert charges == [D(0), D("1E-12")]
    assert tiered_charges([(D(2), tiny)]) == [D("1E-12")]


def test_a_tiered_line_is_of_one_tiered_kind():
    with pytest.raises(RatingError) as mixed:
        tiered_charges([(D(1), graduated(OLD, price_id=8)), (D(1), volume(OLD, price_id=9))])
    with pytest.raises(RatingError) as per_event:
        tiered_charges([(D(1), price(price_id=10))])
    with pytest.raises(RatingError) as negative:
        tiered_charges([(D(-1), graduated(OLD))])

    assert str(mixed.value).startswith("prices 8, 9: one tiered line is of one tiered kind")
    assert str(per_event.value).startswith("prices 10: one tiered line is of one tiered kind")
    assert str(negative.value) == "segment 1: quantity must not be negative, got -1"


quantities = st.decimals(min_value=0, max_value=10**6, places=3)
unit_prices = st.decimals(min_value=0, max_value=1, places=15)  # more places than kept
tier_tables = st.builds(
    lambda bound, low, high, fee: (Tier(D(bound), low, fee), Tier(None, high)),
    st.integers(min_value=1, max_value=10**5),
    unit_prices,
    unit_prices,
    st.decimals(min_value=0, max_value=100, places=2),
)
tiered_lines = st.one_of(
    tier_tables.map(graduated),
    tier_tables.map(volume),
    st.builds(
        package,
        st.decimals(min_value="0.001", max_value=10**4, places=3),
        st.decimals(min_value=0, max_value=100, places=2),
    ),
)


@given(line=tiered_lines, used=st.lists(quantities, min_size=1, max_size=6))
def test_splitting_a_period_under_unchanged_tiered_terms_changes_nothing(line, used):
    split = tiered_charges([(quantity, line) for quantity in used])
    whole = tiered_charges([(sum(used), line)])

    assert sum(split) == whole[0]
    assert all(charge >= 0 for charge in split)


# -- segments and the period --------------------------------------------------------------


def test_an_event_at_the_amendment_instant_is_rated_with_the_new_terms():
    before = Segment(T0, T0 + 10 * DAY)
    after = Segment(T0 + 10 * DAY, T0 + 30 * DAY)
    segments = (before, after)

    assert segment_at(segments, T0) is before
    assert segment_at(segments, T0 + 10 * DAY - timedelta(microseconds=1)) is before
    assert segment_at(segments, T0 + 10 * DAY) is after
    assert segment_at(segments, T0 + 30 * DAY) is None  # the period is half-open
    assert segment_at(segments, T0 - timedelta(microseconds=1)) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"end": T0}, "a segment must end"),
        ({"start": datetime(2026, 11, 1)}, "a segment's start must be a timezone-aware datetime"),
        ({"discount": D("1.1")}, "discount is a fraction from 0 to 1, got 1.1"),
        ({"discount": D("-0.1")}, "discount must not be negative, got -0.1"),
        ({"fixed_fee": D(-1)}, "fixed_fee must not be negative, got -1"),
        ({"included_allowance": 30.0}, "included_allowance must be a Decimal, not float"),
        ({"minimum_commitment": D(-5)}, "minimum_commitment must not be negative, got -5"),
    ],
)
def test_a_segment_with_impossible_terms_is_refused(fields, message):
    with pytest.raises(RatingError) as caught:
        Segment(**{"start": T0, "end": T0 + 30 * DAY, **fields})

    assert str(caught.value).startswith(message)


def test_a_mid_period_amendment_splits_fees_allowance_and_discount_by_hand():
    # given a 30-day period, amended at the start of day 11 (after 10 days):
    #   before: fee $300, allowance $30, no discount, $50 of usage
    #   after:  fee $600, allowance $60, 10% discount, $100 of usage
    start, amended, end = T0, T0 + 10 * DAY, T0 + 30 * DAY
    segments = (
        Segment(start, amended, fixed_fee=D(300), included_allowance=D(30)),
        Segment(amended, end, fixed_fee=D(600), included_allowance=D(60), discount=D("0.1")),
    )

    charges = period_charges(
        period_start=start, period_end=end, segments=segments, usage_by_segment=[D(50), D(100)]
    )

    # fixed fees: 300 * 10/30 = 100 and 600 * 20/30 = 400
    assert charges.fixed_fees == (D(100), D(400))
    # allowances: 30 * 10/30 = 10 and 60 * 20/30 = 40; pooled: 50
    assert charges.allowances == (D(10), D(40))
    # discount: none before; 10% of 100 = 10 after; usage after discount 50 and 90
    assert charges.discounts == (D(0), D(10))
    assert charges.usage_by_segment == (D(50), D(90))
    # allowance used: min(50 + 90, 10 + 40) = min(140, 50) = 50
    assert charges.allowance_used == D(50)
    # no minimum commitment: no true-up
    assert charges.minimums == (D(0), D(0))
    assert charges.minimum_true_up == D(0)
    # total: usage 140 - allowance 50 + fees 500 = 590
    assert charges.total == D(590)


def test_the_allowance_is_pooled_over_the_period_whichever_segment_used_it():
    # given the same amendment, with $5 of usage before it (less than that segment's
    # $10 allowance share) and $100 after
    segments = (
        Segment(T0, T0 + 10 * DAY, included_allowance=D(30)),
        Segment(T0 + 10 * DAY, T0 + 30 * DAY, included_allowance=D(60), discount=D("0.1")),
    )

    charges = period_charges(
        period_start=T0, period_end=T0 + 30 * DAY, segments=segments, usage_by_segment=[5, 100]
    )

    # then the unused $5 of the first share covers usage after the amendment:
    # usage 5 + 90 = 95, allowance 10 + 40 = 50, used min(95, 50) = 50; total 95 - 50 = 45
    assert charges.allowance_used == D(50)
    assert charges.total == D(45)


@pytest.mark.parametrize(
    ("fee", "allowance", "discount", "minimum", "usage", "allowance_used", "true_up", "total"),
    [
        # usage above the minimum: no true-up; total = usage
        (0, 0, "0", 100, 150, 0, 0, 150),
        # usage exactly at the minimum
        (0, 0, "0", 100, 100, 0, 0, 100),
        # usage below it: 100 - 40 = 60 more; total 40 + 60 = 100
        (0, 0, "0", 100, 40, 0, 60, 100),
        # no usage at all: the whole minimum
        (0, 0, "0", 100, 0, 0, 100, 100),
        # usage the allowance covers counts toward the minimum: 50 - 30 + (100 - 50) = 70
        (0, 30, "0", 100, 50, 30, 50, 70),
        # compared after the discount: 100 - 10% = 90 -> 10 more; total 90 + 10 = 100
        (0, 0, "0.1", 100, 100, 0, 10, 100),
        # fixed fees do not count toward it: 200 + 40 + (100 - 40) = 300
        (200, 0, "0", 100, 40, 0, 60, 300),
        # the rule taken literally when the allowance exceeds the minimum:
        # 40 - 40 (all allowance) + (100 - 40) = 60
        (0, 150, "0", 100, 40, 40, 60, 60),
    ],
)
def test_a_minimum_commitment_is_trued_up_against_usage_after_discount_before_allowance(
    fee, allowance, discount, minimum, usage, allowance_used, true_up, total
):
    segment = Segment(
        T0,
        T0 + 30 * DAY,
        fixed_fee=D(fee),
        included_allowance=D(allowance),
        discount=D(discount),
        minimum_commitment=D(minimum),
    )

    charges = period_charges(
        period_start=T0, period_end=T0 + 30 * DAY, segments=(segment,), usage_by_segment=[D(usage)]
    )

    assert charges.allowance_used == D(allowance_used)
    assert charges.minimum_true_up == D(true_up)
    assert charges.total == D(total)


def test_a_minimum_commitment_added_mid_period_is_prorated():
    # given no minimum for 10 days of 30, then $300 per period
    segments = (
        Segment(T0, T0 + 10 * DAY),
        Segment(T0 + 10 * DAY, T0 + 30 * DAY, minimum_commitment=D(300)),
    )

    charges = period_charges(
        period_start=T0, period_end=T0 + 30 * DAY, segments=segments, usage_by_segment=[50, 100]
    )

    # then the minimum is 0 + 300 * 20/30 = 200; usage 150; true-up 50; total 200
    assert charges.minimums == (D(0), D(200))
    assert charges.minimum_true_up == D(50)
    assert charges.total == D(200)


def test_shares_that_do_not_divide_evenly_are_kept_to_12_places():
    # given a $100 minimum over three 10-day segments of a 30-day period
    segments = tuple(
        Segment(T0 + n * 10 * DAY, T0 + (n + 1) * 10 * DAY, minimum_commitment=D(100))
        for n in range(3)
    )

    charges = period_charges(
        period_start=T0, period_end=T0 + 30 * DAY, segments=segments, usage_by_segment=[0, 0, 0]
    )

    # then each share is 100/3 = 33.333333333333 (12 places, half to even) and the
    # three sum to 0.000000000001 short of 100 (within 3 half-ulps): far below a cent
    assert charges.minimums == (D("33.333333333333"),) * 3
    assert charges.minimum_true_up == D("99.999999999999")


@pytest.mark.parametrize(
    ("segments", "usage", "message"),
    [
        ((), [], "a period has at least one segment"),
        ((Segment(T0 + DAY, T0 + 30 * DAY),), [0], "the first segment starts at"),
        ((Segment(T0, T0 + 29 * DAY),), [0], "the last segment ends at"),
        (
            (Segment(T0, T0 + 10 * DAY), Segment(T0 + 11 * DAY, T0 + 30 * DAY)),
            [0, 0],
            "segment 2 starts at 2026-11-12 00:00:00+00:00, not where segment 1 ends",
        ),
        ((Segment(T0, T0 + 30 * DAY),), [0, 0], "2 usage amounts for 1 segments"),
        ((Segment(T0, T0 + 30 * DAY),), [D(-1)], "segment 1: usage must not be negative"),
        (
            (Segment(T0, T0 + 30 * DAY),),
            [D("0.0000000000001")],
            "segment 1: usage 1E-13 has more than 12 decimal places",
        ),
    ],
)
def test_a_period_is_refused_unless_its_segments_tile_it_and_its_usage_is_rated(
    segments, usage, message
):
    with pytest.raises(RatingError) as caught:
        period_charges(
            period_start=T0, period_end=T0 + 30 * DAY, segments=segments, usage_by_segment=usage
        )

    assert str(caught.value).startswith(message)


# -- splitting a period at an amendment that changes nothing --------------------------------

money = st.decimals(min_value=0, max_value=10_000, places=2)
token_counts = st.fixed_dictionaries(
    {name: st.integers(min_value=0, max_value=10**6) for name in METRICS[:3]}
)


def rate_period(start, end, segments, events):
    """Rate events into their segments and charge the period, as the services will."""
    amounts = [D(0)] * len(segments)
    used = [D(0)] * len(segments)
    for at, feature, metrics in events:
        index = next(n for n, segment in enumerate(segments) if segment is segment_at(segments, at))
        terms = price_for_event(
            segments[index].prices, model="gpt-4o", feature=feature, properties={}
        )
        if terms.kind == "per_event":
            amounts[index] += event_amount(terms, metrics)
        else:
            used[index] += event_quantity(terms, metrics)
    tiered_line = [
        (quantity, segment.prices[1]) for quantity, segment in zip(used, segments, strict=True)
    ]
    usage = [a + t for a, t in zip(amounts, tiered_charges(tiered_line), strict=True)]
    return usage, period_charges(
        period_start=start, period_end=end, segments=segments, usage_by_segment=usage
    )


@given(
    days_in=st.integers(min_value=0, max_value=400),
    length=st.integers(min_value=3600, max_value=40 * 86400),
    cut=st.integers(min_value=1, max_value=999),  # thousandths of the period
    terms=st.fixed_dictionaries(
        {
            "fixed_fee": money,
            "included_allowance": money,
            "discount": st.decimals(min_value=0, max_value=1, places=2),
            "minimum_commitment": money,
        }
    ),
    rate_values=st.tuples(rates, rates, rates),
    tiers=tier_tables,
    events=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=999_999),  # millionths of the period
            st.sampled_from(["chat", "embed"]),
            token_counts,
        ),
        max_size=20,
    ),
)
def test_splitting_a_period_at_an_amendment_that_changes_nothing_changes_nothing(
    days_in, length, cut, terms, rate_values, tiers, events
):
    # given one set of terms: a per-event gpt-4o price and a graduated line for embeddings
    start = T0 + days_in * DAY
    end = start + timedelta(seconds=length)
    amended = start + timedelta(seconds=length * cut // 1000)
    per_event = price(
        rates=dict(zip(("rate_in", "rate_out", "rate_cached"), rate_values, strict=True))
    )
    embeddings = price(
        "input_tokens", rates={}, kind="graduated", tiers=tiers, feature="embed", price_id=2
    )
    prices = (per_event, embeddings)
    timed = [
        (start + timedelta(seconds=length * offset // 1_000_000), feature, metrics)
        for offset, feature, metrics in events
    ]

    # when the period is rated whole, and cut in two at an amendment with the same terms
    usage, whole = rate_period(start, end, (Segment(start, end, prices, **terms),), timed)
    split_segments = (
        Segment(start, amended, prices, **terms),
        Segment(amended, end, prices, **terms),
    )
    split_usage, split = rate_period(start, end, split_segments, timed)

    # then usage, per-event and tiered alike, is identical to the last place
    assert sum(split_usage) == usage[0]
    # the whole period's fee is the fee; the two shares sum to it within 2 half-ulps
    assert whole.fixed_fees == (terms["fixed_fee"],)
    assert abs(sum(split.fixed_fees) - terms["fixed_fee"]) <= D("1E-12")
    # and the total moves by rounding of the 12th place only. total = max(0, U - A) + F
    # + max(0, M - U) is 1-Lipschitz in each of: discounted usage U (two discounts
    # rounded against one: 1.5e-12, counted twice), allowance A, fees F and minimum M
    # (two prorated shares against the exact whole: 1e-12 each): 6e-12 at most
    assert abs(split.total - whole.total) <= D("6E-12")


# -- a call's cost: what it adds to the period's billable usage (rule 14) ----------------


def test_a_call_costs_what_it_adds_to_the_billable_usage_after_discount_beyond_the_allowance():
    # given a period with 10 % off and an allowance of 15.00, 10.00 of usage already, then
    # two calls of 10.00 each, in that order
    segment = Segment(T0, T0 + 30 * DAY, included_allowance=D(15), discount=D("0.1"))

    costs = calls_billable(
        period_start=T0,
        period_end=T0 + 30 * DAY,
        segments=(segment,),
        usage_by_segment=[[D(10)], [D(20)], [D(30)]],
    )

    # then billable usage goes 10 - 1 - 9 = 0, 20 - 2 - 15 = 3, 30 - 3 - 15 = 12: the first
    # call costs 9.00 after discount, of which the 6.00 of allowance left pay 6.00, so 3.00;
    # the second, with no allowance left, its 9.00
    assert costs == [D(3), D(9)]


def test_calls_across_an_amendment_share_the_pooled_allowance_in_the_order_they_happened():
    # given an amendment after 10 days of 30 adding 10 % off, allowance shares of 10 and 40
    # (pooled: 50), and 45.00 of usage before it; then a call of 20.00 after it and one
    # of 5.00 before it, in that order
    segments = (
        Segment(T0, T0 + 10 * DAY, included_allowance=D(30)),
        Segment(T0 + 10 * DAY, T0 + 30 * DAY, included_allowance=D(60), discount=D("0.1")),
    )

    costs = calls_billable(
        period_start=T0,
        period_end=T0 + 30 * DAY,
        segments=segments,
        usage_by_segment=[[D(45), D(0)], [D(45), D(20)], [D(50), D(20)]],
    )

    # then billable usage goes 45 - 45 = 0, 45 + 18 - 50 = 13, 50 + 18 - 50 = 18: the
    # 18.00 after discount of the first call finds 5.00 of allowance left (13.00), the
    # second call none (5.00)
    assert costs == [D(13), D(5)]


def test_a_volume_call_that_reprices_the_line_lower_costs_less_than_nothing():
    # given a volume line whose 100 units cost 100 x 1.00 = 100.00 and 110 units
    # 110 x 0.50 = 55.00 (tiered_charges gives each figure): the call of 10 units lowers it
    segment = Segment(T0, T0 + 30 * DAY)

    costs = calls_billable(
        period_start=T0,
        period_end=T0 + 30 * DAY,
        segments=(segment,),
        usage_by_segment=[[D(100)], [D(55)]],
    )

    assert costs == [D(-45)]


@given(
    discount=st.decimals(min_value=0, max_value=1, places=3),
    allowance=st.decimals(min_value=0, max_value=100, places=2),
    before=st.decimals(min_value=0, max_value=100, places=12),
    calls=st.lists(st.decimals(min_value=0, max_value=50, places=12), min_size=1, max_size=6),
)
def test_per_event_calls_cost_between_nothing_and_their_amount_and_sum_to_what_they_added(
    discount, allowance, before, calls
):
    segment = Segment(T0, T0 + 30 * DAY, included_allowance=allowance, discount=discount)
    running = [before]
    for amount in calls:
        running.append(running[-1] + amount)

    costs = calls_billable(
        period_start=T0,
        period_end=T0 + 30 * DAY,
        segments=(segment,),
        usage_by_segment=[[usage] for usage in running],
    )

    def billable(usage):
        return period_charges(
            period_start=T0, period_end=T0 + 30 * DAY, segments=(segment,), usage_by_segment=[usage]
        ).billable

    assert sum(costs) == billable(running[-1]) - billable(running[0])
    assert all(0 <= cost <= amount for cost, amount in zip(costs, calls, strict=True))
    if not discount and not allowance:
        assert costs == calls
