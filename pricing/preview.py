"""What a sample call costs under a price: the price builder's live preview.

Billing ops check a price by its effect, not by reading its formula: "1,000 input, 500
output and 2,000 cached tokens cost 0.01". The preview is the rating rule itself
(`pricing.rating`): the formula sees each rate per unit (an amount per 1M tokens moved six
places to the right, never divided, so $2.50 per 1M is exactly 0.0000025 per token) and
the sample's metrics (0 when left out), and the total is rated to 12 places as an event's
amount is. No float ever touches money.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .formula import Formula
from .money import rated
from .rating import Rate, formula_inputs
from .standard import STANDARD_RATES

#: What the preview calls each standard rate's term, in a person's words.
TERM_LABELS = {
    "rate_in": "input",
    "rate_out": "output",
    "rate_cached": "cached input",
    "rate_cache_write": "cache write",
}


@dataclass(frozen=True)
class Term:
    """One addend of the formula: its text, a label when it is `metric * standard rate`,
    and its exact value for the sample."""

    text: str
    label: str
    amount: Decimal


@dataclass(frozen=True)
class Preview:
    """The sample's cost: each term, the exact total, and the total as it would be rated."""

    terms: tuple[Term, ...]
    total: Decimal

    @property
    def rated_total(self) -> Decimal:
        """The total rounded once to 12 places, half to even, as rating rounds an event."""
        return rated(self.total)


def price_preview(
    *, formula: Formula, rates: Mapping[str, Rate], metrics: Mapping[str, Decimal]
) -> Preview:
    """Evaluate `formula` for a sample call with these rates and the sample's counts.

    Raises FormulaError when the formula cannot be evaluated (a division by zero, say).
    A negative total is returned as it is: the builder warns that rating refuses it.
    """
    values = formula_inputs(formula, rates, metrics)
    terms = tuple(
        Term(text=text, label=_label(text), amount=amount) for text, amount in formula.terms(values)
    )
    return Preview(terms=terms, total=formula.evaluate(values))


def _label(text: str) -> str:
    """`input_tokens * rate_in` (either way round) is "input", `images * rate_images` is
    "images"; any other term is its own text."""
    parts = [part.strip() for part in text.split("*")]
    if len(parts) == 2:
        rate, metric = sorted(parts, key=lambda part: not part.startswith("rate_"))
        if STANDARD_RATES.get(rate) == metric:
            return TERM_LABELS[rate]
        if rate == f"rate_{metric}":
            return metric.replace("_", " ")
    return text
