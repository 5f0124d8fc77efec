"""Shapes shared by billing's answers (usage, re-rating, invoices).

Money is text, never a float: exact figures with 12 places (`ExactFigureField`), billed
ones rounded to the currency's minor unit (`BilledMoneyField`).
"""

from common.api import ExactFigureField, InstantField, OutputSerializer

EXACT = "with 12 decimal places"


def exact(help_text: str, **kwargs) -> ExactFigureField:
    """An exact figure (money or a quantity) as text with 12 decimal places."""
    return ExactFigureField(help_text=f"{help_text}, {EXACT}.", **kwargs)


class PeriodSerializer(OutputSerializer):
    """A billing period [start, end), from an object's `period_start` and `period_end`."""

    start = InstantField(source="period_start", help_text="The period's first instant.")
    end = InstantField(source="period_end", help_text="The period's end, exclusive.")


def period(help_text: str = "The billing period.") -> PeriodSerializer:
    return PeriodSerializer(source="*", help_text=help_text)
