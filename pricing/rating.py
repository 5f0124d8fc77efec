"""The rating engine's pure core: from a contract's terms and the usage, the money.

Pure Python, no Django: ``Decimal`` in, ``Decimal`` out, never float.  The models
and services build :class:`PriceTerms` and :class:`Segment` from the database,
call these functions, and store what they return; everything about money that a
person may want to check by hand happens here, by the rules below.

The rules
---------
1. **Rates.** A rate is typed as a price list reads, an amount per 1, 1,000 or
   1,000,000 units; a formula sees it per unit ($2.50 per 1M is 0.0000025),
   divided exactly.
2. **Metrics.** A name in a formula that is not one of the price's rates is a
   metric; an event that lacks it has 0 of it (a call without cached tokens has
   none), and a negative metric is refused.
3. **Per-event amounts** are the formula's exact value rounded once, half to
   even, to 12 decimal places; a negative value is refused with a
   :class:`RatingError`, because a credit is an adjustment or a credit note,
   never a price.
4. **Tiered quantities** (graduated, volume, package) are the formula's value
   per event, rounded and refused the same way; the tier maths of
   ``pricing.tiers`` runs on their sum over the period.
5. **Which price.** The most specific matching selector wins
   (``pricing.matching``); when none matches, the usage is unpriced, which
   the caller reports and never treats as free.
6. **Which terms.** An event is rated with the segment whose half-open
   ``[start, end)`` holds its timestamp, so an event at an amendment's instant
   gets the new terms.
7. **Tiers across an amendment** run on over the period (``pricing.tiers``);
   a package bought earlier in the period keeps covering its units after an
   amendment, and new packages, of the size and price in force, start where the
   paid cover ends.
8. **Tiered amounts** are rounded to 12 places on the period's running total
   and each segment is charged the difference, so the segments always sum to
   the rounded whole.
9. **Fixed fees, allowances and minimum commitments** are prorated: a segment's
   share is its amount per full period times covered / period, rounded half to
   even to 12 places (``pricing.tiers.prorate``).
10. **Discount.** A segment's discount is taken off that segment's usage
    (per-event and tiered alike), rounded half to even to 12 places, before the
    allowance is drawn: the allowance is money at the customer's own prices.
11. **Allowance.** The segments' allowance shares are pooled and drawn by the
    period's discounted usage, whichever segment it happened in: allowance used
    = min(usage after discount, allowance).
12. **Minimum commitment.** The period's minimum (its segments' shares, summed)
    is compared with the period's usage after discount and before the
    allowance, so usage the allowance covers counts toward it: true-up =
    max(0, minimum - usage after discount).
13. **Total** = usage after discount - allowance used + fixed fees + true-up.
14. **A call's cost** (what a hold settles at): what the call adds to the
    period's *billable usage*, its usage after discount beyond the allowance
    (what prepaid credits are drawn for): the billable usage with the call
    less without it, the call counted as the period's latest usage. Calls
    counted together are taken in the order they happened, each after those
    before it, so their costs sum to what they added together.

Why pooled (rules 11 and 12): a period split at an amendment that changes
nothing then costs what the unsplit period costs, up to the 12th-place rounding
of the shares; a per-segment allowance would charge a customer who used most of
their usage early in the period for an amendment they did not feel.

Money is rounded to the currency's minor unit once, on the invoice line
(``pricing.money``), never here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal, DecimalException, localcontext
from itertools import pairwise
from operator import attrgetter
from types import MappingProxyType

from .formula import Formula, FormulaError
from .matching import Selector, selector_choose
from .money import EXACT, RATED_PLACES, plain, rated
from .tiers import (
    Tier,
    TierError,
    graduated_amount_segments,
    prorate,
    tiers_validate,
    volume_amount_segments,
)

__all__ = [
    "KINDS",
    "PER_UNITS",
    "PeriodCharges",
    "PriceTerms",
    "Rate",
    "RatingError",
    "Segment",
    "calls_billable",
    "charge_shares",
    "event_amount",
    "event_quantity",
    "event_values",
    "formula_inputs",
    "period_charges",
    "price_for_event",
    "segment_at",
    "tiered_charges",
    "worst_case_amount",
]

#: What a rate's amount may be for: one unit, a thousand or a million.
PER_UNITS = (1, 1_000, 1_000_000)

PER_EVENT, GRADUATED, VOLUME, PACKAGE = "per_event", "graduated", "volume", "package"
KINDS = (PER_EVENT, GRADUATED, VOLUME, PACKAGE)
TIERED_KINDS = (GRADUATED, VOLUME, PACKAGE)

_ZERO = Decimal(0)
_PER_EXPONENT = {1: 0, 1_000: -3, 1_000_000: -6}


class RatingError(ValueError):
    """Terms or usage that cannot be rated; the message names the price when there is one.

    Never swallowed into a charge of 0: the caller keeps the event unrated and
    shows why, as it does for unpriced usage.
    """


# -- terms -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A named rate as billing ops type it: ``amount`` per ``per`` units (1, 1,000 or 1M)."""

    amount: Decimal
    per: int = 1

    def __post_init__(self) -> None:
        amount = _number(self.amount, "a rate's amount")
        if amount < 0:
            raise RatingError(f"a rate's amount must not be negative, got {amount}")
        if isinstance(self.per, bool) or self.per not in PER_UNITS:
            raise RatingError(f"a rate is per 1, 1,000 or 1,000,000 units, not {self.per!r}")
        object.__setattr__(self, "amount", amount)

    @property
    def per_unit(self) -> Decimal:
        """The price of one unit, exactly: a division by a power of ten moves the point."""
        return self.amount.scaleb(_PER_EXPONENT[self.per], context=EXACT)


@dataclass(frozen=True)
class PriceTerms:
    """One price of a rate card version, as the engine needs it.

    ``formula`` is money per event for ``per_event`` prices, and the quantity each
    event adds to the period for the tiered kinds.  ``tiers`` belong to graduated
    and volume prices, ``package_size`` and ``package_price`` to package prices.
    A formula name that is also a rate's name is the rate.
    """

    price_id: int
    selector: Selector
    rates: Mapping[str, Rate]
    formula: Formula
    kind: str = PER_EVENT
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    # Worked out once here, not per event: the per-unit rates and the metric names.
    _rate_values: Mapping[str, Decimal] = field(init=False, repr=False, compare=False)
    _metric_names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = f"price {self.price_id}"
        if self.kind not in KINDS:
            raise RatingError(f"{name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not isinstance(self.formula, Formula):
            raise RatingError(f"{name}: the formula must be parsed (pricing.formula.formula_parse)")
        tiers = tuple(self.tiers)
        if self.kind in (GRADUATED, VOLUME):
            try:
                tiers_validate(tiers)
            except TierError as error:
                raise RatingError(f"{name}: {error}") from None
        elif tiers:
            raise RatingError(f"{name}: only graduated and volume prices have tiers")
        packaged = (self.package_size, self.package_price)
        if self.kind == PACKAGE:
            size = _number(self.package_size, f"{name}: package_size")
            price = _number(self.package_price, f"{name}: package_price")
            if size <= 0:
                raise RatingError(f"{name}: package_size must be greater than 0, got {size}")
            if price < 0:
                raise RatingError(f"{name}: package_price must not be negative, got {price}")
            packaged = (size, price)
        elif packaged != (None, None):
            raise RatingError(f"{name}: only package prices have a package size and price")
        for rate_name, rate in self.rates.items():
            if not isinstance(rate, Rate):
                raise RatingError(f"{name}: rate {rate_name!r} must be a Rate")
        set_ = object.__setattr__
        set_(self, "tiers", tiers)
        set_(self, "package_size", packaged[0])
        set_(self, "package_price", packaged[1])
        set_(self, "rates", MappingProxyType(dict(self.rates)))
        set_(self, "_rate_values", {key: rate.per_unit for key, rate in self.rates.items()})
        set_(self, "_metric_names", tuple(sorted(self.formula.names - self.rates.keys())))


def price_for_event(
    prices: Sequence[PriceTerms], *, model: str, feature: str, properties: Mapping[str, str]
) -> PriceTerms | None:
    """The most specific price that matches the event, or None: unpriced, never free."""
    return selector_choose(
        prices,
        selector_of=attrgetter("selector"),
        model=model,
        feature=feature,
        properties=properties,
    )


# -- one event ----------------------------------------------------------------------------


def event_values(price: PriceTerms, metrics: Mapping[str, int | str]) -> dict[str, Decimal]:
    """What the formula sees: each rate per unit, each metric it uses (0 when absent).

    Metric values are ints or decimal strings, as the event log stores them
    (``metering.canonical.metric_value``); Decimals are taken too, floats never.
    """
    return _inputs(price._rate_values, price._metric_names, metrics, price.price_id)


def formula_inputs(
    formula: Formula, rates: Mapping[str, Rate], metrics: Mapping[str, int | str | Decimal]
) -> dict[str, Decimal]:
    """:func:`event_values` for a formula and rates that are not a stored price yet (the
    price builder's preview of a sample call): the same rules 1 and 2."""
    rate_values = {name: rate.per_unit for name, rate in rates.items()}
    return _inputs(rate_values, sorted(formula.names - rates.keys()), metrics, None)


def _inputs(
    rate_values: Mapping[str, Decimal],
    metric_names: Iterable[str],
    metrics: Mapping[str, int | str | Decimal],
    price_id: int | None,
) -> dict[str, Decimal]:
    values = dict(rate_values)
    for name in metric_names:
        raw = metrics.get(name, 0)
        # A whole number of at least 0 (nearly every metric, as the log stores token
        # counts) is taken as it is; anything else is checked and refused as rule 2 says.
        if type(raw) is int and raw >= 0:
            values[name] = Decimal(raw)
        else:
            values[name] = _metric(price_id, name, raw)
    return values


def event_amount(price: PriceTerms, metrics: Mapping[str, int | str]) -> Decimal:
    """The money one event costs under a per-event price, to 12 places (rule 3)."""
    if price.kind != PER_EVENT:
        raise RatingError(
            f"price {price.price_id} is {price.kind}: its events add a quantity "
            "(event_quantity), priced over the period (tiered_charges)"
        )
    return _evaluate(price, metrics, "a charge")


def event_quantity(price: PriceTerms, metrics: Mapping[str, int | str]) -> Decimal:
    """The quantity one event adds to the period under a tiered price, to 12 places (rule 4)."""
    if price.kind not in TIERED_KINDS:
        raise RatingError(
            f"price {price.price_id} is per_event: its events cost an amount (event_amount)"
        )
    return _evaluate(price, metrics, "a quantity")


def worst_case_amount(price: PriceTerms, metrics: Mapping[str, int | str]) -> Decimal:
    """The most one call with these metrics can add to the period's usage, before discount.

    A per-event price is exact. A tiered call's cost depends on where the period stands,
    so it is bounded: package prices by the packages its quantity fills, graduated and
    volume prices by its quantity at the dearest tier's unit price plus every flat fee
    (a volume table whose higher tiers are dearer can reprice the whole period; such
    tables are not bounded by one call).
    """
    if price.kind == PER_EVENT:
        return event_amount(price, metrics)
    quantity = event_quantity(price, metrics)
    with localcontext(EXACT):
        if price.kind == PACKAGE:
            assert price.package_size is not None and price.package_price is not None  # PACKAGE
            whole, remainder = divmod(quantity, price.package_size)
            return (whole + (1 if remainder else 0)) * price.package_price
        dearest = max(tier.unit_price for tier in price.tiers)
        return rated(quantity * dearest + sum(tier.flat_fee for tier in price.tiers))


def estimated_tokens_bound(tokens: int, safety_factor: Decimal) -> int:
    """A worst case for a token count that is an estimate (text counted by a tokenizer not
    the model's own): ``tokens`` * ``safety_factor``, exactly, rounded up to a whole token,
    as a bound must never fall short. 1,000 tokens * 1.25 = 1,250; 7 * 1.25 = 8.75 → 9."""
    if tokens < 0:
        raise ValueError(f"a token count cannot be negative: {tokens}")
    if not safety_factor.is_finite() or safety_factor < 1:
        raise ValueError(f"the safety factor must be at least 1, not {safety_factor}")
    with localcontext(EXACT):
        return int((tokens * safety_factor).to_integral_value(rounding=ROUND_CEILING))


def _evaluate(price: PriceTerms, metrics: Mapping[str, int | str], what: str) -> Decimal:
    try:  # every name the formula uses is a rate or a metric, each a finite Decimal
        value = price.formula.evaluate_decimals(event_values(price, metrics))
    except FormulaError as error:  # e.g. a division by a metric that is 0 in this event
        raise RatingError(f"price {price.price_id}: {error}") from None
    if value < 0:
        raise RatingError(
            f"price {price.price_id}: the formula gives {plain(value)} for this event, and {what} "
            "must not be negative (a credit is an adjustment, not a price)"
        )
    return rated(value.copy_abs())  # copy_abs: a -0 (e.g. from 0 * -1) is stored as 0


def _metric(price_id: int | None, name: str, raw: object) -> Decimal:
    def refused(why: str) -> RatingError:
        owner = "the sample" if price_id is None else f"price {price_id}"
        return RatingError(f"{owner}: metric {name!r} {why}")

    if isinstance(raw, bool) or not isinstance(raw, int | str | Decimal):
        raise refused(f"must be an int or a decimal string, not {type(raw).__name__}")
    try:
        value = Decimal(raw)
    except DecimalException:
        value = None
    if value is None or not value.is_finite():
        raise refused(f"is not a number: {raw!r}")
    if value < 0:
        raise refused(f"must not be negative, got {value}")
    return value


# -- a period -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch ``[start, end)`` of a period under one set of contract terms.

    A period without an amendment in it is one segment.  ``fixed_fee``,
    ``included_allowance`` and ``minimum_commitment`` are money per full period,
    prorated by the share of the period the segment covers; ``discount`` is the
    fraction (0 to 1, e.g. 0.1) taken off the segment's usage.
    """

    start: datetime
    end: datetime
    prices: tuple[PriceTerms, ...] = ()
    fixed_fee: Decimal = _ZERO
    included_allowance: Decimal = _ZERO
    discount: Decimal = _ZERO
    minimum_commitment: Decimal = _ZERO

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            moment = getattr(self, name)
            if not isinstance(moment, datetime) or moment.utcoffset() is None:
                raise RatingError(f"a segment's {name} must be a timezone-aware datetime")
        if self.end <= self.start:
            raise RatingError(f"a segment must end ({self.end}) after it starts ({self.start})")
        for name in ("fixed_fee", "included_allowance", "discount", "minimum_commitment"):
            value = _number(getattr(self, name), name)
            if value < 0:
                raise RatingError(f"{name} must not be negative, got {value}")
            object.__setattr__(self, name, value)
        if self.discount > 1:
            raise RatingError(f"discount is a fraction from 0 to 1, got {self.discount}")
        object.__setattr__(self, "prices", tuple(self.prices))


def segment_at(segments: Iterable[Segment], at: datetime) -> Segment | None:
    """The segment whose ``[start, end)`` holds ``at`` (rule 6), or None outside them all."""
    for segment in segments:
        if segment.start <= at < segment.end:
            return segment
    return None


def tiered_charges(segments: Sequence[tuple[Decimal, PriceTerms]]) -> list[Decimal]:
    """What one tiered price line costs in each segment of a period (rules 7 and 8).

    ``segments`` are in time order, each ``(the quantity the line's events added
    in the segment, the line's terms in force there)``; a segment where the line
    does not exist is left out.  All must be of one tiered kind: a line whose
    kind changes is a new line.  Tier positions run on over the period.
    """
    if not segments:
        return []
    kinds = {price.kind for _, price in segments}
    if len(kinds) > 1 or not kinds <= set(TIERED_KINDS):
        ids = ", ".join(str(price.price_id) for _, price in segments)
        raise RatingError(f"prices {ids}: one tiered line is of one tiered kind, not {kinds}")
    checked = []
    for number, (quantity, price) in enumerate(segments, start=1):
        quantity = _number(quantity, f"segment {number}: quantity")
        if quantity < 0:
            raise RatingError(f"segment {number}: quantity must not be negative, got {quantity}")
        checked.append((quantity, price))
    kind = kinds.pop()
    if kind == GRADUATED:
        exact = graduated_amount_segments([(q, price.tiers) for q, price in checked])
    elif kind == VOLUME:
        exact = volume_amount_segments([(q, price.tiers) for q, price in checked])
    else:
        exact = _package_amount_segments(checked)
    return _rounded_on_running_total(exact)


def _package_amount_segments(segments: Sequence[tuple[Decimal, PriceTerms]]) -> list[Decimal]:
    """Packages bought in each segment, at its size and price, once the paid cover runs out.

    With one size all period this is ``ceil(total / size) * price`` in all,
    however the period is cut: the cover is always a whole number of packages,
    so each segment buys ``ceil(used / size) - ceil(used before / size)``.
    """
    amounts, used, covered = [], _ZERO, _ZERO
    with localcontext(EXACT):
        for quantity, price in segments:
            assert price.package_size is not None and price.package_price is not None  # PACKAGE
            used += quantity
            packages = _ZERO
            if used > covered:
                whole, remainder = divmod(used - covered, price.package_size)
                packages = whole + (1 if remainder else 0)
                covered += packages * price.package_size
            amounts.append(packages * price.package_price)
    return amounts


def _rounded_on_running_total(amounts: Iterable[Decimal]) -> list[Decimal]:
    """Each amount as the step between the rounded running totals before and after it."""
    charges, total, charged = [], _ZERO, _ZERO
    with localcontext(EXACT):
        for amount in amounts:
            total += amount
            running = rated(total)
            charges.append(running - charged)
            charged = running
    return charges


def charge_shares(charge: Decimal, quantities: Sequence[Decimal]) -> list[Decimal]:
    """A tiered line's charge in one segment split over its parts (rollups) by quantity:
    each share rated, the last taking the remainder, so the shares sum to the charge."""
    total = sum(quantities, _ZERO)
    shares = [rated(charge * quantity / total) if total else _ZERO for quantity in quantities[:-1]]
    return [*shares, charge - sum(shares, _ZERO)]


@dataclass(frozen=True)
class PeriodCharges:
    """A period's charges, each figure to 12 places, one entry per segment where listed.

    ``total = sum(usage_by_segment) - allowance_used + sum(fixed_fees) + minimum_true_up``.
    """

    discounts: tuple[Decimal, ...]  # taken off each segment's usage
    usage_by_segment: tuple[Decimal, ...]  # each segment's usage after its discount
    fixed_fees: tuple[Decimal, ...]  # each segment's share of its fixed fee
    allowances: tuple[Decimal, ...]  # each segment's share of its included allowance
    minimums: tuple[Decimal, ...]  # each segment's share of its minimum commitment
    allowance_used: Decimal
    minimum_true_up: Decimal
    total: Decimal

    @property
    def usage_before_discount(self) -> tuple[Decimal, ...]:
        """Each segment's rated usage, before its discount (as :func:`period_charges` took it)."""
        with localcontext(EXACT):
            return tuple(a + d for a, d in zip(self.usage_by_segment, self.discounts, strict=True))

    @property
    def billable(self) -> Decimal:
        """Usage after discount beyond the allowance: what prepaid credits are drawn for."""
        with localcontext(EXACT):
            return sum(self.usage_by_segment, _ZERO) - self.allowance_used

    @property
    def allowance_left(self) -> Decimal:
        """The allowance this usage has not used."""
        with localcontext(EXACT):
            return sum(self.allowances, _ZERO) - self.allowance_used


def period_charges(
    *,
    period_start: datetime,
    period_end: datetime,
    segments: Sequence[Segment],
    usage_by_segment: Sequence[Decimal],
) -> PeriodCharges:
    """A period's fees, allowance, discount and true-up by rules 9 to 13.

    ``segments`` tile ``[period_start, period_end)`` in time order.  Each entry
    of ``usage_by_segment`` is that segment's rated usage before its discount:
    the sum of its events' amounts plus its part of each tiered line
    (:func:`tiered_charges`), at 12 places.
    """
    _check_tiling(period_start, period_end, segments)
    if len(usage_by_segment) != len(segments):
        raise RatingError(
            f"{len(usage_by_segment)} usage amounts for {len(segments)} segments; give one each"
        )
    usage = [_usage(amount, number) for number, amount in enumerate(usage_by_segment, start=1)]
    period = period_end - period_start

    def share(amount: Decimal, segment: Segment) -> Decimal:
        return prorate(amount, covered=segment.end - segment.start, period=period)

    with localcontext(EXACT):
        discounts = [rated(amount * s.discount) for amount, s in zip(usage, segments, strict=True)]
        after = [amount - discount for amount, discount in zip(usage, discounts, strict=True)]
        fees = [share(s.fixed_fee, s) for s in segments]
        allowances = [share(s.included_allowance, s) for s in segments]
        minimums = [share(s.minimum_commitment, s) for s in segments]
        usage_total = sum(after, _ZERO)
        allowance_used = min(usage_total, sum(allowances, _ZERO))
        true_up = max(_ZERO, sum(minimums, _ZERO) - usage_total)
        total = usage_total - allowance_used + sum(fees, _ZERO) + true_up
    return PeriodCharges(
        discounts=tuple(discounts),
        usage_by_segment=tuple(after),
        fixed_fees=tuple(fees),
        allowances=tuple(allowances),
        minimums=tuple(minimums),
        allowance_used=allowance_used,
        minimum_true_up=true_up,
        total=total,
    )


def calls_billable(
    *,
    period_start: datetime,
    period_end: datetime,
    segments: Sequence[Segment],
    usage_by_segment: Sequence[Sequence[Decimal]],
) -> list[Decimal]:
    """What each of a run of calls added to the period's billable usage (rule 14).

    ``usage_by_segment[0]`` is the period's usage by segment, before discount (as
    :func:`period_charges` takes it), without any of the calls; each next entry has one
    more call, in the order they happened; the last has them all. A call's cost is the
    step its entry makes in the billable usage. It is never negative for a per-event
    price; a call that takes a volume-priced line into a cheaper tier can lower the whole
    line, and then its cost is negative.
    """
    billable = [
        period_charges(
            period_start=period_start,
            period_end=period_end,
            segments=segments,
            usage_by_segment=usage,
        ).billable
        for usage in usage_by_segment
    ]
    with localcontext(EXACT):
        return [after - before for before, after in pairwise(billable)]


def _check_tiling(start: datetime, end: datetime, segments: Sequence[Segment]) -> None:
    if not segments:
        raise RatingError("a period has at least one segment")
    if segments[0].start != start:
        raise RatingError(f"the first segment starts at {segments[0].start}, the period at {start}")
    for number, (before, after) in enumerate(pairwise(segments), start=2):
        if after.start != before.end:
            raise RatingError(
                f"segment {number} starts at {after.start}, not where segment "
                f"{number - 1} ends ({before.end})"
            )
    if segments[-1].end != end:
        raise RatingError(f"the last segment ends at {segments[-1].end}, the period at {end}")


def _usage(amount: object, number: int) -> Decimal:
    value = _number(amount, f"segment {number}: usage")
    if value < 0:
        raise RatingError(f"segment {number}: usage must not be negative, got {value}")
    if value != rated(value):
        raise RatingError(
            f"segment {number}: usage {value} has more than {RATED_PLACES} decimal places; "
            "it is a sum of rated amounts"
        )
    return value


def _number(value: object, what: str) -> Decimal:
    """``value`` as a finite Decimal; ints are exact, floats and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise RatingError(f"{what} must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise RatingError(f"{what} must be a finite number, got {value}")
    return value
