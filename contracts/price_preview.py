"""What a sample call costs under a price: the price builder's live preview (pure: no Django).

Billing ops check a price by its effect, not by reading its formula: "1,000 input, 500
output and 2,000 cached tokens cost 0.01". The preview is worked out here, exactly,
with the same per-unit rule as the rating engine (`billing.rating.Rate.per_unit`): an
amount per 1M tokens is moved six places to the right, never divided, so $2.50 per 1M
is exactly 0.0000025 per token and no float ever touches money.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from .formula import Formula
from .price_builder import STANDARD_RATES

#: How many places a rate's amount moves for its unit (per 1, 1K or 1M).
PER_EXPONENT = {1: 0, 1_000: -3, 1_000_000: -6}

#: Places of a rated amount (the rating engine's rule: one rounding, to 12 places).
RATED_PLACES = 12

#: What the preview calls each standard rate's term, in a person's words.
TERM_LABELS = {
    "rate_in": "input",
    "rate_out": "output",
    "rate_cached": "cached input",
    "rate_cache_write": "cache write",
}

_EXACT = Context(prec=100, rounding=ROUND_HALF_EVEN)
_RATED = Decimal(1).scaleb(-RATED_PLACES)
_CENT = Decimal("0.01")


def rate_per_unit(amount: Decimal, per: int) -> Decimal:
    """The price of one unit: `amount` per `per` units, with the decimal point moved."""
    return amount.scaleb(PER_EXPONENT[per], context=_EXACT)


def money_text(value: Decimal) -> str:
    """A money figure as people read it: at least cents, and every sub-cent digit it has.

    0.0025 stays 0.0025 (a token costs fractions of a cent), 0.01000000 becomes 0.01,
    5 becomes 5.00; never an exponent, never rounded.
    """
    value = value.normalize(context=_EXACT)
    if value.as_tuple().exponent > -2:
        value = value.quantize(_CENT, context=_EXACT)
    return f"{value:f}"


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
        """The total rounded once to 12 places, half to even, as the rating engine does."""
        return self.total.quantize(_RATED, rounding=ROUND_HALF_EVEN, context=_EXACT)


def price_preview(
    *,
    formula: Formula,
    rates: Mapping[str, Decimal],
    metrics: Mapping[str, Decimal],
) -> Preview:
    """Evaluate `formula` for a sample call.

    `rates` are per-unit values (see `rate_per_unit`); `metrics` the sample's counts. A
    metric the formula uses and the sample leaves out counts as 0, as in rating. Raises
    FormulaError when the formula cannot be evaluated (a division by zero, say).
    """
    values = {name: Decimal(0) for name in formula.names}
    values.update({name: metrics[name] for name in formula.names if name in metrics})
    values.update({name: rates[name] for name in formula.names if name in rates})
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
