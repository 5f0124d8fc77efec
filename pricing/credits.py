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
``drawn + short = billable + settled`` once the wallet has answered, `settled` being what
invoices settled of rounding (rule 4; never below zero altogether). Worked example: 10.00
drawn, nothing short, re-rated to 7.00 billable: 3.00 goes back, 7.00 is drawn. Then 12.00
billable with 4.00 left in the wallet: 5.00 is asked, 4.00 drawn, 1.00 short.

4. **The invoice settles the rounding.** The credits applied line of a period's invoice is
   what the ledger drew for the period, to the minor unit, and closing draws or gives back
   the difference with an explicit ledger entry (`credits_applied`):

   - where the credits paid all of the period's billable usage, the line is the billable
     usage as the invoice's own lines add up to it (its face: rounded usage lines less the
     rounded discount and allowance lines), so usage paid by credits asks no cash; the few
     thousandths between the exact draws and the face are drawn or given back;
   - where they did not (the wallet ran out, or cannot pay those thousandths), the line is
     what they drew rounded **down** to the minor unit (never more than the face), and the
     rest of a minor unit goes back to the wallet, so settling never asks a wallet for what
     it does not have.

   Worked example (USD): usage lines 8.24 + 0.23 + 1.06 + 0.20 + 3.35 = 13.08 from an
   exact 13.09625532, all paid by credits: the line is -13.08 and 0.01625532 goes back to
   the wallet. With 10.004 drawn and 3.09225532 short, the line is -10.00 and 0.004 goes
   back. A correction of a closed period settles again against the period's face then.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from .money import minor_places

__all__ = ["CreditsMove", "credits_applied", "credits_move", "credits_moved"]

_ZERO = Decimal(0)


@dataclass(frozen=True)
class CreditsMove:
    """What reconciling a period's credits with its billable usage moves."""

    from_short: Decimal  # taken off what was short
    refund: Decimal  # given back to the wallet
    ask: Decimal  # asked of the wallet


def credits_move(
    *, billable: Decimal, settled: Decimal, drawn: Decimal, short: Decimal, cover: bool
) -> CreditsMove:
    """What to move so that `drawn` and `short` match `billable` and what invoices `settled`
    of rounding (rules 1 to 4)."""
    owed = max(_ZERO, billable + settled) - drawn - short
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


def credits_applied(
    *,
    drawn: Decimal,
    short: Decimal,
    billable: Decimal,
    settled: Decimal,
    face: Decimal,
    wallet_left: Decimal,
    currency: str,
) -> Decimal:
    """The credits applied line of a period's invoice (rule 4), in the currency's minor
    unit: the billable usage as the invoice's lines add up to it (`face`) where the
    credits paid all of it (what was `drawn` is the exact `billable` plus what was
    `settled` before, nothing is `short`) and the wallet has the rounding to give
    (`wallet_left`); else what was drawn, rounded down, and never more than the face."""
    paid = not short and drawn == max(_ZERO, billable + settled)
    if paid and face - drawn <= wallet_left:
        return face
    places = Decimal(1).scaleb(-minor_places(currency))
    return min(face, drawn.quantize(places, rounding=ROUND_FLOOR))
