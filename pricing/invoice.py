"""An invoice's derived lines, worked out from its face, so its arithmetic checks by hand.

Pure Python (no Django). A period's fees and usage lines are each rounded once from their
exact money (`pricing.money.money_round`). The lines derived from them are then computed
from those rounded lines, not from the exact money, and each is rounded once:

1. **Discount.** A segment's discount is its rounded usage lines' sum times its discount
   (a fraction), rounded to the minor unit.
2. **Usage after discount** (on the face) is the rounded usage lines less the rounded
   discounts.
3. **Included allowance.** The period's allowance is its segments' prorated shares,
   summed and rounded once; what it covers is ``min(usage after discount, allowance)``.
4. **Minimum commitment.** The period's minimum is its segments' prorated shares, summed
   and rounded once; the true-up is ``max(0, minimum - usage after discount)``.

So usage entirely inside the allowance nets to exactly zero with its discount and
allowance lines, and the total, the sum of the lines, is what a person adds up from them.
The exact money (`pricing.rating.period_charges`) still decides what rating, credits and
the usage figures show; only the invoice rounds, and it rounds from what it prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .money import EXACT, money_round

__all__ = ["InvoiceFace", "amount_due", "invoice_face"]

_ZERO = Decimal(0)


@dataclass(frozen=True)
class InvoiceFace:
    """A period's derived lines, each in the currency's minor unit."""

    discounts: tuple[Decimal, ...]  # taken off each segment's rounded usage
    usage_after_discount: Decimal
    allowance: Decimal  # the period's included allowance
    allowance_used: Decimal
    minimum: Decimal  # the period's minimum commitment
    minimum_true_up: Decimal


def invoice_face(
    *,
    usage_lines: Sequence[Sequence[Decimal]],
    discounts: Sequence[Decimal],
    allowances: Sequence[Decimal],
    minimums: Sequence[Decimal],
    currency: str,
) -> InvoiceFace:
    """The derived lines of a period whose segments have these rounded `usage_lines`
    (one sequence per segment), `discounts` (fractions, 0 to 1) and exact prorated
    `allowances` and `minimums` (one each per segment, as `PeriodCharges` has them)."""
    if not len(usage_lines) == len(discounts) == len(allowances) == len(minimums):
        raise ValueError("give the usage lines, discount, allowance and minimum of each segment")
    usage = [sum(lines, _ZERO) for lines in usage_lines]
    taken = tuple(
        money_round(EXACT.multiply(amount, discount), currency)
        for amount, discount in zip(usage, discounts, strict=True)
    )
    after = sum(usage, _ZERO) - sum(taken, _ZERO)
    allowance = money_round(sum(allowances, _ZERO), currency)
    minimum = money_round(sum(minimums, _ZERO), currency)
    return InvoiceFace(
        discounts=taken,
        usage_after_discount=after,
        allowance=allowance,
        allowance_used=min(after, allowance),
        minimum=minimum,
        minimum_true_up=max(_ZERO, minimum - after),
    )


def amount_due(total: Decimal, credit_notes: Sequence[Decimal]) -> Decimal:
    """What an invoice asks for: its total less the credit notes issued against it, never
    below zero. Also what credit notes may still take from it (credit notes never take an
    invoice past its total). Each figure is as billed, so the result is too."""
    return max(total - sum(credit_notes, _ZERO), _ZERO)
