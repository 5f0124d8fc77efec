"""The invoice a billing period produces: its lines, worked out from the period's rollups.

Closing stores this draft and the preview shows it, so both are the same code. The lines,
in order (each rounded once, half up, to the currency's minor unit; the total is their
sum; `pricing.money`):

1. fixed fees, one per terms segment, prorated;
2. usage, one per price and terms (so per rate card version), with its events, their
   time span and an exact unit price where the amount divides evenly, else quantity 1;
3. discounts, one per terms segment that has one;
4. the included allowance used (pooled over the period);
5. the minimum-commitment true-up;
6. late usage: for each earlier period of the customer already closed, what its usage
   came to since it was billed (events rated into it late, or re-rated), as the difference
   of its total; a difference below zero becomes a credit note on that period's invoice
   when the period closes (`closing`);
7. prepaid credits applied: what the wallet paid for this period's usage (and the late
   usage), drawn in real time as it was rated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from contracts.models import ContractTerms, Customer, TermsChange
from pricing.cycles import span_text
from pricing.invoice import invoice_face
from pricing.money import money_round, plain, unit_price_of

from ..models import BillingPeriod, InvoiceLine, UsageDrawDown, UsageRollup
from ..periods import TermsSegment, period_money, period_rollups
from .credit_notes import invoice_credit_left


@dataclass
class LateUsage:
    """What changed in a closed period since it was billed: its charges (`delta`), the
    credits drawn for it (`credit_delta`), its events, and why. What is owed in cash is
    the difference of the two; when it is below zero, `credit_note` is what closing
    credits on the period's invoice (the rest, beyond what is left of that invoice, is a
    line of this one)."""

    period: BillingPeriod
    delta: Decimal
    credit_delta: Decimal
    events: int
    causes: tuple[str, ...] = ()
    changed_at: datetime | None = None  # the latest change, as far as it can be told
    credit_note: Decimal = Decimal(0)

    @property
    def cash(self) -> Decimal:
        return self.delta - self.credit_delta

    @property
    def description(self) -> str:
        """The period and the cause, as the correction's line or credit note names them."""
        name = span_text(self.period.start, self.period.end)
        if self.causes == (f"{self.events:+,} events",):
            return f"Late usage for {name} ({self.causes[0]})"
        return f"Correction for {name}: {', '.join(self.causes)}"


_ZERO = Decimal(0)


@dataclass
class DraftLine:
    """A line before it is stored: what the preview shows and closing saves."""

    kind: str
    description: str
    period_start: datetime
    period_end: datetime
    exact_amount: Decimal
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    price_id: int | None = None
    terms_id: int | None = None
    event_count: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    rated_after: datetime | None = None
    rated_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.unit_price is None:
            self.unit_price = self.exact_amount

    def amount(self, currency: str) -> Decimal:
        return money_round(self.exact_amount, currency)


@dataclass
class InvoiceDraft:
    """The invoice a period produces: its lines, and what closing records as billed."""

    customer: Customer
    period_start: datetime
    period_end: datetime
    lines: list[DraftLine] = field(default_factory=list)
    period_total: Decimal = _ZERO  # this period's charges, exact, before credits
    period_credits: Decimal = _ZERO
    period_events: int = 0
    late: list[LateUsage] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        currency = self.customer.currency
        return sum((line.amount(currency) for line in self.lines), _ZERO)


def invoice_draft(
    *, customer: Customer, start: datetime, end: datetime, at: datetime
) -> InvoiceDraft:
    """The invoice the period [start, end) produces with what is rated at `at`: the
    closing's lines and the preview's."""
    draft = InvoiceDraft(customer, start, end)
    rollups = period_rollups(customer_id=customer.pk, start=start)
    spans, amounts, charges = period_money(customer=customer, start=start, end=end, rollups=rollups)
    for index, (segment, terms) in enumerate(spans):
        if terms is not None and charges.fixed_fees[index]:
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.FIXED_FEE,
                    f"Fixed fee, {span_text(segment.start, segment.end)} ({_terms_label(terms)})",
                    start,
                    end,
                    charges.fixed_fees[index],
                    terms_id=terms.pk,
                )
            )
    usage = _usage_lines(rollups, amounts, spans, start, end, at)
    draft.lines.extend(usage)
    currency = customer.currency
    segment_of = {terms.pk: index for index, (_, terms) in enumerate(spans) if terms}
    usage_by_segment: list[list[Decimal]] = [[] for _ in spans]
    for line in usage:
        assert line.terms_id is not None  # a usage line is one price under one set of terms
        usage_by_segment[segment_of[line.terms_id]].append(line.amount(currency))
    face = invoice_face(
        usage_lines=usage_by_segment,
        discounts=[piece.segment.discount for piece in spans],
        allowances=charges.allowances,
        minimums=charges.minimums,
        currency=currency,
    )
    for index, (segment, terms) in enumerate(spans):
        if charges.discounts[index]:
            assert terms is not None  # a discount is one of the terms'
            percent = plain(terms.discount_percent)
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.DISCOUNT,
                    f"Discount {percent} %, {span_text(segment.start, segment.end)}",
                    start,
                    end,
                    _ZERO - face.discounts[index],  # never -0.00
                    terms_id=terms.pk,
                )
            )
    if face.allowance_used:
        used, included = plain(face.allowance_used), plain(face.allowance)
        draft.lines.append(
            DraftLine(
                InvoiceLine.Kind.ALLOWANCE,
                f"Included allowance used ({used} of {included})",
                start,
                end,
                -face.allowance_used,
            )
        )
    if face.minimum_true_up:
        draft.lines.append(
            DraftLine(
                InvoiceLine.Kind.MINIMUM,
                f"Minimum commitment true-up (minimum {plain(face.minimum)})",
                start,
                end,
                face.minimum_true_up,
            )
        )
    draft.period_total = charges.total
    draft.period_events = sum(rollup.event_count for rollup in rollups)
    draft.period_credits = _drawn(customer, start)
    _credits_line(draft, start, end, draft.period_credits)
    _corrections_add(draft, at)
    return draft


def corrections_draft(*, customer: Customer, at: datetime) -> InvoiceDraft | None:
    """An invoice of the corrections alone, for a customer with no period left to close
    (their contracts have ended): None when no closed period changed. It spans the
    periods it corrects."""
    draft = InvoiceDraft(customer, at, at)
    _corrections_add(draft, at)
    if not draft.late:
        return None
    draft.period_start = min(late.period.start for late in draft.late)
    draft.period_end = max(late.period.end for late in draft.late)
    return draft


def _corrections_add(draft: InvoiceDraft, at: datetime) -> None:
    for late in _late_usage(draft.customer, at):
        draft.late.append(late)
        _correction_lines(draft, late, draft.customer.currency, at)


def _correction_lines(draft: InvoiceDraft, late: LateUsage, currency: str, at: datetime) -> None:
    """A closed period's correction, in exactly one place: money owed back in cash is a
    credit note on the period's invoice (up to what is left of it; the rest is a line
    here); money owed is a line here, with the credits that paid part of it. Credits the
    wallet got back or paid after the period was billed moved in the wallet already."""
    period = late.period
    if late.cash < 0:
        refund = money_round(-late.cash, currency)
        late.credit_note = min(refund, invoice_credit_left(invoice=period.invoice))
        beyond = refund - late.credit_note
        if beyond:
            number = period.invoice.number
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.LATE_USAGE,
                    f"{late.description} (beyond what is left to credit on {number})",
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
    _credits_line(draft, period.start, period.end, late.credit_delta)


def _credits_line(draft: InvoiceDraft, start: datetime, end: datetime, drawn: Decimal) -> None:
    if drawn:
        what = "applied to" if drawn > 0 else "returned to the wallet for"
        draft.lines.append(
            DraftLine(
                InvoiceLine.Kind.CREDITS,
                f"Prepaid credits {what} {span_text(start, end)}",
                start,
                end,
                -drawn,
            )
        )


def _usage_lines(
    rollups: list[UsageRollup],
    amounts: Mapping[str, Decimal],
    spans: list[TermsSegment],
    start: datetime,
    end: datetime,
    at: datetime,
) -> list[DraftLine]:
    """One line per price and terms, in time order of the terms, then by name."""
    order = {terms.pk: index for index, (_, terms) in enumerate(spans) if terms}
    # (price pk, terms pk) -> its rollups: a rated rollup has both.
    groups: dict[tuple[int, int], list[UsageRollup]] = defaultdict(list)
    for rollup in rollups:
        if rollup.status == UsageRollup.Status.RATED:
            assert rollup.price_id is not None and rollup.terms_id is not None
            groups[(rollup.price_id, rollup.terms_id)].append(rollup)

    def in_order(item: tuple[tuple[int, int], list[UsageRollup]]) -> tuple[int, str, int]:
        (_, terms_id), members = item
        price = members[0].price
        assert price is not None
        return order[terms_id], members[0].line, price.version.number

    lines = []
    for (price_id, terms_id), members in sorted(groups.items(), key=in_order):
        price, terms = members[0].price, members[0].terms
        assert price is not None and terms is not None
        exact = sum((amounts[rollup.key] for rollup in members), _ZERO)
        events = sum(rollup.event_count for rollup in members)
        quantity, unit = unit_price_of(Decimal(events), exact)
        version = price.version
        lines.append(
            DraftLine(
                InvoiceLine.Kind.USAGE,
                f"{price.name} ({version.rate_card.name} v{version.number}, {_terms_label(terms)})",
                start,
                end,
                exact,
                quantity,
                unit,
                price_id,
                terms_id,
                events,
                min(rollup.first_event_at for rollup in members),
                max(rollup.last_event_at for rollup in members),
                rated_until=at,
            )
        )
    return lines


def _late_usage(customer: Customer, at: datetime) -> list[LateUsage]:
    """Each closed period of the customer whose charges, credits or events changed after it
    was billed: late or re-rated usage, or terms changed over it (a fee, an allowance, a
    minimum or a discount), whether or not it had usage since."""
    periods = list(
        BillingPeriod.objects.filter(customer=customer).select_related("invoice").order_by("start")
    )
    if not periods:
        return []
    since = min(period.billed_until for period in periods)
    changes = list(
        TermsChange.objects.filter(customer=customer, created_at__gt=since).values_list(
            "effective_from", "created_at"
        )
    )
    touched = (
        {
            period.start
            for period in periods
            for effective_from, created_at in changes
            if effective_from < period.end and created_at > period.billed_until
        }
        | set(
            UsageRollup.objects.filter(
                customer=customer,
                period_start__in=[period.start for period in periods],
                updated_at__gte=since,
            ).values_list("period_start", flat=True)
        )
        | set(
            UsageDrawDown.objects.filter(
                customer=customer,
                period_start__in=[period.start for period in periods],
                updated_at__gte=since,
            ).values_list("period_start", flat=True)
        )
    )
    late = []
    for period in periods:
        if period.start not in touched:
            continue
        rollups = period_rollups(customer_id=customer.pk, start=period.start)
        charges = period_money(
            customer=customer, start=period.start, end=period.end, rollups=rollups
        )[2]
        events = sum(rollup.event_count for rollup in rollups)
        found = _late_of(period, charges.total, _drawn(customer, period.start), events, changes)
        if found is None:
            continue
        record = UsageDrawDown.objects.filter(customer=customer, period_start=period.start)
        found.changed_at = max(
            [rollup.updated_at for rollup in rollups]
            + list(record.values_list("updated_at", flat=True))
            + _terms_changed(period, changes),
            default=None,
        )
        late.append(found)
    return late


def _late_of(
    period: BillingPeriod,
    total: Decimal,
    drawn: Decimal,
    events: int,
    changes: list[tuple[datetime, datetime]],
) -> LateUsage | None:
    """What changed in a closed period since it was billed, were its charges `total`, the
    credits drawn for it `drawn` and its events `events`, and why (`changes`: the
    customer's terms changes, (effective_from, created_at)); None when nothing did."""
    delta = total - period.billed_total
    credit_delta = drawn - period.billed_credits
    events -= period.billed_events
    if not (delta or credit_delta or events):
        return None
    causes = [f"{events:+,} events"] if events else []
    if _terms_changed(period, changes):
        causes.append("terms changed")
    if not causes:
        causes.append("usage re-rated" if delta else "credits moved")
    return LateUsage(period, delta, credit_delta, events, tuple(causes))


def _terms_changed(
    period: BillingPeriod, changes: list[tuple[datetime, datetime]]
) -> list[datetime]:
    """When the terms changes over the period made after it was billed were made."""
    return [
        created_at
        for effective_from, created_at in changes
        if effective_from < period.end and created_at > period.billed_until
    ]


@dataclass
class CorrectionForeseen:
    """What the next closing would do for a closed period (`late`, its `credit_note` set:
    what would be credited on the period's invoice) and the lines it would put on the next
    invoice (`lines`): none, a correction line, a line for what is beyond what is left to
    credit, a credits line)."""

    late: LateUsage
    lines: list[DraftLine]


def correction_foresee(
    *,
    customer: Customer,
    period: BillingPeriod,
    total: Decimal,
    drawn: Decimal,
    events: int,
    at: datetime,
) -> CorrectionForeseen | None:
    """What the next closing would bill or credit for the closed `period` were its charges
    `total`, the credits drawn for it `drawn` and its events `events`: closing's own rule
    (`_late_usage`, `_correction_lines`), stored nowhere. None when nothing would change."""
    changes = list(
        TermsChange.objects.filter(
            customer=customer, created_at__gt=period.billed_until
        ).values_list("effective_from", "created_at")
    )
    late = _late_of(period, total, drawn, events, changes)
    if late is None:
        return None
    draft = InvoiceDraft(customer, at, at)
    _correction_lines(draft, late, customer.currency, at)
    return CorrectionForeseen(late, draft.lines)


def _drawn(customer: Customer, start: datetime) -> Decimal:
    record = UsageDrawDown.objects.filter(customer=customer, period_start=start).first()
    return record.drawn if record else _ZERO


def _terms_label(terms: ContractTerms) -> str:
    return "terms" if terms.number == 1 else f"amendment {terms.number - 1}"
