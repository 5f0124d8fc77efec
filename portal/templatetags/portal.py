"""Money as the portal shows it: rounded once, for display, to the currency's minor unit."""

from decimal import Decimal

from django import template

from pricing.money import minor_text, plain

register = template.Library()


@register.filter
def money(value: Decimal | None, currency: str) -> str:
    """`value` rounded half up to the currency's minor unit (pricing.money), e.g. 47.13."""
    if value is None:
        return "—"
    return minor_text(value, currency)


@register.filter
def percent(value: Decimal | None) -> str:
    """A share as a whole percentage, e.g. 47 %."""
    if value is None:
        return "—"
    return f"{value.quantize(Decimal(1)):f} %"


@register.filter
def exact(value: Decimal | None) -> str:
    """An exact amount without trailing zeros, never in exponent form: 0.0085."""
    if value is None:
        return "—"
    return plain(value)
