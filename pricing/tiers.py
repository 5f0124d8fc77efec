"""Tier and proration maths for prices aggregated over a billing period.

Pure Python, no Django: every function takes and returns ``Decimal`` (ints are
accepted where a quantity is expected; floats never are) and the arithmetic is
exact.  Additions and multiplications run in a context with the maximum
precision, which the ``decimal`` documentation gives as the recipe for exact
arithmetic on finite operands, so no digit is ever rounded away.  The one
division, in :func:`prorate`, is done on integers and rounded once, explicitly.

Tier tables
-----------
A table is a sequence of :class:`Tier` rows.  Row *i* covers the quantities
above the previous row's ``up_to`` (0 for the first row) up to and including
its own ``up_to``; the last row has ``up_to=None`` and runs to infinity.  So
with ``up_to`` 1000 then ``None``, a quantity of exactly 1000 lies wholly in
tier 1 and the 1001st unit is the first one in tier 2.  Quantities may be
fractional (a per-1K price aggregated over tokens); slices are continuous.
Tier indices in breakdowns and messages are 1-based, as a person reads them.

* **graduated**: each slice of the quantity is priced at its own tier, and the
  flat fee of every tier the quantity enters (has any part of) is added once.
* **volume**: every unit is priced at the tier the whole quantity falls in,
  plus that tier's flat fee.  A quantity of 0 costs nothing.
* **package**: ``ceil(quantity / package_size) * package_price``.

Tiers across an amendment within one period
-------------------------------------------
An amendment can replace a tier table in the middle of a period.  The rule:

1. **Tier position is cumulative over the whole period.**  The units used
   before the amendment count toward the thresholds after it: if 800 units
   were used under the old table, the first unit under the new table is unit
   801 of the period.  A mid-period amendment therefore neither resets a
   customer's progress toward cheaper tiers nor lets them restart at the top
   of a table's expensive first tier.

2. **Graduated**: each segment's units are priced by the table in force in
   that segment, at the positions they occupy.  Example: old table 0-1000 @1,
   1000+ @0.5; segment A uses 800 units (old table) = 800; segment B uses 500
   under the new table 0-1000 @2, 1000+ @1.  B's units occupy positions
   800..1300: 200 at 2 + 300 at 1 = 700.  A tier's flat fee is charged in the
   segment whose units first enter that tier (by that segment's table); a
   tier whose lower bound the period had already passed before the segment
   started is not charged again.

3. **Volume**: the tier is decided by the period's *total* quantity.  Each
   segment's units are priced at the unit price of the tier the total falls
   in, read from the table in force in that segment.  The flat fee is that of
   the table in force at the period end, charged once, in the last segment
   (and only when the total is above 0).

The invariant this buys, tested as a property: **splitting a period at an
amendment that does not change the table changes nothing** - the segments'
amounts sum to exactly the amount of the unsplit period, for graduated and
volume alike.

Proration
---------
:func:`prorate` scales a fixed amount (a fee, an allowance) by the share of a
period that a set of terms covers, and :func:`period_shares` cuts a half-open
period ``[start, end)`` at the amendment instants inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import pairwise

from .money import EXACT, RATED_PLACES

__all__ = [
    "Tier",
    "TierError",
    "graduated_amount",
    "graduated_amount_segments",
    "graduated_breakdown",
    "package_amount",
    "period_shares",
    "prorate",
    "tiers_validate",
    "volume_amount",
    "volume_amount_segments",
]

_ZERO = Decimal(0)
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Tier:
    """One row of a tier table.

    ``up_to`` is the inclusive upper bound of the quantity this tier covers,
    ``None`` for infinity (the last tier only).  ``flat_fee`` is charged once
    when any quantity falls in this tier (graduated), or when this is the tier
    the total reaches (volume).
    """

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = _ZERO


class TierError(ValueError):
    """A tier table that cannot be priced; the message names the tier (1-based)."""


# -- validation -------------------------------------------------------------------------


def _check_number(value: object, what: str) -> Decimal:
    """``value`` as a finite Decimal; ints are exact, floats and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}")
    return value


def _quantity(value: object, what: str = "quantity") -> Decimal:
    value = _check_number(value, what)
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def tiers_validate(tiers: Sequence[Tier]) -> None:
    """Refuse a table that is empty, unordered, open before its end, or negative.

    Bounds must increase strictly from an implicit 0 (so the first ``up_to``
    must be above 0: a tier that no quantity can reach is a typing mistake),
    only the last tier may be unbounded and it must be, and no bound, unit
    price or flat fee may be negative.  Messages name the tier, 1-based.
    """
    if isinstance(tiers, str | bytes) or not isinstance(tiers, Sequence):
        raise TierError(f"tiers must be a sequence of Tier, got {type(tiers).__name__}")
    if not tiers:
        raise TierError("a tier table needs at least one tier")
    last = len(tiers)
    previous: Decimal | None = None
    for number, tier in enumerate(tiers, start=1):
        if not isinstance(tier, Tier):
            raise TierError(f"tier {number}: expected a Tier, got {type(tier).__name__}")
        for field in ("unit_price", "flat_fee"):
            value = getattr(tier, field)
            try:
                value = _check_number(value, field)
            except (TypeError, ValueError) as error:
                raise TierError(f"tier {number}: {error}") from None
            if value < 0:
                raise TierError(f"tier {number}: {field} ({value}) must not be negative")
        if tier.up_to is None:
            if number != last:
                raise TierError(
                    f"tier {number}: only the last tier may have no upper bound (up_to None)"
                )
            continue
        try:
            up_to = _check_number(tier.up_to, "up_to")
        except (TypeError, ValueError) as error:
            raise TierError(f"tier {number}: {error}") from None
        if previous is None:
            if up_to <= 0:
                raise TierError(f"tier {number}: up_to ({up_to}) must be greater than 0")
        elif up_to <= previous:
            raise TierError(
                f"tier {number}: up_to ({up_to}) must be greater than "
                f"tier {number - 1}'s ({previous})"
            )
        if number == last:
            raise TierError(
                f"tier {number}: the last tier must have no upper bound (up_to None), got {up_to}"
            )
        previous = up_to


# -- graduated ----------------------------------------------------------------------------


def _bounds(tiers: Sequence[Tier]) -> list[tuple[int, Decimal, Decimal | None, Tier]]:
    """(1-based index, lower bound exclusive, upper bound inclusive or None, tier)."""
    rows = []
    lower = _ZERO
    for number, tier in enumerate(tiers, start=1):
        rows.append((number, lower, tier.up_to, tier))
        if tier.up_to is not None:
            lower = tier.up_to
    return rows


def _graduated_slices(
    start: Decimal, end: Decimal, tiers: Sequence[Tier]
) -> list[tuple[int, Decimal, Decimal]]:
    """Price the units at positions (start, end] with ``tiers``.

    A tier is listed when the range overlaps it; its flat fee is added when the
    range contains the tier's first unit, i.e. ``start <= lower < end``.
    """
    lines: list[tuple[int, Decimal, Decimal]] = []
    if end <= start:
        return lines
    with localcontext(EXACT):
        for number, lower, upper, tier in _bounds(tiers):
            if upper is not None and upper <= start:
                continue
            if lower >= end:
                break
            low = max(lower, start)
            high = end if upper is None else min(upper, end)
            quantity = high - low
            amount = quantity * tier.unit_price
            if start <= lower:
                amount += tier.flat_fee
            lines.append((number, quantity, amount))
    return lines


def graduated_breakdown(
    quantity: Decimal, tiers: Sequence[Tier]
) -> list[tuple[int, Decimal, Decimal]]:
    """``(tier index, quantity in tier, amount)`` for each tier the quantity enters.

    The amount includes the tier's flat fee.  Tier indices are 1-based; a
    quantity of 0 enters no tier and gives ``[]``.  For invoice lines and the
    admin preview.
    """
    quantity = _quantity(quantity)
    tiers_validate(tiers)
    return _graduated_slices(_ZERO, quantity, tiers)


def graduated_amount(quantity: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Each slice of ``quantity`` at its own tier's price, plus each entered tier's flat fee."""
    with localcontext(EXACT):
        return sum((amount for _, _, amount in graduated_breakdown(quantity, tiers)), _ZERO)


def graduated_amount_segments(segments: Sequence[tuple[Decimal, Sequence[Tier]]]) -> list[Decimal]:
    """Amount of each segment of one period, tier positions running on across segments.

    ``segments`` are in time order, each ``(quantity used in the segment, tier
    table in force in it)``.  See the module docstring for the rule.
    """
    checked = [
        (_quantity(quantity, f"segment {n}: quantity"), tiers)
        for n, (quantity, tiers) in enumerate(segments, start=1)
    ]
    for _, tiers in checked:
        tiers_validate(tiers)
    amounts = []
    position = _ZERO
    with localcontext(EXACT):
        for quantity, tiers in checked:
            end = position + quantity
            lines = _graduated_slices(position, end, tiers)
            amounts.append(sum((amount for _, _, amount in lines), _ZERO))
            position = end
    return amounts


# -- volume and package -----------------------------------------------------------------


def _volume_tier(quantity: Decimal, tiers: Sequence[Tier]) -> Tier:
    """The tier a total quantity falls in: the first whose ``up_to`` is at or above it."""
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return tier
    raise AssertionError("a validated table ends with an unbounded tier")  # pragma: no cover


def volume_amount(quantity: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """All units at the price of the tier the total falls in, plus that tier's flat fee.

    A quantity of 0 costs nothing (no tier is reached, so no flat fee).
    """
    quantity = _quantity(quantity)
    tiers_validate(tiers)
    if quantity == 0:
        return _ZERO
    tier = _volume_tier(quantity, tiers)
    with localcontext(EXACT):
        return quantity * tier.unit_price + tier.flat_fee


def volume_amount_segments(segments: Sequence[tuple[Decimal, Sequence[Tier]]]) -> list[Decimal]:
    """Amount of each segment of one period under volume pricing.

    The tier is the one the period's total falls in, read from each segment's
    own table for that segment's unit price; the flat fee is that of the table
    in force at the period end, charged in the last segment.  See the module
    docstring.
    """
    checked = [
        (_quantity(quantity, f"segment {n}: quantity"), tiers)
        for n, (quantity, tiers) in enumerate(segments, start=1)
    ]
    for _, tiers in checked:
        tiers_validate(tiers)
    if not checked:
        return []
    with localcontext(EXACT):
        total = sum((quantity for quantity, _ in checked), _ZERO)
        if total == 0:
            return [_ZERO for _ in checked]
        amounts = [quantity * _volume_tier(total, tiers).unit_price for quantity, tiers in checked]
        amounts[-1] += _volume_tier(total, checked[-1][1]).flat_fee
    return amounts


def package_amount(quantity: Decimal, *, package_size: Decimal, package_price: Decimal) -> Decimal:
    """``ceil(quantity / package_size) * package_price``; a quantity of 0 costs nothing.

    The number of packages is found with an exact integer division and
    remainder, never with a rounded quotient.
    """
    quantity = _quantity(quantity)
    package_size = _check_number(package_size, "package_size")
    package_price = _check_number(package_price, "package_price")
    if package_size <= 0:
        raise ValueError(f"package_size must be greater than 0, got {package_size}")
    if package_price < 0:
        raise ValueError(f"package_price must not be negative, got {package_price}")
    with localcontext(EXACT):
        whole, remainder = divmod(quantity, package_size)
        packages = whole + (1 if remainder else 0)
        return packages * package_price


# -- time ---------------------------------------------------------------------------------


def prorate(amount: Decimal, *, covered: timedelta, period: timedelta) -> Decimal:
    """``amount * covered / period``, rounded half-even to 12 decimal places.

    The quotient is computed exactly (integers of microseconds and the
    amount's exact fraction) and rounded once.  Why 12 places and not cents:
    rated amounts keep 12 places and money is rounded to the currency's minor
    unit exactly once, on the invoice line (``pricing.money``).  Rounding each
    prorated share to cents here would round twice and let the pieces of a
    fee drift from the whole by up to half a cent per piece; at 12 places the
    shares of a period sum to the amount within ``n * 0.5e-12`` for ``n``
    shares, far below a cent.  Half-even keeps that error unbiased.

    ``covered`` must lie in ``0 <= covered <= period`` and ``period`` must be
    positive.  ``amount`` may be negative (a credit is prorated the same way).
    """
    amount = _check_number(amount, "amount")
    if not isinstance(covered, timedelta) or not isinstance(period, timedelta):
        raise TypeError("covered and period must be timedelta")
    if period <= timedelta(0):
        raise ValueError(f"period must be positive, got {period}")
    if not timedelta(0) <= covered <= period:
        raise ValueError(f"covered ({covered}) must be between 0 and the period ({period})")
    covered_us = covered // _ONE_MICROSECOND
    period_us = period // _ONE_MICROSECOND
    scaled = round(Fraction(amount) * covered_us * 10**RATED_PLACES / period_us)  # half-even
    return Decimal(f"{scaled}E-{RATED_PLACES}")


def period_shares(
    period_start: datetime, period_end: datetime, change_points: Sequence[datetime]
) -> list[tuple[datetime, datetime]]:
    """Cut the half-open period ``[start, end)`` at each change point inside it.

    Points at or before ``start`` and at or after ``end`` are ignored (an
    amendment at the start changes the terms of the whole period; one at the
    end belongs to the next); the rest are sorted and deduplicated.  The result
    is consecutive half-open segments that tile the period exactly: the first
    starts at ``start``, each starts where the previous ends, the last ends at
    ``end``.  All datetimes must be timezone-aware.
    """
    for name, value in (("period_start", period_start), ("period_end", period_end)):
        _check_aware(value, name)
    if period_end <= period_start:
        raise ValueError(f"period_end ({period_end}) must be after period_start ({period_start})")
    points = []
    for point in change_points:
        _check_aware(point, "change point")
        if period_start < point < period_end:
            points.append(point)
    cuts = [period_start, *sorted(set(points)), period_end]
    return list(pairwise(cuts))


def _check_aware(value: object, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
