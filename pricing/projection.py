"""The invoice a period is heading for: its draft so far, with usage carried on at its rate.

Pure Python (no Django). A projection takes the current period's invoice as drafted so
far, on its face, and asks what it would bill at the period's end if usage went on at its
average rate so far:

1. **Lines that do not grow with usage** (fixed fees, which a draft already bills for the
   whole period, and late usage of closed periods) are kept as drafted.
2. **Usage.** Each terms segment's rounded usage lines are summed and carried to the
   period's end: ``usage * period / elapsed`` (both in microseconds), rounded once, half
   up, to the minor unit. Elapsed is the time from the period's start to now (at most the
   period); within the period's first minute it is too early to say (None).
3. **Discount, allowance and minimum** are then the invoice face's own rule
   (`pricing.invoice.invoice_face`) on those projected usage lines: a segment's discount,
   the pooled allowance used, the minimum-commitment true-up.

The total is before prepaid credits: what the credits will pay depends on the wallet then.
A change of terms ahead is not foreseen: each segment's usage is carried by the same share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal

from .invoice import invoice_face
from .money import money_round

__all__ = ["InvoiceProjection", "invoice_projected", "period_elapsed_share"]

_ZERO = Decimal(0)
#: Enough digits for usage * period / elapsed; the quotient is rounded to the minor unit.
_DIVIDE = Context(prec=50)
#: Before a minute of the period has passed, its rate says nothing yet.
TOO_EARLY = timedelta(minutes=1)


@dataclass(frozen=True)
class InvoiceProjection:
    """The period's invoice at its end, line kind by line kind, in the minor unit."""

    fixed: Decimal  # fixed fees and late usage, as drafted
    usage: Decimal  # the usage lines, carried to the period's end
    discount: Decimal  # taken off the projected usage (a positive figure)
    allowance_used: Decimal
    minimum_true_up: Decimal
    total: Decimal  # before prepaid credits


def period_elapsed_share(*, start: datetime, end: datetime, at: datetime) -> tuple[int, int] | None:
    """(elapsed, period) in microseconds, elapsed capped at the period; None in its first
    minute."""
    elapsed = min(at, end) - start
    if elapsed < TOO_EARLY:
        return None
    return _microseconds(elapsed), _microseconds(end - start)


def invoice_projected(
    *,
    fixed_lines: Sequence[Decimal],
    usage_lines: Sequence[Sequence[Decimal]],
    discounts: Sequence[Decimal],
    allowances: Sequence[Decimal],
    minimums: Sequence[Decimal],
    start: datetime,
    end: datetime,
    at: datetime,
    currency: str,
) -> InvoiceProjection | None:
    """The projection of a period [start, end) at `at`, from its drafted lines on their face:
    `fixed_lines` (rounded amounts kept as they are), `usage_lines` (rounded, one sequence
    per terms segment) and each segment's discount (a fraction), exact allowance share and
    exact minimum share, as `invoice_face` takes them. None when it is too early to say."""
    share = period_elapsed_share(start=start, end=end, at=at)
    if share is None:
        return None
    elapsed, period = share
    projected = [
        money_round(_DIVIDE.divide(sum(lines, _ZERO) * period, Decimal(elapsed)), currency)
        for lines in usage_lines
    ]
    face = invoice_face(
        usage_lines=[[amount] for amount in projected],
        discounts=discounts,
        allowances=allowances,
        minimums=minimums,
        currency=currency,
    )
    fixed = sum((money_round(amount, currency) for amount in fixed_lines), _ZERO)
    usage = sum(projected, _ZERO)
    discount = sum(face.discounts, _ZERO)
    return InvoiceProjection(
        fixed=fixed,
        usage=usage,
        discount=discount,
        allowance_used=face.allowance_used,
        minimum_true_up=face.minimum_true_up,
        total=fixed + usage - discount - face.allowance_used + face.minimum_true_up,
    )


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
