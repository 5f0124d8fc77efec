"""An invoice's derived lines from its face (pricing.invoice): examples by hand and the
properties that make an invoice add up."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.invoice import invoice_face


def test_a_worked_period_with_two_segments():
    # Segment 1: lines 8.24 and 0.23, no discount; segment 2: lines 1.06 and 3.35, 5 % off
    # 4.41 = 0.2205, 0.22 once rounded. After discount 8.47 + 4.19 = 12.66. Allowance shares
    # 50.000000000001 + 49.999999999999 = 100.00; minimum shares 10 + 10 = 20.00.
    face = invoice_face(
        usage_lines=[[D("8.24"), D("0.23")], [D("1.06"), D("3.35")]],
        discounts=[D(0), D("0.05")],
        allowances=[D("50.000000000001"), D("49.999999999999")],
        minimums=[D("10"), D("10")],
        currency="USD",
    )

    assert face.discounts == (D("0.00"), D("0.22"))
    assert face.usage_after_discount == D("12.66")
    assert (face.allowance, face.allowance_used) == (D("100.00"), D("12.66"))
    assert (face.minimum, face.minimum_true_up) == (D("20.00"), D("7.34"))


def test_jpy_has_no_minor_places():
    face = invoice_face(
        usage_lines=[[D("1235")]],
        discounts=[D("0.1")],
        allowances=[D("100.4")],
        minimums=[D(0)],
        currency="JPY",
    )

    assert face.discounts == (D("124"),)  # 123.5, half up
    assert (face.allowance, face.allowance_used) == (D("100"), D("100"))


def test_one_entry_per_segment_is_required():
    with pytest.raises(ValueError, match="each segment"):
        invoice_face(usage_lines=[[]], discounts=[], allowances=[D(0)], minimums=[D(0)],
                     currency="USD")  # fmt: skip


cents = st.decimals(min_value=0, max_value=10_000, places=2)
shares = st.decimals(min_value=0, max_value=10_000, places=12)
fractions = st.decimals(min_value=0, max_value=1, places=4)
segments = st.lists(
    st.tuples(st.lists(cents, max_size=5), fractions, shares, shares), min_size=1, max_size=4
)


@given(segments)
def test_the_derived_lines_add_up_on_the_face(pieces):
    lines = [list(usage) for usage, _, _, _ in pieces]
    face = invoice_face(
        usage_lines=lines,
        discounts=[discount for _, discount, _, _ in pieces],
        allowances=[allowance for _, _, allowance, _ in pieces],
        minimums=[minimum for _, _, _, minimum in pieces],
        currency="USD",
    )
    usage = sum((sum(segment, D(0)) for segment in lines), D(0))
    billed = face.usage_after_discount - face.allowance_used + face.minimum_true_up

    assert face.usage_after_discount == usage - sum(face.discounts, D(0))
    assert all(d == d.quantize(D("0.01")) for d in face.discounts)
    assert 0 <= face.allowance_used <= face.allowance
    # Usage inside the allowance nets to zero; otherwise the allowance is used up.
    if face.usage_after_discount <= face.allowance:
        assert face.usage_after_discount - face.allowance_used == 0
    else:
        assert face.allowance_used == face.allowance
    # What is billed for usage never falls short of the minimum.
    assert face.usage_after_discount + face.minimum_true_up >= face.minimum
    assert billed >= 0
