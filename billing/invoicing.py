"""Billing periods closed into invoices: the lines, the closing, the preview, late usage.

A contract's period is open until its end, in grace for TOKENTILL_PERIOD_GRACE_HOURS after
it (late events still land in it), then closed by `periods_close_due` (beat) into a
finalized invoice. Closing reads the period's rollups, never its events.

The lines, in order (each rounded once, half up, to the currency's minor unit; the total
is their sum; pricing.money):

1. fixed fees, one per terms segment, prorated;
2. usage, one per price and terms (so per rate card version), with its events, their
   time span and an exact unit price where the amount divides evenly, else quantity 1;
3. discounts, one per terms segment that has one;
4. the included allowance used (pooled over the period);
5. the minimum-commitment true-up;
6. late usage: for each earlier period of the customer already closed, what its usage
   came to since it was billed (events rated into it late, or re-rated), as the difference
   of its total; a difference below zero is a credit note on that period's invoice (to
   Stripe when the invoice is there, else to the wallet as credits);
7. prepaid credits applied: what the wallet paid for this period's usage (and the late
   usage), drawn in real time as it was rated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.tasks import PUSH_INVOICE, task_send_on_commit
from contracts.models import Contract, Customer
from pricing.cycles import span_text
from pricing.money import money_round, plain, unit_price_of
from wallets.models import CreditGrant
from wallets.services import credit_grant

from .models import (
    BillingPeriod,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    UsageDrawDown,
    UsageRollup,
)
from .services import usage_rate_pending

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

    def __post_init__(self):
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
    late: list[tuple[BillingPeriod, Decimal, Decimal, int]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        currency = self.customer.currency
        return sum((line.amount(currency) for line in self.lines), _ZERO)


def invoice_draft(
    *, customer: Customer, start: datetime, end: datetime, at: datetime
) -> InvoiceDraft:
    """The invoice the period [start, end) produces with what is rated at `at`: the
    closing's lines and the preview's."""
    from .selectors import period_money, period_rollups  # selectors read services' rows

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
    draft.lines.extend(_usage_lines(rollups, amounts, spans, start, end, at))
    for index, (segment, terms) in enumerate(spans):
        if charges.discounts[index]:
            percent = plain(terms.discount_percent)
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.DISCOUNT,
                    f"Discount {percent} %, {span_text(segment.start, segment.end)}",
                    start,
                    end,
                    -charges.discounts[index],
                    terms_id=terms.pk,
                )
            )
    if charges.allowance_used:
        included = sum(charges.allowances, _ZERO)
        draft.lines.append(
            DraftLine(
                InvoiceLine.Kind.ALLOWANCE,
                f"Included allowance used ({plain(charges.allowance_used)} of {plain(included)})",
                start,
                end,
                -charges.allowance_used,
            )
        )
    if charges.minimum_true_up:
        draft.lines.append(
            DraftLine(
                InvoiceLine.Kind.MINIMUM,
                f"Minimum commitment true-up (minimum {plain(sum(charges.minimums, _ZERO))})",
                start,
                end,
                charges.minimum_true_up,
            )
        )
    draft.period_total = charges.total
    draft.period_events = sum(rollup.event_count for rollup in rollups)
    draft.period_credits = _drawn(customer, start)
    credits = [(start, end, draft.period_credits)]
    for period, delta, credit_delta, events in _late_usage(customer, at):
        draft.late.append((period, delta, credit_delta, events))
        if delta > 0:
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.LATE_USAGE,
                    f"Late usage for {span_text(period.start, period.end)} ({events:+,} events)",
                    period.start,
                    period.end,
                    delta,
                    event_count=max(events, 0),
                    rated_after=period.billed_until,
                    rated_until=at,
                )
            )
        credits.append((period.start, period.end, credit_delta))
    for period_start, period_end, drawn in credits:
        if drawn:
            # Below zero when re-rating lowered an invoiced period and the wallet got the
            # credits back: they were taken off that invoice, so they are billed again.
            what = "applied to" if drawn > 0 else "returned to the wallet for"
            draft.lines.append(
                DraftLine(
                    InvoiceLine.Kind.CREDITS,
                    f"Prepaid credits {what} {span_text(period_start, period_end)}",
                    period_start,
                    period_end,
                    -drawn,
                )
            )
    return draft


def period_close(
    *, contract: Contract, start: datetime, end: datetime, now: datetime | None = None
) -> Invoice:
    """Close the contract's period [start, end) into a finalized invoice, once: closing it
    again (a task run twice, or two workers at once) returns the invoice it produced."""
    return _period_close(contract, start, end, now or timezone.now())[0]


def _period_close(
    contract: Contract, start: datetime, end: datetime, now: datetime
) -> tuple[Invoice, bool]:
    """period_close, and whether this call closed it (False: it was closed already)."""
    customer = contract.customer
    with transaction.atomic():
        Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
        closed = BillingPeriod.objects.filter(customer=customer, start=start).first()
        if closed is not None:
            return closed.invoice, False
        # The period's draw-down record: raters drawing for it have committed by now.
        list(
            UsageDrawDown.objects.select_for_update().filter(customer=customer, period_start=start)
        )
        draft = invoice_draft(customer=customer, start=start, end=end, at=now)
        invoice = _invoice_store(draft, now)
        BillingPeriod.objects.create(
            customer=customer,
            contract=contract,
            start=start,
            end=end,
            closed_at=now,
            invoice=invoice,
            billed_total=draft.period_total,
            billed_credits=draft.period_credits,
            billed_events=draft.period_events,
            billed_until=now,
        )
        task_send_on_commit(PUSH_INVOICE, invoice.pk)
        for period, delta, credit_delta, events in draft.late:
            if delta < 0:
                credit_note_create(
                    invoice=period.invoice,
                    amount=-delta,
                    reason=CreditNote.Reason.RERATING,
                    memo=f"Usage of {span_text(period.start, period.end)} re-rated lower",
                    destination=_refund_destination(period.invoice),
                    now=now,
                )
            BillingPeriod.objects.filter(pk=period.pk).update(
                billed_total=period.billed_total + delta,
                billed_credits=period.billed_credits + credit_delta,
                billed_events=period.billed_events + events,
                billed_until=now,
            )
    return invoice, True


def periods_due(*, now: datetime) -> list[tuple[Contract, datetime, datetime]]:
    """Every contract period whose grace has passed and that is not closed yet, oldest
    first: from the end of each contract's last closed period (or its first period) on."""
    grace = timedelta(hours=settings.TOKENTILL_PERIOD_GRACE_HOURS)
    last_closed = defaultdict(lambda: None)
    for contract_id, end in BillingPeriod.objects.order_by("end").values_list("contract_id", "end"):
        last_closed[contract_id] = end
    due = []
    for contract in Contract.objects.select_related("customer").filter(starts_at__lt=now):
        cursor = last_closed[contract.pk] or contract.period_bounds(contract.starts_at)[0]
        while True:
            start, end = contract.period_bounds(cursor)
            if end + grace > now or (contract.ends_at and start >= contract.ends_at):
                break
            due.append((contract, start, end))
            cursor = end
    return sorted(due, key=lambda item: (item[1], item[0].pk))


def periods_close_due(*, now: datetime | None = None) -> int:
    """Close every period due (beat); rates what is queued first, so usage that arrived
    before the grace ended is in its period's invoice. Safe to run twice or at once."""
    now = now or timezone.now()
    usage_rate_pending()
    closed = 0
    for contract, start, end in periods_due(now=now):
        closed += _period_close(contract, start, end, now)[1]
    return closed


def credit_note_create(
    *,
    invoice: Invoice,
    amount: Decimal,
    reason: str,
    memo: str = "",
    destination: str = CreditNote.Destination.WALLET,
    created_by: str = "",
    now: datetime | None = None,
) -> CreditNote:
    """Credit a finalized invoice without editing it: numbered from the credit-note
    sequence, rounded once like a line; credited to the customer's wallet as a refund
    grant (destination wallet), or recorded for Stripe or only."""
    now = now or timezone.now()
    currency = invoice.currency
    with transaction.atomic():
        note = CreditNote.objects.create(
            invoice=invoice,
            number=_next_number("credit-notes", settings.TOKENTILL_CREDIT_NOTE_PREFIX),
            reason=reason,
            memo=memo,
            destination=destination,
            exact_amount=amount,
            amount=money_round(amount, currency),
            created_by=created_by,
            created_at=now,
        )
        if destination == CreditNote.Destination.WALLET and note.amount > 0:
            credit_grant(
                customer=invoice.customer,
                amount=note.amount,
                currency=currency,
                source=CreditGrant.Source.REFUND,
                reason=f"credit note {note.number} on {invoice.number}",
                created_by=created_by,
            )
    return note


# --- helpers -------------------------------------------------------------------------------


def _usage_lines(rollups, amounts, spans, start, end, at) -> list[DraftLine]:
    """One line per price and terms, in time order of the terms, then by name."""
    order = {terms.pk: index for index, (_, terms) in enumerate(spans) if terms}
    groups: dict[tuple, list[UsageRollup]] = defaultdict(list)
    for rollup in rollups:
        if rollup.status == UsageRollup.Status.RATED:
            groups[(rollup.price_id, rollup.terms_id)].append(rollup)
    lines = []
    for (price_id, terms_id), members in sorted(
        groups.items(),
        key=lambda item: (order[item[0][1]], item[1][0].line, item[1][0].price.version.number),
    ):
        price, terms = members[0].price, members[0].terms
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


def _late_usage(customer: Customer, at: datetime):
    """(closed period, usage since billed, credits drawn since billed, events since billed)
    for each closed period of the customer whose usage changed after it was billed."""
    from .selectors import period_money, period_rollups

    periods = list(
        BillingPeriod.objects.filter(customer=customer).select_related("invoice").order_by("start")
    )
    if not periods:
        return []
    since = min(period.billed_until for period in periods)
    touched = set(
        UsageRollup.objects.filter(
            customer=customer,
            period_start__in=[period.start for period in periods],
            updated_at__gte=since,
        ).values_list("period_start", flat=True)
    ) | set(
        UsageDrawDown.objects.filter(
            customer=customer,
            period_start__in=[period.start for period in periods],
            updated_at__gte=since,
        ).values_list("period_start", flat=True)
    )
    late = []
    for period in periods:
        if period.start not in touched:
            continue
        rollups = period_rollups(customer_id=customer.pk, start=period.start)
        charges = period_money(
            customer=customer, start=period.start, end=period.end, rollups=rollups
        )[2]
        delta = charges.total - period.billed_total
        credit_delta = _drawn(customer, period.start) - period.billed_credits
        events = sum(rollup.event_count for rollup in rollups) - period.billed_events
        if delta or credit_delta or events:
            late.append((period, delta, credit_delta, events))
    return late


def _refund_destination(invoice: Invoice) -> str:
    """Where a credit note closing issues goes: to Stripe against the invoice when the
    invoice is there (the customer pays through Stripe), else to the wallet as credits."""
    if invoice.stripe_id:
        return CreditNote.Destination.STRIPE
    return CreditNote.Destination.WALLET


def _drawn(customer: Customer, start: datetime) -> Decimal:
    record = UsageDrawDown.objects.filter(customer=customer, period_start=start).first()
    return record.drawn if record else _ZERO


def _invoice_store(draft: InvoiceDraft, now: datetime) -> Invoice:
    """Store the draft as a finalized invoice numbered from the invoice sequence (taken
    last, under its lock, so the number is held as briefly as possible)."""
    customer, currency = draft.customer, draft.customer.currency
    total = draft.total
    invoice = Invoice.objects.create(
        customer=customer,
        currency=currency,
        status=Invoice.Status.PAID if total == 0 else Invoice.Status.FINALIZED,
        period_start=draft.period_start,
        period_end=draft.period_end,
        total=total,
        created_at=now,
        finalized_at=now,
        paid_at=now if total == 0 else None,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            kind=line.kind,
            description=line.description[:300],
            period_start=line.period_start,
            period_end=line.period_end,
            quantity=line.quantity,
            unit_price=line.unit_price,
            exact_amount=line.exact_amount,
            amount=line.amount(currency),
            price_id=line.price_id,
            terms_id=line.terms_id,
            event_count=line.event_count,
            first_event_at=line.first_event_at,
            last_event_at=line.last_event_at,
            rated_after=line.rated_after,
            rated_until=line.rated_until,
        )
        for position, line in enumerate(draft.lines, start=1)
    )
    invoice.number = _next_number("invoices", settings.TOKENTILL_INVOICE_PREFIX)
    invoice.save(update_fields=["number"])
    return invoice


def _next_number(name: str, prefix: str) -> str:
    """The sequence's next number, taken under its row lock in the caller's transaction."""
    InvoiceSequence.objects.get_or_create(name=name, defaults={"prefix": prefix})
    sequence = InvoiceSequence.objects.select_for_update().get(name=name)
    number = sequence.next_number
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=number + 1)
    return f"{sequence.prefix}{number:06d}"


def _terms_label(terms) -> str:
    return "terms" if terms.number == 1 else f"amendment {terms.number - 1}"
