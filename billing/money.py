"""Money rounded to a currency's minor unit: the one rounding rule of an invoice.

Pure Python (no Django). Rated amounts keep 12 decimal places; money is rounded once, on
the invoice line: each line's exact amount is rounded to the currency's minor unit (ISO
4217: USD and EUR 2 places, JPY 0, BHD and KWD 3) **half up**, i.e. a half goes away
from zero, as Stripe rounds a line's `quantity * unit_amount_decimal`. An invoice's
total is the sum of its rounded lines, never a rounded sum.
"""

from decimal import MAX_PREC, ROUND_HALF_UP, Context, Decimal

from moneyed import get_currency

__all__ = ["minor_places", "money_round", "plain", "to_minor_units", "unit_amount_decimal"]

_EXACT = Context(prec=MAX_PREC)


def minor_places(currency: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for BHD."""
    sub_unit = get_currency(currency).sub_unit
    return len(str(sub_unit)) - 1


def money_round(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_places(currency)), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """A rounded amount in minor units (cents for USD, yen for JPY), exactly."""
    value = money_round(amount, currency).scaleb(minor_places(currency))
    return int(value)


def unit_amount_decimal(unit_price: Decimal, currency: str) -> str:
    """A unit price in minor units as Stripe's `unit_amount_decimal` takes it: plain digits
    (never an exponent), at most 12 decimal places."""
    value = unit_price.scaleb(minor_places(currency)).quantize(
        Decimal("1e-12"), rounding=ROUND_HALF_UP
    )
    return format(value.normalize(), "f") if value else "0"


def plain(value: Decimal) -> str:
    """A value as a person writes it: -0.0075 and 100, not -0.00750000, 1E+2 or -7.5E-3."""
    return format(value.normalize(_EXACT), "f")
