"""Invoice lines before they are stored: a draft invoice and its lines, a period's own
lines as its invoice prints them (its face), and the credits applied to them.

The lines, in order (each rounded once, half up, to the currency's minor unit; the lines
derived from others are computed from their rounded amounts, `pricing.invoice`):

1. fixed fees, one per terms segment, prorated;
2. usage, one per price and terms (so per rate card version), named by the price's
   display name (with its days where the name repeats), with its tokens per metric
   (`details`), its events, their time span and an exact unit price where the amount
   divides evenly, else quantity 1;
3. discounts, one per terms segment that has one;
4. the included allowance used (pooled over the period);
5. the minimum-commitment true-up.

Every line says what it bills in the customer's words (`pricing.line_text`), never the
rate card, version or terms that priced it: those are the line's `price` and `terms`.

What the lines add up to before credits is the period's face total; the credits applied
to it are what the ledger drew for the period, settled to the minor unit against the
billable usage on the face (`pricing.credits`, rule 4).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from contracts.models import Customer, Price, RateCardVersion
from pricing.credits import credits_applied
from pricing.invoice import invoice_face
from pricing.line_text import (
    METRIC_LABELS,
    LineDetail,
    allowance_text,
    correction_text,
    credits_text,
    discount_text,
    fee_text,
    in_force_span,
    minimum_text,
    usage_details,
    usage_span,
    usage_text,
)
from pricing.money import minor_places, money_round, unit_price_of
from pricing.rating import Segment
from wallets.models import Wallet
from wallets.selectors import grants_live

from ..models import BillingPeriod, InvoiceLine, UsageDrawDown, UsageRollup
from ..periods import TermsSegment, period_money

_ZERO = Decimal(0)
#: The metrics a rollup sums, which a usage line's details list.
_ROLLUP_METRICS = tuple(METRIC_LABELS)


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
    details: list[LineDetail] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.unit_price is None:
            self.unit_price = self.exact_amount

    def amount(self, currency: str) -> Decimal:
        return money_round(self.exact_amount, currency)


@dataclass(frozen=True)
class PeriodFace:
    """A period's own lines and what they come to."""

    lines: list[DraftLine]
    total: Decimal  # the rounded lines' sum, before credits
    billable: Decimal  # usage after discount beyond the allowance, as the lines say
    exact_billable: Decimal  # the same from the exact money: what the draw-down draws
    events: int


def period_face(
    *, customer: Customer, start: datetime, end: datetime, rollups: list[UsageRollup], at: datetime
) -> PeriodFace:
    """The lines of the period [start, end) with these rollups (stored, or as re-rating
    would make them), rated until `at`."""
    spans, amounts, charges = period_money(customer=customer, start=start, end=end, rollups=rollups)
    currency = customer.currency
    lines = [
        DraftLine(
            InvoiceLine.Kind.FIXED_FEE,
            fee_text(terms.contract.billing_cycle, segment.start, segment.end),
            start,
            end,
            charges.fixed_fees[index],
            terms_id=terms.pk,
        )
        for index, (segment, terms) in enumerate(spans)
        if terms is not None and charges.fixed_fees[index]
    ]
    usage = _usage_lines(rollups, amounts, spans, start, end, at, currency)
    lines.extend(usage)
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
            lines.append(
                DraftLine(
                    InvoiceLine.Kind.DISCOUNT,
                    discount_text(terms.discount_percent, segment.start, segment.end),
                    start,
                    end,
                    _ZERO - face.discounts[index],  # never -0.00
                    terms_id=terms.pk,
                )
            )
    if face.allowance_used:
        lines.append(
            DraftLine(
                InvoiceLine.Kind.ALLOWANCE,
                allowance_text(face.allowance_used, face.allowance, currency, start, end),
                start,
                end,
                -face.allowance_used,
            )
        )
    if face.minimum_true_up:
        lines.append(
            DraftLine(
                InvoiceLine.Kind.MINIMUM,
                minimum_text(face.minimum, currency, start, end),
                start,
                end,
                face.minimum_true_up,
            )
        )
    return PeriodFace(
        lines=lines,
        total=sum((line.amount(currency) for line in lines), _ZERO),
        billable=face.usage_after_discount - face.allowance_used,
        exact_billable=charges.billable,
        events=sum(rollup.event_count for rollup in rollups),
    )


@dataclass
class LateUsage:
    """What changed in a closed period since it was billed: its charges (`delta`), the
    credits applied to it (`credit_delta`), its events, and why. What is owed in cash is
    the difference of the two; when it is below zero, `credit_note` is what closing
    credits on the period's invoice (the rest, beyond what is left of that invoice, is a
    line of this one)."""

    period: BillingPeriod
    delta: Decimal
    credit_delta: Decimal
    events: int
    terms_changed: bool = False
    changed_at: datetime | None = None  # the latest change, as far as it can be told
    credit_note: Decimal = _ZERO

    @property
    def cash(self) -> Decimal:
        return self.delta - self.credit_delta

    @property
    def description(self) -> str:
        """The invoice and days it corrects and why, as its line or credit note says."""
        return correction_text(
            invoice=self.period.invoice.number or "",
            start=self.period.start,
            end=self.period.end,
            events=self.events,
            terms_changed=self.terms_changed,
            charges_changed=bool(self.delta),
        )


@dataclass
class InvoiceDraft:
    """The invoice a period produces: its lines, what closing records as billed, and the
    credits it settles (period start -> what to draw, above zero, or give back)."""

    customer: Customer
    period_start: datetime
    period_end: datetime
    lines: list[DraftLine] = field(default_factory=list)
    period_total: Decimal = _ZERO  # this period's own lines, before credits
    period_credits: Decimal = _ZERO
    period_events: int = 0
    late: list[LateUsage] = field(default_factory=list)
    wallet_left: Decimal = _ZERO  # what the wallet can still give to settle rounding
    settlements: dict[datetime, Decimal] = field(default_factory=dict)

    @classmethod
    def scratch(cls, customer: Customer, at: datetime, left: Decimal) -> InvoiceDraft:
        """An empty draft to foresee lines with, for a wallet that can still give `left`."""
        return cls(customer, at, at, wallet_left=left)

    @property
    def total(self) -> Decimal:
        currency = self.customer.currency
        return sum((line.amount(currency) for line in self.lines), _ZERO)

    def credits_settle(self, start: datetime, amount: Decimal) -> None:
        """Settle the credits of the period starting at `start`: draw `amount` (or give it
        back, below zero) when the invoice is made."""
        if amount:
            self.settlements[start] = amount
            self.wallet_left -= max(amount, _ZERO)

    def credits_line(self, start: datetime, end: datetime, applied: Decimal) -> None:
        if applied:
            self.lines.append(
                DraftLine(
                    InvoiceLine.Kind.CREDITS,
                    credits_text(applied, start, end),
                    start,
                    end,
                    -applied,
                )
            )


@dataclass(frozen=True)
class CreditsState:
    """A period's draw-down record as it stands (or would stand): what the credits drew,
    what they could not cover, and what invoices settled of rounding."""

    drawn: Decimal = _ZERO
    short: Decimal = _ZERO
    settled: Decimal = _ZERO

    @classmethod
    def of(cls, record: UsageDrawDown | None) -> CreditsState:
        """The record's state; nothing drawn where the period has no record."""
        return cls() if record is None else cls(record.drawn, record.short, record.settled)


def credits_state(customer: Customer, start: datetime) -> CreditsState:
    return CreditsState.of(
        UsageDrawDown.objects.filter(customer=customer, period_start=start).first()
    )


def wallet_left(customer: Customer) -> Decimal:
    """What the customer's wallet could still give: its live grants' remaining credits."""
    wallet = Wallet.objects.filter(customer=customer, currency=customer.currency).first()
    if wallet is None:
        return _ZERO
    return sum((grant.remaining for grant in grants_live(wallet=wallet)), _ZERO)


def face_credits(face: PeriodFace, state: CreditsState, left: Decimal, currency: str) -> Decimal:
    """The credits applied to the period on its face (`pricing.credits.credits_applied`)."""
    return credits_applied(
        drawn=state.drawn,
        short=state.short,
        billable=face.exact_billable,
        settled=state.settled,
        face=face.billable,
        wallet_left=left,
        currency=currency,
    )


def _usage_lines(
    rollups: list[UsageRollup],
    amounts: Mapping[str, Decimal],
    spans: list[TermsSegment],
    start: datetime,
    end: datetime,
    at: datetime,
    currency: str,
) -> list[DraftLine]:
    """One line per price and terms, in time order of the terms, then by name; each says
    its price's display name, and its days when another line of the period has that name
    too (`_days_add`)."""
    order = {terms.pk: index for index, (_, terms) in enumerate(spans) if terms}
    # (price pk, terms pk) -> its rollups: a rated rollup has both.
    groups: dict[tuple[int, int], list[UsageRollup]] = defaultdict(list)
    for rollup in rollups:
        if rollup.status == UsageRollup.Status.RATED and rollup.terms_id in order:
            assert rollup.price_id is not None and rollup.terms_id is not None
            groups[(rollup.price_id, rollup.terms_id)].append(rollup)

    def in_order(item: tuple[tuple[int, int], list[UsageRollup]]) -> tuple[int, str, int]:
        (_, terms_id), members = item
        price = members[0].price
        assert price is not None
        return order[terms_id], members[0].line, price.version.number

    lines, prices, segments = [], [], []
    for (price_id, terms_id), members in sorted(groups.items(), key=in_order):
        price = members[0].price
        assert price is not None
        exact = sum((amounts[rollup.key] for rollup in members), _ZERO)
        events = sum(rollup.event_count for rollup in members)
        quantity, unit = unit_price_of(Decimal(events), exact)
        lines.append(
            DraftLine(
                InvoiceLine.Kind.USAGE,
                usage_text(price.shown_name),
                start,
                end,
                exact,
                quantity,
                unit,
                price_id,
                terms_id,
                events,
                min((r.first_event_at for r in members if r.first_event_at), default=None),
                max((r.last_event_at for r in members if r.last_event_at), default=None),
                rated_until=at,
                details=_details(price, members, currency),
            )
        )
        prices.append(price)
        segments.append(spans[order[terms_id]].segment)
    _days_add(lines, prices, segments)
    return lines


def _details(price: Price, members: list[UsageRollup], currency: str) -> list[LineDetail]:
    """What the line billed per metric, from its rollups' token sums (`usage_details`)."""
    quantities = {
        metric: sum(getattr(rollup, metric) for rollup in members) for metric in _ROLLUP_METRICS
    }
    return usage_details(
        formula=price.formula,
        names=price.parsed_formula().names,
        per_event=price.kind == Price.Kind.PER_EVENT,
        rates=price.rates,
        quantities=quantities,
        minor_places=minor_places(currency),
    )


def _days_add(lines: list[DraftLine], prices: list[Price], segments: list[Segment]) -> None:
    """Date the usage lines whose display name another line of the period has too: the
    days of their terms in which their price's version priced usage (`usage_span`)."""
    named = Counter(line.description for line in lines)
    versions: dict[int, dict[int, datetime]] = {}
    for line, price, segment in zip(lines, prices, segments, strict=True):
        if named[line.description] < 2:
            continue
        card = price.version.rate_card_id
        if card not in versions:
            # The card's versions, and those of the lines (a preview's, never stored).
            versions[card] = dict(
                RateCardVersion.objects.filter(rate_card_id=card).values_list(
                    "number", "effective_from"
                )
            )
            for other in prices:
                if other.version.rate_card_id == card:
                    versions[card][other.version.number] = other.version.effective_from
        in_force = in_force_span(versions[card].items(), price.version.number)
        days = usage_span(
            (segment.start, segment.end), in_force, (line.first_event_at, line.last_event_at)
        )
        line.description = usage_text(line.description, days)
