"""Corrections of closed periods: what changed in a period after it was invoiced, billed
or credited once.

A closed period's record (`BillingPeriod`) says what its invoices billed: its charges
before credits, the credits applied and its events, as the lines said them. When the
period's face now (`lines.period_face`, from its rollups and terms as they stand) differs
from it, the difference is owed, whatever caused it: usage rated late or re-rated, or a
fee, allowance, minimum or discount changed over it, with or without usage since.
Money owed back in cash is a credit note on the period's invoice (up to what is left of
it; the rest is a line on the next invoice); money owed is a line on the next invoice,
with the credits that paid part of it. docs/guide/invoices.md, "Corrections of closed
periods".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from contracts.models import Customer, TermsChange
from pricing.line_text import correction_beyond_text
from pricing.money import money_round

from ..models import BillingPeriod, InvoiceLine, UsageDrawDown, UsageRollup
from ..periods import period_rollups
from .credit_notes import invoice_credit_left
from .lines import (
    CreditsState,
    DraftLine,
    InvoiceDraft,
    LateUsage,
    PeriodFace,
    credits_state,
    face_credits,
    period_face,
)

_ZERO = Decimal(0)


def corrections_add(draft: InvoiceDraft, at: datetime) -> None:
    """Add to the draft the corrections of the customer's closed periods that changed:
    their lines, their credit notes (`late`) and the credits settled for them."""
    customer = draft.customer
    periods = list(
        BillingPeriod.objects.filter(customer=customer).select_related("invoice").order_by("start")
    )
    if not periods:
        return
    changes = _terms_changes(customer, since=min(period.billed_until for period in periods))
    touched = _touched(customer, periods, changes)
    for period in periods:
        if period.start not in touched:
            continue
        rollups = period_rollups(customer_id=customer.pk, start=period.start)
        face = period_face(
            customer=customer, start=period.start, end=period.end, rollups=rollups, at=at
        )
        late = _late_of(draft, period, face, credits_state(customer, period.start), changes)
        if late is None:
            continue
        record = UsageDrawDown.objects.filter(customer=customer, period_start=period.start)
        late.changed_at = max(
            [rollup.updated_at for rollup in rollups]
            + list(record.values_list("updated_at", flat=True))
            + _terms_changed(period, changes),
            default=None,
        )
        draft.late.append(late)
        _correction_lines(draft, late, at)


@dataclass
class CorrectionForeseen:
    """What the next closing would do for a closed period: its charges and credits applied
    then (`total`, `credits`), what changed (`late`, its `credit_note` set: what would be
    credited on the period's invoice; None when nothing would) and the lines it would put
    on the next invoice (`lines`: none, a correction line, a line for what is beyond what
    is left to credit, a credits line)."""

    total: Decimal
    credits: Decimal
    late: LateUsage | None
    lines: list[DraftLine]


def correction_foresee(
    *,
    draft: InvoiceDraft,
    period: BillingPeriod,
    rollups: list[UsageRollup],
    credits: CreditsState,
    at: datetime,
) -> CorrectionForeseen:
    """What the next closing would bill or credit for the closed `period` were its rollups
    `rollups` and its credits `credits`: closing's own rule, stored nowhere; `draft` is a
    scratch draft of the customer's (`InvoiceDraft.scratch`)."""
    changes = _terms_changes(draft.customer, since=period.billed_until)
    face = period_face(
        customer=draft.customer, start=period.start, end=period.end, rollups=rollups, at=at
    )
    late = _late_of(draft, period, face, credits, changes)
    if late is not None:
        _correction_lines(draft, late, at)
    applied = period.billed_credits + (late.credit_delta if late else _ZERO)
    return CorrectionForeseen(face.total, applied, late, draft.lines)


def _late_of(
    draft: InvoiceDraft,
    period: BillingPeriod,
    face: PeriodFace,
    credits: CreditsState,
    changes: list[tuple[datetime, datetime]],
) -> LateUsage | None:
    """What changed in a closed period since it was billed, were its face `face` and its
    credits `credits`, and why (`changes`: the customer's terms changes, (effective_from,
    created_at)); None when nothing did. The period's credits are settled on the draft
    whether or not anything changed."""
    applied = face_credits(face, credits, draft.wallet_left, draft.customer.currency)
    draft.credits_settle(period.start, applied - credits.drawn)
    delta = face.total - period.billed_total
    credit_delta = applied - period.billed_credits
    events = face.events - period.billed_events
    if not (delta or credit_delta or events):
        return None
    terms_changed = bool(_terms_changed(period, changes))
    return LateUsage(period, delta, credit_delta, events, terms_changed)


def _correction_lines(draft: InvoiceDraft, late: LateUsage, at: datetime) -> None:
    """A closed period's correction, in exactly one place: money owed back in cash is a
    credit note on the period's invoice (up to what is left of it; the rest is a line
    here); money owed is a line here, with the credits that paid part of it. Credits the
    wallet got back or paid after the period was billed moved in the wallet already."""
    period, currency = late.period, draft.customer.currency
    if late.cash < 0:
        refund = money_round(-late.cash, currency)
        late.credit_note = min(refund, invoice_credit_left(invoice=period.invoice))
        beyond = refund - late.credit_note
        if beyond:
            number = period.invoice.number
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.LATE_USAGE,
                    correction_beyond_text(late.description, number or ""),
                    period.start,
                    period.end,
                    -beyond,
                )
            )
        return
    if late.delta <= 0 and late.cash == 0:
        return  # charges went down by what the wallet got back: nothing is owed either way
    if late.delta:
        draft.lines.append(
            DraftLine(
                InvoiceLine.Kind.LATE_USAGE,
                late.description,
                period.start,
                period.end,
                late.delta,
                event_count=max(late.events, 0),
                rated_after=period.billed_until,
                rated_until=at,
            )
        )
    draft.credits_line(period.start, period.end, late.credit_delta)


def _terms_changes(customer: Customer, *, since: datetime) -> list[tuple[datetime, datetime]]:
    return list(
        TermsChange.objects.filter(customer=customer, created_at__gt=since).values_list(
            "effective_from", "created_at"
        )
    )


def _touched(
    customer: Customer, periods: list[BillingPeriod], changes: list[tuple[datetime, datetime]]
) -> set[datetime]:
    """The starts of the closed periods that may have changed since they were billed: late
    or re-rated usage, credits moved, or terms changed over them."""
    since = min(period.billed_until for period in periods)
    starts = [period.start for period in periods]
    return (
        {period.start for period in periods if _terms_changed(period, changes)}
        | set(
            UsageRollup.objects.filter(
                customer=customer, period_start__in=starts, updated_at__gte=since
            ).values_list("period_start", flat=True)
        )
        | set(
            UsageDrawDown.objects.filter(
                customer=customer, period_start__in=starts, updated_at__gte=since
            ).values_list("period_start", flat=True)
        )
    )


def _terms_changed(
    period: BillingPeriod, changes: list[tuple[datetime, datetime]]
) -> list[datetime]:
    """When the terms changes over the period made after it was billed were made."""
    return [
        created_at
        for effective_from, created_at in changes
        if effective_from < period.end and created_at > period.billed_until
    ]
