"""The invoice a billing period produces: its own lines (`lines`), the corrections of
earlier closed periods (`late`) and the prepaid credits applied.

Closing stores this draft and the preview shows it, so both are the same code. The lines,
in order (each rounded once, half up, to the currency's minor unit; the total is their
sum; `pricing.money`):

1. to 5. the period's own lines: fixed fees, usage, discounts, the included allowance
   used, the minimum-commitment true-up (`lines`);
6. late usage: for each earlier period of the customer already closed, what its charges
   came to since it was billed (events rated into it late or re-rated, terms changed), as
   the difference of its face; a difference below zero becomes a credit note on that
   period's invoice when the period closes (`late`, `closing`);
7. prepaid credits applied: what the wallet paid for this period's usage (and the late
   usage), drawn in real time as it was rated and settled to the minor unit by closing
   (`pricing.credits`, rule 4).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from contracts.models import Customer

from ..periods import period_rollups
from .late import corrections_add
from .lines import InvoiceDraft, credits_state, face_credits, period_face, wallet_left

_ZERO = Decimal(0)


def invoice_draft(
    *, customer: Customer, start: datetime, end: datetime, at: datetime
) -> InvoiceDraft:
    """The invoice the period [start, end) produces with what is rated at `at`: the
    closing's lines and the preview's."""
    draft = InvoiceDraft(customer, start, end, wallet_left=wallet_left(customer))
    rollups = period_rollups(customer_id=customer.pk, start=start)
    face = period_face(customer=customer, start=start, end=end, rollups=rollups, at=at)
    draft.lines.extend(face.lines)
    draft.period_total, draft.period_events = face.total, face.events
    credits = credits_state(customer, start)
    draft.period_credits = face_credits(face, credits, draft.wallet_left, customer.currency)
    draft.credits_settle(start, draft.period_credits - credits.drawn)
    draft.credits_line(start, end, draft.period_credits)
    corrections_add(draft, at)
    return draft


def corrections_draft(*, customer: Customer, at: datetime) -> InvoiceDraft | None:
    """An invoice of the corrections alone, for a customer with no period left to close
    (their contracts have ended): None when no closed period changed. It spans the
    periods it corrects."""
    draft = InvoiceDraft(customer, at, at, wallet_left=wallet_left(customer))
    corrections_add(draft, at)
    if not draft.late:
        return None if not draft.settlements else draft
    draft.period_start = min(late.period.start for late in draft.late)
    draft.period_end = max(late.period.end for late in draft.late)
    return draft
