"""Money as the portal shows it: rounded once, for display, to the currency's minor unit,
by the helpers of pricing.money (never a rounding of the portal's own); periods as
invoices write them (pricing.cycles.span_text)."""

from datetime import datetime
from decimal import Decimal

from django import template

from pricing.cycles import span_text
from pricing.money import minor_places, minor_text, plain
from pricing.money import money_label as label_of

register = template.Library()


@register.filter
def money(value: Decimal | None, currency: str) -> str:
    """`value` in the currency's minor unit, plain digits (`minor_text`), e.g. 47.13: in
    tables and charts whose heading names the currency."""
    if value is None:
        return "—"
    return minor_text(value, currency)


@register.filter
def money_label(value: Decimal | None, currency: str) -> str:
    """`value` as people read money (`money_label`), e.g. 2,325.32 USD: figures on their own."""
    if value is None:
        return "—"
    return label_of(value, currency)


@register.filter
def percent(value: Decimal | None) -> str:
    """A share as a whole percentage, e.g. 47 %."""
    if value is None:
        return "—"
    return f"{value.quantize(Decimal(1)):f} %"


@register.filter
def unit_price(value: Decimal, currency: str) -> str:
    """A line's unit price as its document prints it: at least the currency's minor places,
    and every digit beyond, so quantity times unit price is the line's exact amount: 500.00,
    0.0085."""
    return plain(value, minor_places(currency))


@register.filter
def quantity(value) -> str:
    """A quantity as people read it: 1,200,000 or 12.5 (digits as given, grouped)."""
    if value in (None, ""):
        return "—"
    number = Decimal(str(value))
    text = plain(number)
    whole, dot, fraction = text.partition(".")
    return f"{int(whole):,}{dot}{fraction}" if whole.lstrip("-").isdigit() else text


@register.simple_tag
def span(start: datetime, end: datetime) -> str:
    """A period [start, end) as its first and last days, as invoices write it (the last
    day included): 2026-12-01 to 2026-12-31."""
    return span_text(start, end)
