"""What an invoice line says (pricing/line_text.py): the customer's words, worked by hand."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pricing.line_text import (
    allowance_text,
    correction_beyond_text,
    correction_text,
    credits_text,
    discount_text,
    fee_text,
    in_force_span,
    minimum_text,
    per_text,
    single_rates,
    usage_details,
    usage_span,
    usage_text,
)

D = Decimal
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
PER_1M = 1_000_000
GPT_4O_RATES = {
    "rate_in": {"amount": "2.50", "per": PER_1M},
    "rate_out": {"amount": "10.00", "per": PER_1M},
    "rate_cached": {"amount": "1.25", "per": PER_1M},
}
STANDARD = "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
NAMES = {"input_tokens", "output_tokens", "cached_input_tokens", "rate_in", "rate_out"}


def details(formula=STANDARD, *, per_event=True, rates=None, names=None, places=2, **tokens):
    return usage_details(
        formula=formula,
        names=NAMES | {"rate_cached"} if names is None else names,
        per_event=per_event,
        rates=GPT_4O_RATES if rates is None else rates,
        quantities=tokens,
        minor_places=places,
    )


def test_a_standard_price_lists_each_metric_with_its_rate_and_unit():
    # 1,200,000 input at 2.50/1M and 300,000 output at 10.00/1M: 3.00 + 3.00 = 6.00. No
    # cached input was sent, so that metric is left out; reasoning tokens are not charged.
    assert details(input_tokens=1_200_000, output_tokens=300_000, reasoning_tokens=5) == [
        {"metric": "input_tokens", "label": "Input tokens", "quantity": "1200000",
         "rate": "2.50", "per": "1M tokens"},
        {"metric": "output_tokens", "label": "Output tokens", "quantity": "300000",
         "rate": "10.00", "per": "1M tokens"},
    ]  # fmt: skip


def test_rates_are_plain_decimals_with_the_currencys_minor_places_and_their_unit():
    rates = {"rate_in": {"amount": "0.075", "per": 1000}, "rate_out": {"amount": "3", "per": 1}}
    formula = "input_tokens * rate_in + output_tokens * rate_out"
    names = {"input_tokens", "output_tokens"}

    usd = details(formula, rates=rates, names=names, input_tokens=10, output_tokens=2)
    jpy = details(formula, rates=rates, names=names, places=0, input_tokens=10, output_tokens=2)

    assert [(row["rate"], row["per"]) for row in usd] == [("0.075", "1K tokens"), ("3.00", "token")]
    assert [(row["rate"], row["per"]) for row in jpy] == [("0.075", "1K tokens"), ("3", "token")]


def test_a_tiered_price_lists_its_tokens_without_a_rate():
    # A graduated price's formula is a quantity; the tiers price the period's total.
    rows = details(
        "input_tokens * rate_unit",
        per_event=False,
        rates={"rate_unit": {"amount": "1", "per": 1000}},
        names={"input_tokens", "rate_unit"},
        input_tokens=250_000,
    )

    assert rows == [
        {"metric": "input_tokens", "label": "Input tokens", "quantity": "250000",
         "rate": None, "per": None},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        (STANDARD, {"input_tokens": "rate_in", "output_tokens": "rate_out",
                    "cached_input_tokens": "rate_cached"}),
        # the catalog's formula for a model without a cached rate: cached at the input rate
        ("(input_tokens + cached_input_tokens) * rate_in + output_tokens * rate_out",
         {"input_tokens": "rate_in", "cached_input_tokens": "rate_in",
          "output_tokens": "rate_out"}),
        ("rate_out * output_tokens", {"output_tokens": "rate_out"}),
        # no single rate per metric: a condition, a factor, a subtraction, a metric twice,
        # a metric a line does not count, a rounding
        ("if(input_tokens > 200000, input_tokens * rate_out, input_tokens * rate_in)", None),
        ("input_tokens * rate_in * 0.5", None),
        ("input_tokens * rate_in - cached_input_tokens * rate_cached", None),
        ("input_tokens * rate_in + input_tokens * rate_out", None),
        ("input_tokens * rate_in + web_search_requests * rate_out", None),
        ("max(input_tokens * rate_in, rate_out)", None),
        ("input_tokens * rate_unknown", None),
    ],
)  # fmt: skip
def test_a_single_rate_per_metric_holds_only_for_a_plain_sum_of_metric_times_rate(
    formula, expected
):
    assert single_rates(formula, {**GPT_4O_RATES}) == expected


def test_a_formula_without_single_rates_lists_its_tokens_with_rate_null():
    formula = "if(input_tokens > 200000, input_tokens * rate_out, input_tokens * rate_in)"

    rows = details(formula, names={"input_tokens", "rate_in", "rate_out"}, input_tokens=7)

    assert rows == [
        {"metric": "input_tokens", "label": "Input tokens", "quantity": "7", "rate": None,
         "per": None},
    ]  # fmt: skip


def test_every_token_metric_has_a_label_in_plain_words():
    rows = details(
        "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
        " + cache_creation_input_tokens * rate_in + reasoning_tokens * rate_out",
        names={"input_tokens", "output_tokens", "cached_input_tokens",
               "cache_creation_input_tokens", "reasoning_tokens"},
        input_tokens=1, output_tokens=2, cached_input_tokens=3,
        cache_creation_input_tokens=4, reasoning_tokens=5,
    )  # fmt: skip

    assert [(row["label"], row["quantity"], row["rate"]) for row in rows] == [
        ("Input tokens", "1", "2.50"),
        ("Output tokens", "2", "10.00"),
        ("Cached input tokens", "3", "1.25"),
        ("Cache write tokens", "4", "2.50"),
        ("Reasoning tokens", "5", "10.00"),
    ]


def test_units_per_text():
    assert [per_text(per) for per in (1, 1_000, 1_000_000, 500)] == [
        "token", "1K tokens", "1M tokens", "500 tokens",
    ]  # fmt: skip


def test_a_version_prices_from_its_start_until_a_higher_numbered_one_starts():
    versions = [(1, NOV_1), (2, NOV_16), (3, datetime(2026, 11, 10, tzinfo=UTC))]
    # v3 (a correction from the 10th) hides v2, which would start later.
    assert in_force_span(versions, 1) == (NOV_1, datetime(2026, 11, 10, tzinfo=UTC))
    assert in_force_span(versions, 2) is None
    assert in_force_span(versions, 3) == (datetime(2026, 11, 10, tzinfo=UTC), None)
    assert in_force_span(versions, 4) is None  # not among them


def test_a_usage_line_is_dated_by_its_version_within_its_terms_else_by_its_events():
    segment = (NOV_1, DEC_1)

    assert usage_span(segment, (NOV_16, None), (None, None)) == (NOV_16, DEC_1)
    assert usage_span(segment, (datetime(2026, 10, 1, tzinfo=UTC), NOV_16), (None, None)) == (
        NOV_1, NOV_16,
    )  # fmt: skip
    # a version hidden before its usage was rated again: the events' first and last days
    first, last = datetime(2026, 11, 3, 9, tzinfo=UTC), datetime(2026, 11, 4, 18, tzinfo=UTC)
    assert usage_text("GPT-4o", usage_span(segment, None, (first, last))) == (
        "GPT-4o, 2026-11-03 to 2026-11-04"
    )
    assert usage_text("GPT-4o", usage_span(segment, (NOV_16, None), (None, None))) == (
        "GPT-4o, 2026-11-16 to 2026-11-30"
    )
    assert usage_text("GPT-4o") == "GPT-4o"


def test_the_other_lines_say_what_they_are_and_their_days():
    assert fee_text("monthly", NOV_1, DEC_1) == "Monthly fee, 2026-11-01 to 2026-11-30"
    assert fee_text("quarterly", NOV_16, DEC_1) == "Quarterly fee, 2026-11-16 to 2026-11-30"
    assert fee_text("yearly", NOV_1, DEC_1) == "Yearly fee, 2026-11-01 to 2026-11-30"
    assert discount_text(D("10.00"), NOV_16, DEC_1) == (
        "Discount 10 % on usage, 2026-11-16 to 2026-11-30"
    )
    assert discount_text(D("2.5"), NOV_1, DEC_1) == (
        "Discount 2.5 % on usage, 2026-11-01 to 2026-11-30"
    )
    assert allowance_text(D("0.03"), D("1200"), "USD", NOV_1, DEC_1) == (
        "Included usage allowance: 0.03 USD of 1,200.00 USD used, 2026-11-01 to 2026-11-30"
    )
    assert minimum_text(D("3000"), "USD", NOV_1, DEC_1) == (
        "Top-up to the minimum commitment of 3,000.00 USD, 2026-11-01 to 2026-11-30"
    )
    assert minimum_text(D("5000"), "JPY", NOV_1, DEC_1) == (
        "Top-up to the minimum commitment of 5,000 JPY, 2026-11-01 to 2026-11-30"
    )
    assert credits_text(D("5"), NOV_1, DEC_1) == "Prepaid credits applied, 2026-11-01 to 2026-11-30"
    assert credits_text(D("-0.01"), NOV_1, DEC_1) == (
        "Prepaid credits returned to your wallet, 2026-11-01 to 2026-11-30"
    )


@pytest.mark.parametrize(
    ("events", "terms_changed", "charges_changed", "why"),
    [
        (1, False, True, "1 call received late"),
        (1_204, False, True, "1,204 calls received late"),
        (-2, False, True, "2 calls no longer billed"),
        (3, True, True, "3 calls received late, contract terms changed"),
        (0, True, True, "contract terms changed"),
        (0, False, True, "usage repriced"),
        (0, False, False, "prepaid credits adjusted"),
    ],
)
def test_a_correction_names_the_invoice_its_days_and_why(
    events, terms_changed, charges_changed, why
):
    text = correction_text(
        invoice="INV-000001",
        start=NOV_1,
        end=DEC_1,
        events=events,
        terms_changed=terms_changed,
        charges_changed=charges_changed,
    )

    assert text == f"Correction of invoice INV-000001, 2026-11-01 to 2026-11-30: {why}"
    assert correction_beyond_text(text, "INV-000001") == (
        f"{text}, beyond what is left to credit on INV-000001"
    )
