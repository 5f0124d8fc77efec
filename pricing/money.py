"""Money: the two roundings tokentill knows, and money written as text.

Pure Python (no Django). There are exactly two roundings of money, and both are here:

- **Rated figures** (what an event costs, a prorated fee, a discount, a share of a tiered
  line) keep `RATED_PLACES` (12) decimal places, rounded **half to even** (`rated`), so the
  rounding errors of many small amounts do not lean one way.
- **Billed figures** (an invoice line, a credit note) are rounded once, on the line, to
  the currency's minor unit (ISO 4217: USD and EUR 2 places, JPY 0, BHD and KWD 3),
  **half up**, i.e. a half goes away from zero, as Stripe rounds a line's
  `quantity * unit_amount_decimal` (`money_round`). An invoice's total is the sum of its
  rounded lines, never a rounded sum.

The one billed figure rounded otherwise is the credits applied on an invoice where the
credits did not pay all of the usage: rounded down, so settling the rounding never asks a
wallet for credits it does not have (`pricing.credits`, rule 4).

Text for machines and for people:

- `plain` writes a value as a person does (no exponent, no trailing zeros past `places`);
- `exact_text` with the 12 rated places and `minor_text` rounded to the currency's minor
  unit: the API's exact and billed figures (and the portal's), plain digits a program
  reads back;
- `money_label` and `exact_label`: money as people read it, with thousands separators
  and the currency's code: `1,234.50 USD`, `1,235 JPY` (billed, in messages, PDFs and the
  admin) and `1,234.567890123456 USD` (exact, where a rated figure explains a line).
"""

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from typing import cast

from moneyed import get_currency

__all__ = [
    "RATED_PLACES",
    "exact_label",
    "exact_text",
    "minor_places",
    "minor_text",
    "money_label",
    "money_round",
    "plain",
    "rated",
    "to_minor_units",
    "unit_amount_decimal",
    "unit_price_of",
    "whole_quantity_line",
]

#: Decimal places of every rated amount, quantity and prorated share.
RATED_PLACES = 12

# Exact for + - * on finite operands (the decimal docs' recipe); never used to divide.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
_RATED_QUANTUM = Decimal(1).scaleb(-RATED_PLACES)


def rated(value: Decimal) -> Decimal:
    """`value` rounded half to even to 12 places: the one rounding of rated figures."""
    return value.quantize(_RATED_QUANTUM, rounding=ROUND_HALF_EVEN, context=EXACT)


def minor_places(currency: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for BHD."""
    sub_unit = get_currency(currency).sub_unit
    return len(str(sub_unit)) - 1


def money_round(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to the currency's minor unit: the one rounding of billed
    figures."""
    return amount.quantize(Decimal(1).scaleb(-minor_places(currency)), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """A rounded amount in minor units (cents for USD, yen for JPY), exactly."""
    value = money_round(amount, currency).scaleb(minor_places(currency))
    return int(value)


def unit_amount_decimal(unit_price: Decimal, currency: str) -> str:
    """A unit price in minor units as Stripe's `unit_amount_decimal` takes it: plain digits
    (never an exponent), at most 12 decimal places."""
    value = unit_price.scaleb(minor_places(currency)).quantize(
        _RATED_QUANTUM, rounding=ROUND_HALF_UP
    )
    return format(value.normalize(), "f") if value else "0"


def unit_price_of(count: Decimal, exact: Decimal) -> tuple[Decimal, Decimal]:
    """An invoice line's (quantity, unit price): the count at an exact unit price when the
    amount divides evenly to 12 places (so quantity times unit price is the amount to the
    last place), else 1 at the amount."""
    if count:
        unit = (exact / count).quantize(_RATED_QUANTUM)
        if unit * count == exact:
            return count, unit
    return Decimal(1), exact


def whole_quantity_line(
    quantity: Decimal, unit_price: Decimal, amount: Decimal, currency: str
) -> tuple[int, str] | None:
    """A billed line as (whole quantity, unit price in minor units) when a processor that
    rounds their product once, half up, gets the line's rounded `amount` exactly; None
    when it would not (a fractional or negative quantity, a negative price or amount),
    and the line must be sent as its amount."""
    minor = to_minor_units(amount, currency)
    if quantity != quantity.to_integral_value() or quantity < 0 or unit_price < 0 or minor < 0:
        return None
    unit = unit_amount_decimal(unit_price, currency)
    product = EXACT.multiply(quantity, Decimal(unit)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP, context=EXACT
    )
    return (int(quantity), unit) if product == minor else None


def plain(value: Decimal, places: int = 0) -> str:
    """`value` as a person writes it, with at least `places` decimals and every digit it
    has beyond: -0.0075 and 100, not -0.00750000, 1E+2 or -7.5E-3; with `places=2`,
    100.00 and 0.0000025."""
    value = value.normalize(EXACT)
    exponent = cast(int, value.as_tuple().exponent)  # an int for every finite Decimal
    return f"{value:.{max(places, -exponent)}f}"


def exact_text(value: Decimal) -> str:
    """A rated figure with its 12 places, as the API writes exact money: 0.010000000000."""
    return f"{value:.{RATED_PLACES}f}"


def minor_text(value: Decimal | int, currency: str) -> str:
    """`value` rounded half up to the currency's minor unit: 59.00 USD, 1235 JPY."""
    return f"{money_round(Decimal(value), currency):.{minor_places(currency)}f}"


def money_label(value: Decimal | int, currency: str) -> str:
    """Billed money as people read it: rounded half up to the currency's minor unit, with
    thousands separators and the currency's code: 1,234.50 USD, 1,235 JPY, -10.01 USD.
    A value that rounds to zero is 0.00, never -0.00."""
    return f"{_grouped(money_round(Decimal(value), currency), minor_places(currency))} {currency}"


def exact_label(value: Decimal | int, currency: str) -> str:
    """A rated figure as people read it: its 12 places, thousands separators and the
    currency's code: 1,234.567890123456 USD."""
    return f"{_grouped(rated(Decimal(value)), RATED_PLACES)} {currency}"


def _grouped(value: Decimal, places: int) -> str:
    """`value`, already at `places`, with a comma every three digits before the point."""
    return f"{value.copy_abs() if value.is_zero() else value:,.{places}f}"
