"""Price corrections, and re-rating every customer of a rate card: shown first as a diff per
customer and period, applied only when asked, with who and why kept.

A **price correction** (`price_correction_preview`, `price_correction_apply`) corrects one
price of a rate card from an instant in the past (`contracts.services.price_correction_create`,
which records who and why and makes the correction's versions), then re-rates the usage it
reaches: every period, of every customer whose terms use the card at or after the
instant, that holds events from the instant on while they were on the card.

- The preview makes the correction inside a transaction that it rolls back, so the
  re-rating machinery (`rating.rerating.period_rerate`, which reads prices from the
  database) rates each period's events with the corrected prices; nothing is stored. For a
  period already invoiced it also says what the next closing will bill or credit for it,
  and where, by closing's own rule (`invoicing.late.correction_foresee`; docs/guide/
  invoices.md, "Corrections of closed periods"), with the credits the draw-down would
  give back or draw as the wallet stands now.
- Applying makes the correction and puts the periods' events back in the rating queue in
  the same transaction (as `period_rerate(apply=True)` does): the raters re-rate them
  within seconds, and the next closing bills or credits what changed in closed periods,
  once.

**Re-rating a card** (`rate_card_rerate`) re-rates the period holding an instant of each
customer whose terms use the card then, with today's prices and terms; `period_preview`
shows one customer's, with what the next closing does for it when it is closed.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.tasks import rating_nudge
from contracts.models import Contract, ContractTerms, Customer, PriceCorrection, RateCard
from contracts.price_corrections import price_correction_create
from contracts.selectors import contract_terms_at, rate_card_customers
from metering.models import UsageEvent
from metering.services import events_queue_for_rating
from pricing.credits import credits_move, credits_moved
from pricing.cycles import period_holding, span_text
from pricing.money import money_label
from wallets.models import Wallet

from .invoicing.credit_notes import refund_destination
from .invoicing.late import correction_foresee
from .invoicing.lines import CreditsState, DraftLine, InvoiceDraft, wallet_left
from .models import BillingPeriod, Invoice, UsageDrawDown
from .rating.rerating import RerateDiff, period_rerate

_ZERO = Decimal(0)
_INSTANT = timedelta(microseconds=1)
_DESTINATIONS = {
    "none": "recorded on the invoice, lowering what is due",
    "wallet": "granted to the wallet, the invoice being paid",
    "stripe": "credited against the invoice in Stripe",
}


@dataclass
class VersionMade:
    """A version a correction makes: its number, where it starts, and the version it
    copies (with the price corrected)."""

    number: int
    effective_from: datetime
    copies: int


@dataclass
class OutcomeLine:
    """A line the next invoice will carry for a closed period, rounded as billed."""

    kind: str
    description: str
    amount: Decimal
    currency: str


@dataclass
class ClosedPeriodOutcome:
    """What the next closing will do for a period already invoiced, once its events are
    re-rated: its charges and the credits drawn for it as billed and after, and where the
    difference owed in cash goes: a credit note on the period's `invoice` (`credit_note`,
    to `destination`), lines on the next invoice (`lines`, on `next_invoice`), or nowhere
    (`paid_by_credits`: the wallet got back or paid the difference)."""

    invoice: Invoice
    billed_total: Decimal
    total_after: Decimal
    billed_credits: Decimal
    credits_after: Decimal
    description: str = ""
    credit_note: Decimal = _ZERO
    destination: str = ""
    lines: list[DraftLine] = field(default_factory=list)
    next_invoice: str = ""

    @property
    def unchanged(self) -> bool:
        return not self.description

    @property
    def currency(self) -> str:
        return self.invoice.currency

    @property
    def next_invoice_lines(self) -> list[OutcomeLine]:
        """The lines on the next invoice, rounded as closing rounds them."""
        return [
            OutcomeLine(line.kind, line.description, line.amount(self.currency), self.currency)
            for line in self.lines
        ]

    @property
    def paid_by_credits(self) -> bool:
        return bool(self.description) and not self.credit_note and not self.lines

    @property
    def sentence(self) -> str:
        """What the next closing does for the period, in words (the admin, the command), as
        a clause: "a credit note of 10.00 USD on INV-000001 (...)"."""
        if self.unchanged:
            return "nothing to bill or credit: the period comes to what it billed."
        parts = []
        moved = self.credits_after - self.billed_credits
        if moved:
            way = "goes back to the wallet" if moved < 0 else "is drawn from the wallet"
            parts.append(f"{money_label(abs(moved), self.currency)} of credits {way}")
        if self.credit_note:
            where = _DESTINATIONS.get(self.destination, self.destination)
            parts.append(
                f"a credit note of {money_label(self.credit_note, self.currency)} on "
                f"{self.invoice.number} ({where})"
            )
        parts.extend(
            f"the line “{line.description}” of {money_label(line.amount, line.currency)} on "
            f"{self.next_invoice}"
            for line in self.next_invoice_lines
        )
        if self.paid_by_credits:
            parts.append("nothing more: the credits cover the difference")
        return ", ".join(parts) + "."


@dataclass
class PeriodPreview:
    """One period of one customer: its re-rating diff, and when it is closed, its invoice
    and what the next closing will do for it."""

    diff: RerateDiff
    closed: ClosedPeriodOutcome | None = None

    @property
    def period_start(self) -> datetime:
        return self.diff.period_start

    @property
    def period_end(self) -> datetime:
        return self.diff.period_end


@dataclass
class CustomerPreview:
    """A customer whose terms use the card at or after the instant, with the periods that
    hold their events from then on while on the card, oldest first (none: no usage)."""

    customer: Customer
    periods: list[PeriodPreview]


@dataclass
class PeriodQueued:
    """A period whose events a correction put back in the rating queue."""

    customer: Customer
    period_start: datetime
    period_end: datetime
    events: int
    invoice: Invoice | None  # the period's, when it is closed


@dataclass
class PriceCorrectionResult:
    """A price correction: what it sets, from when, who and why, and the versions it makes.

    A preview (`applied` False) has the diff of each customer and period (`customers`) and
    stores nothing (`correction` is None); an applied correction has the stored
    `correction` and the periods it queued for re-rating (`queued`)."""

    rate_card: RateCard
    price: str
    effective_from: datetime
    rates: dict[str, Any]
    formula: str
    reason: str
    created_by: str
    versions: list[VersionMade]
    applied: bool = False
    customers: list[CustomerPreview] = field(default_factory=list)
    correction: PriceCorrection | None = None
    queued: list[PeriodQueued] = field(default_factory=list)

    @property
    def events_queued(self) -> int:
        return sum(period.events for period in self.queued)

    @property
    def correction_id(self) -> int | None:
        return self.correction.pk if self.correction else None

    @property
    def created_at(self) -> datetime | None:
        return self.correction.created_at if self.correction else None


class _Checked(Exception):
    """Leaves the check of a correction about to be applied, rolling back what it made."""


class _RolledBack(Exception):
    """Leaves the preview's transaction, rolling back what it made, with its result."""

    def __init__(self, result: PriceCorrectionResult):
        super().__init__("preview rolled back")
        self.result = result


def price_correction_preview(
    *,
    rate_card: RateCard,
    price: str,
    effective_from: datetime,
    rates: Mapping[str, Any] | None = None,
    formula: str = "",
    reason: str,
    created_by: str,
) -> PriceCorrectionResult:
    """What correcting `price` from `effective_from` would change, per customer and period,
    storing nothing: the correction is made (and checked, refused as the apply would be)
    inside a transaction, each affected period is re-rated in memory with it, and the
    transaction is rolled back. While it runs, the card's versions stay locked."""
    try:
        with transaction.atomic():
            correction = price_correction_create(
                rate_card=rate_card,
                price=price,
                effective_from=effective_from,
                rates=rates,
                formula=formula,
                reason=reason,
                created_by=created_by,
            )
            result = _result_of(correction)
            result.customers = _previews(rate_card, effective_from)
            raise _RolledBack(result)
    except _RolledBack as rolled_back:
        return rolled_back.result


def price_correction_apply(
    *,
    rate_card: RateCard,
    price: str,
    effective_from: datetime,
    rates: Mapping[str, Any] | None = None,
    formula: str = "",
    reason: str,
    created_by: str,
) -> PriceCorrectionResult:
    """Correct `price` from `effective_from` and re-rate what it reaches, in one
    transaction: the correction (who, why, its versions) and the affected periods' events
    back in the rating queue. A refusal stores nothing.

    The correction is checked first (made and rolled back), then the events are queued,
    then it is made for good: queueing may wait for a rater still rating one of the
    events, and it waits holding no lock of the card's versions, which that rater may be
    about to take.
    """
    fields: dict[str, Any] = {
        "rate_card": rate_card,
        "price": price,
        "effective_from": effective_from,
        "rates": rates,
        "formula": formula,
        "reason": reason,
        "created_by": created_by,
    }
    with transaction.atomic():
        try:
            with transaction.atomic():
                price_correction_create(**fields)
                raise _Checked
        except _Checked:
            pass
        queued = []
        for customer, periods in _affected(rate_card, effective_from).items():
            for start, end in periods:
                events = events_queue_for_rating(customer_id=customer.pk, start=start, end=end)
                closed = _closed(customer, start)
                invoice = closed.invoice if closed else None
                queued.append(PeriodQueued(customer, start, end, events, invoice))
        correction = price_correction_create(**fields)
        transaction.on_commit(rating_nudge)
    result = _result_of(correction)
    result.applied, result.correction, result.queued = True, correction, queued
    return result


def period_preview(*, customer: Customer, at: datetime) -> PeriodPreview:
    """What re-rating the customer's period holding `at` with today's prices and terms
    changes (`period_rerate`), and when the period is closed, what the next closing will
    then bill or credit for it, and where. Nothing is stored."""
    diff = period_rerate(customer=customer, at=at)
    closed = _closed(customer, diff.period_start)
    if closed is None:
        return PeriodPreview(diff)
    credits = _credits_after(customer, [diff])[diff.period_start]
    return PeriodPreview(diff, _closed_outcome(customer, closed, diff, credits, timezone.now()))


def rate_card_rerate(
    *, rate_card: RateCard, at: datetime, apply: bool = False
) -> list[tuple[Customer, PeriodPreview]]:
    """Re-rate the period holding `at` of every customer whose terms in force at `at` use
    the card, with today's prices and terms: each customer's `period_preview`, or with
    `apply` their periods' events back in the rating queue (`period_rerate`) and the diff
    of each."""
    customers = rate_card_customers(rate_card=rate_card, at=at)
    if not apply:
        return [(customer, period_preview(customer=customer, at=at)) for customer in customers]
    return [
        (customer, PeriodPreview(period_rerate(customer=customer, at=at, apply=True)))
        for customer in customers
    ]


# --- which customers and periods a correction reaches -----------------------------------


def _affected(rate_card: RateCard, at: datetime) -> dict[Customer, list[tuple[datetime, datetime]]]:
    """Customers whose terms use the card at or after `at`, by external id, each with the
    periods [start, end) that hold their events from `at` on while on the card, oldest
    first (none when they have no such usage)."""
    rows = (
        ContractTerms.objects.filter(contract__customer__contracts__terms__rate_card=rate_card)
        .select_related("contract__customer")
        .order_by("contract__customer__external_id", "contract__starts_at", "number")
        .distinct()
    )
    by_contract: dict[Contract, list[ContractTerms]] = defaultdict(list)
    for terms in rows:
        by_contract[terms.contract].append(terms)
    spans: dict[Customer, list[tuple[datetime, datetime | None]]] = {}
    for contract, terms_rows in by_contract.items():
        for index, terms in enumerate(terms_rows):
            later = terms_rows[index + 1].effective_from if index + 1 < len(terms_rows) else None
            end = later or contract.ends_at
            if terms.rate_card_id == rate_card.pk and (end is None or end > at):
                spans.setdefault(contract.customer, []).append((max(terms.effective_from, at), end))
    return {customer: _periods_with_events(customer, found) for customer, found in spans.items()}


def _periods_with_events(
    customer: Customer, spans: list[tuple[datetime, datetime | None]]
) -> list[tuple[datetime, datetime]]:
    """The customer's periods holding an event in one of `spans`: from each event found to
    the end of its period, so empty periods cost nothing."""
    contracts = list(Contract.objects.filter(customer=customer))
    periods: dict[datetime, tuple[datetime, datetime]] = {}
    for start, end in spans:
        cursor = start
        while True:
            events = UsageEvent.objects.filter(customer=customer, timestamp__gte=cursor)
            if end is not None:
                events = events.filter(timestamp__lt=end)
            first = events.order_by("timestamp").values_list("timestamp", flat=True).first()
            if first is None:
                break
            period = period_holding(contracts, first)
            periods[period[0]] = period
            cursor = period[1]
    return [periods[start] for start in sorted(periods)]


# --- the preview ------------------------------------------------------------------------


def _previews(rate_card: RateCard, at: datetime) -> list[CustomerPreview]:
    now = timezone.now()
    previews = []
    for customer, periods in _affected(rate_card, at).items():
        diffs = [period_rerate(customer=customer, at=start) for start, _ in periods]
        credits = _credits_after(customer, diffs)
        shown = []
        for diff in diffs:
            closed = _closed(customer, diff.period_start)
            outcome = None
            if closed is not None:
                outcome = _closed_outcome(customer, closed, diff, credits[diff.period_start], now)
            shown.append(PeriodPreview(diff, outcome))
        previews.append(CustomerPreview(customer, shown))
    return previews


def _closed(customer: Customer, start: datetime) -> BillingPeriod | None:
    return (
        BillingPeriod.objects.filter(customer=customer, start=start)
        .select_related("invoice")
        .first()
    )


def _closed_outcome(
    customer: Customer,
    period: BillingPeriod,
    diff: RerateDiff,
    credits: CreditsState,
    now: datetime,
) -> ClosedPeriodOutcome:
    """What the next closing will do for the closed `period` once re-rated as `diff` says
    (closing's rule, `correction_foresee`), with `credits` its credits then."""
    foreseen = correction_foresee(
        draft=InvoiceDraft.scratch(customer, now, wallet_left(customer)),
        period=period,
        rollups=diff.new_rollups,
        credits=credits,
        at=now,
    )
    outcome = ClosedPeriodOutcome(
        invoice=period.invoice,
        billed_total=period.billed_total,
        total_after=foreseen.total,
        billed_credits=period.billed_credits,
        credits_after=foreseen.credits,
    )
    if foreseen.late is None:
        return outcome
    outcome.description = foreseen.late.description
    outcome.credit_note = foreseen.late.credit_note
    if outcome.credit_note:
        outcome.destination = refund_destination(period.invoice)
    outcome.lines = foreseen.lines
    if outcome.lines:
        outcome.next_invoice = _next_invoice(customer)
    return outcome


def _next_invoice(customer: Customer) -> str:
    """The invoice the next closing of the customer's periods makes, in words: that of
    their earliest period not closed yet, or a final invoice of corrections once every
    period of their contracts is closed."""
    closed = set(BillingPeriod.objects.filter(customer=customer).values_list("start", flat=True))
    candidates = []
    for contract in Contract.objects.filter(customer=customer):
        start, end = contract.period_bounds(contract.starts_at)
        while contract.ends_at is None or start < contract.ends_at:
            if start not in closed:
                candidates.append((start, end))
                break
            start, end = contract.period_bounds(end)
    if not candidates:
        return "a final invoice of corrections"
    start, end = min(candidates)
    return f"the invoice of {span_text(start, end)}"


def _credits_after(customer: Customer, diffs: list[RerateDiff]) -> dict[datetime, CreditsState]:
    """Each period's credits once re-rated, as the draw-down would reconcile
    them (`rating.draw_down`) with the wallet as it stands now, period after period: what
    re-rating took off goes back (the shortfall first), what it added is drawn as far as
    the credits go (and, where credits cover arrears, what was short is asked again).
    Without a wallet nothing is drawn or given back."""
    records = {
        record.period_start: record
        for record in UsageDrawDown.objects.filter(
            customer=customer, period_start__in=[diff.period_start for diff in diffs]
        )
    }
    wallet = Wallet.objects.filter(customer=customer, currency=customer.currency).first()
    available = wallet_left(customer)
    after = {}
    for diff in diffs:
        state = CreditsState.of(records.get(diff.period_start))
        if wallet is None or diff.new_charges is None:
            after[diff.period_start] = state
            continue
        drawn, short, settled = state.drawn, state.short, state.settled
        terms = contract_terms_at(customer_id=customer.pk, at=diff.period_end - _INSTANT)
        cover = terms is not None and terms.credits_cover_arrears
        move = credits_move(
            billable=diff.new_charges.billable,
            settled=settled,
            drawn=drawn,
            short=short,
            cover=cover,
        )
        available += move.refund
        got = min(move.ask, available)
        available -= got
        drawn, short = credits_moved(move, drawn=drawn, short=short, got=got, cover=cover)
        after[diff.period_start] = CreditsState(drawn, short, settled)
    return after


# --- results ------------------------------------------------------------------------------


def _result_of(correction: PriceCorrection) -> PriceCorrectionResult:
    """A correction's result, read while its versions exist (in the preview's transaction)."""
    made = list(correction.versions.order_by("number"))
    earlier = list(
        correction.rate_card.versions.filter(number__lt=made[0].number).order_by("number")
    )
    versions = []
    for version in made:
        started = [each for each in earlier if each.effective_from <= version.effective_from]
        source = max(started, key=lambda each: each.number)
        versions.append(VersionMade(version.number, version.effective_from, source.number))
    return PriceCorrectionResult(
        rate_card=correction.rate_card,
        price=correction.price_name,
        effective_from=correction.effective_from,
        rates=correction.rates,
        formula=correction.formula,
        reason=correction.reason,
        created_by=correction.created_by,
        versions=versions,
    )
