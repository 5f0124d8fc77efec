"""How a period's prepaid credits follow its billable usage (pure Python, no Django).

A period's record says what the credits paid of its billable usage (`drawn`) and what they
could not cover (`short`, billed in arrears). Whenever the billable usage changes (usage
rated, re-rated, moved to another period), the record is reconciled with it:

1. **Less billable than paid and short together**: the difference comes off what was short
   first, and what is left of it goes back to the wallet (a refund).
2. **More billable**: the difference is asked of the wallet; what it cannot give is short.
3. **Credits cover arrears** (a contract term): what is still short is asked again at every
   reconciliation, so credits granted since pay for it.

So reconciling twice moves nothing more, and the record always adds up:
``drawn + short = billable`` once the wallet has answered. Worked example: 10.00 drawn,
nothing short, re-rated to 7.00 billable: 3.00 goes back, 7.00 is drawn. Then 12.00
billable with 4.00 left in the wallet: 5.00 is asked, 4.00 drawn, 1.00 short.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["CreditsMove", "credits_move", "credits_moved"]

_ZERO = Decimal(0)


@dataclass(frozen=True)
class CreditsMove:
    """What reconciling a period's credits with its billable usage moves."""

    from_short: Decimal  # taken off what was short
    refund: Decimal  # given back to the wallet
    ask: Decimal  # asked of the wallet


def credits_move(*, billable: Decimal, drawn: Decimal, short: Decimal, cover: bool) -> CreditsMove:
    """What to move so that `drawn` and `short` match `billable` (rules 1 to 3)."""
    owed = billable - drawn - short
    from_short = refund = _ZERO
    if owed < 0:
        from_short = min(short, -owed)
        refund = -owed - from_short
        owed = _ZERO
    return CreditsMove(from_short, refund, owed + (short - from_short if cover else _ZERO))


def credits_moved(
    move: CreditsMove, *, drawn: Decimal, short: Decimal, got: Decimal, cover: bool
) -> tuple[Decimal, Decimal]:
    """The period's (drawn, short) once `move` is made and the wallet gave `got` of what
    was asked: what it could not give is short (all of what is short, where credits cover
    arrears, as they were asked for it again)."""
    missing = move.ask - got
    short -= move.from_short
    return drawn - move.refund + got, missing if cover else short + missing
