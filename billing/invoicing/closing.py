"""Billing periods closed into finalized invoices, once, on the schedule or when asked.

A contract's period is open until its end, in grace for TOKENTILL_PERIOD_GRACE_HOURS after
it (late events still land in it), then due, and closed by `periods_close` (beat, the
close_periods command and the API alike) into a finalized invoice numbered without gaps:
its draft (`draft`) stored as it is. Closing reads the period's rollups, never its
events; closing again changes nothing. Usage of earlier closed periods that changed since
they were billed is billed on this invoice (late usage) or, when it went down, credited
on theirs by a credit note (`late`). The credits each invoice applies are settled in the
wallet to the minor unit as it is made. A closing someone asked for (the command, the
API) is recorded in the audit trail; beat's is not.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, QuerySet, Value
from django.utils import timezone

from common.audit import audit_record, snapshot
from common.tasks import EMAIL_INVOICE, PUSH_INVOICE, task_send_on_commit
from contracts.models import Contract, Customer
from wallets.models import Wallet
from wallets.services import credits_give_back, wallet_draw_down, wallet_get_or_create

from ..models import (
    BilledEvent,
    BillingPeriod,
    CreditNote,
    Invoice,
    InvoiceLine,
    RatedEvent,
    UsageDrawDown,
    UsageRollup,
)
from ..rating.rater import usage_rate_pending
from ..selectors import LINES_WITH_EVENTS
from ..webhook_events import invoice_event_emit
from .credit_notes import credit_note_create, refund_destination
from .draft import corrections_draft, invoice_draft
from .lines import InvoiceDraft
from .numbers import number_next


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
        _credits_lock(customer)
        draft = invoice_draft(customer=customer, start=start, end=end, at=now)
        invoice = _invoice_store(draft, now, contract)
        period = BillingPeriod.objects.create(
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
        _deliver_on_commit(invoice)
        _credits_settle(draft, invoice)
        _corrections_apply(draft, now)
        audit_record(
            "billing_period.close",
            period,
            after={**snapshot(period), "invoice_number": invoice.number},
            customer=customer.external_id,
        )
    return invoice, True


def _credits_lock(customer: Customer) -> None:
    """Lock the customer's draw-down records, in period order as draw-down passes take them
    (so raters drawing for them have committed by now), then their wallet: what closing
    settles is drawn from what the draft saw."""
    list(
        UsageDrawDown.objects.select_for_update()
        .filter(customer=customer)
        .order_by("period_start")
        .values_list("pk", flat=True)
    )
    list(Wallet.objects.select_for_update().filter(customer=customer).values_list("pk", flat=True))


def _credits_settle(draft: InvoiceDraft, invoice: Invoice | None) -> None:
    """Draw or give back what the draft settles of each period's credits, with ledger
    entries that say so, and keep it on the period's record (`UsageDrawDown.settled`) so
    later draws do not undo it (`pricing.credits`, rule 4)."""
    customer = draft.customer
    for start, amount in sorted(draft.settlements.items()):
        reference = f"usage {start:%Y-%m-%d}"
        reason = "rounding to the minor unit of the credits " + (
            f"applied on {invoice.number}" if invoice else "applied"
        )
        wallet = wallet_get_or_create(customer=customer)
        if amount > 0:
            wallet_draw_down(
                wallet=wallet, amount=amount, reference=reference, reason=reason, partial=False
            )
        else:
            credits_give_back(wallet=wallet, amount=-amount, reason=reason)
        record, _ = UsageDrawDown.objects.get_or_create(customer=customer, period_start=start)
        UsageDrawDown.objects.filter(pk=record.pk).update(
            drawn=F("drawn") + amount, settled=F("settled") + amount
        )


def _corrections_apply(draft: InvoiceDraft, now: datetime) -> None:
    """Issue the draft's credit notes for closed periods and record what each period has
    now been billed, so no correction is made twice."""
    for late in draft.late:
        period = late.period
        if late.credit_note:
            credit_note_create(
                invoice=period.invoice,
                amount=late.credit_note,
                reason=CreditNote.Reason.RERATING,
                memo=late.description,
                destination=refund_destination(period.invoice),
                now=now,
            )
        BillingPeriod.objects.filter(pk=period.pk).update(
            billed_total=period.billed_total + late.delta,
            billed_credits=period.billed_credits + late.credit_delta,
            billed_events=period.billed_events + late.events,
            billed_until=now,
        )


def corrections_close_due(
    *, now: datetime, customer: Customer | None = None
) -> list[Invoice | None]:
    """Bill the corrections of customers (all, or `customer`) whose contracts have all
    ended and whose every period is closed: a final invoice of correction lines (and the
    credit notes of what is owed back), once the latest change to their closed periods is
    older than the grace, so changes arriving together are billed together. For each
    customer billed, its final invoice, or None when credit notes alone were owed."""
    grace = _grace()
    closed_ends = defaultdict(set)
    closed = BillingPeriod.objects.all() if customer is None else _closed_of(customer)
    for contract_id, end in closed.values_list("contract_id", "end"):
        closed_ends[contract_id].add(end)
    contracts_by_customer: dict[int, list[Contract]] = defaultdict(list)
    every = Contract.objects.select_related("customer")
    for contract in every if customer is None else every.filter(customer=customer):
        contracts_by_customer[contract.customer_id].append(contract)
    billed: list[Invoice | None] = []
    for contracts in contracts_by_customer.values():
        if not all(
            contract.ends_at is not None
            and contract.ends_at <= now
            and contract.period_bounds(contract.ends_at - timedelta(microseconds=1))[1]
            in closed_ends[contract.pk]
            for contract in contracts
        ):
            continue
        billing = contracts[0].customer
        with transaction.atomic():
            Customer.objects.select_for_update(no_key=True).get(pk=billing.pk)
            _credits_lock(billing)
            draft = corrections_draft(customer=billing, at=now)
            if draft is None or any(
                late.changed_at and now - late.changed_at < grace for late in draft.late
            ):
                continue
            invoice = None
            if draft.lines:
                latest = max(contracts, key=lambda contract: contract.starts_at)
                invoice = _invoice_store(draft, now, latest)
                _deliver_on_commit(invoice)
                why = "corrections of closed periods, the contracts ended"
                audit_record("invoice.create", invoice, customer=billing.external_id, reason=why)
            _credits_settle(draft, invoice)
            _corrections_apply(draft, now)
            if draft.late:
                billed.append(invoice)
    return billed


class DuePeriod(NamedTuple):
    """A contract's period [start, end) that is due to close."""

    contract: Contract
    start: datetime
    end: datetime


def periods_due(*, now: datetime, customer: Customer | None = None) -> list[DuePeriod]:
    """Every contract period (of all customers, or `customer`'s) whose grace has passed
    and that is not closed yet, oldest first: from the end of each contract's last closed
    period (or its first period) on."""
    grace = _grace()
    last_closed: dict[int, datetime | None] = defaultdict(lambda: None)
    closed = BillingPeriod.objects.all() if customer is None else _closed_of(customer)
    for contract_id, end in closed.order_by("end").values_list("contract_id", "end"):
        last_closed[contract_id] = end
    contracts = Contract.objects.select_related("customer").filter(starts_at__lt=now)
    due: list[DuePeriod] = []
    for contract in contracts if customer is None else contracts.filter(customer=customer):
        cursor = last_closed[contract.pk] or contract.period_bounds(contract.starts_at)[0]
        for start, end in _periods_from(contract, cursor):
            if end + grace > now:
                break
            due.append(DuePeriod(contract, start, end))
    return sorted(due, key=lambda period: (period.start, period.contract.pk))


class PeriodStatus:
    """Where a contract's period stands: `open` until its end, `in_grace` for
    TOKENTILL_PERIOD_GRACE_HOURS after it (late events still land in it), then `due` until
    closing closes it (`closed`, with its invoice)."""

    OPEN, IN_GRACE, DUE, CLOSED = "open", "in_grace", "due", "closed"
    ALL = (OPEN, IN_GRACE, DUE, CLOSED)


@dataclass(frozen=True)
class PeriodState:
    """A contract's period [start, end) at an instant: its status, when it is due to close
    (`due_at`: its end plus the grace) and, once closed, its record (with the invoice and
    what it billed)."""

    contract: Contract
    start: datetime
    end: datetime
    status: str
    due_at: datetime
    closed: BillingPeriod | None


def periods_of(*, customer: Customer, now: datetime) -> list[PeriodState]:
    """The customer's periods from their first contract's first up to the one holding
    `now`, newest first, each with its status as closing sees it then."""
    grace = _grace()
    closed = {
        period.start: period
        for period in _closed_of(customer).select_related("contract__customer", "invoice")
    }
    states = {
        start: PeriodState(
            period.contract, start, period.end, PeriodStatus.CLOSED, period.end + grace, period
        )
        for start, period in closed.items()
    }
    for contract in Contract.objects.filter(customer=customer, starts_at__lt=now):
        contract.customer = customer
        for start, end in _periods_from(contract, contract.period_bounds(contract.starts_at)[0]):
            if start > now:
                break
            if start not in states:
                status = _status_unclosed(end, grace, now)
                states[start] = PeriodState(contract, start, end, status, end + grace, None)
    return [states[start] for start in sorted(states, reverse=True)]


def _status_unclosed(end: datetime, grace: timedelta, now: datetime) -> str:
    if now < end:
        return PeriodStatus.OPEN
    return PeriodStatus.IN_GRACE if now < end + grace else PeriodStatus.DUE


def _periods_from(contract: Contract, cursor: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The contract's periods from the one holding `cursor` on, until the contract ends
    (without end for an open-ended one: the caller stops)."""
    while True:
        start, end = contract.period_bounds(cursor)
        if contract.ends_at and start >= contract.ends_at:
            return
        yield start, end
        cursor = end


def _grace() -> timedelta:
    return timedelta(hours=settings.TOKENTILL_PERIOD_GRACE_HOURS)


def _closed_of(customer: Customer) -> QuerySet[BillingPeriod]:
    return BillingPeriod.objects.filter(customer=customer)


@dataclass(frozen=True)
class ClosingRun:
    """What a closing run made: its invoices in the order it made them (the due periods',
    oldest first, then the final invoices of corrections), and how many periods it closed
    and customers' corrections it billed once their contracts ended (by a final invoice,
    or credit notes alone)."""

    invoices: list[Invoice]
    periods: int
    corrections: int

    @property
    def count(self) -> int:
        return self.periods + self.corrections


def periods_close(*, now: datetime | None = None, customer: Customer | None = None) -> ClosingRun:
    """Close every period due (of all customers, or `customer`'s), then bill the
    corrections of customers whose contracts have all ended; rates what is queued first,
    so usage that arrived before the grace ended is in its period's invoice. Beat's
    periodic closing, the close_periods command and the API all run this. Safe to run
    twice or at once: a period closed already makes nothing more."""
    now = now or timezone.now()
    usage_rate_pending()
    invoices = []
    for contract, start, end in periods_due(now=now, customer=customer):
        invoice, closed = _period_close(contract, start, end, now)
        if closed:
            invoices.append(invoice)
    corrected = corrections_close_due(now=now, customer=customer)
    finals = [invoice for invoice in corrected if invoice is not None]
    return ClosingRun(invoices + finals, periods=len(invoices), corrections=len(corrected))


def periods_close_due(*, now: datetime | None = None) -> int:
    """periods_close for every customer: how many periods it closed and customers'
    corrections it billed."""
    return periods_close(now=now).count


def _deliver_on_commit(invoice: Invoice) -> None:
    """Once the invoice is committed: push it to Stripe when Stripe is on (beat's sweep
    pushes what was made while it was off, once it is on), which sends it to the customer;
    else email it to the customer's billing email with its PDF (`emailing`)."""
    if settings.STRIPE_API_KEY:
        task_send_on_commit(PUSH_INVOICE, invoice.pk)
    else:
        task_send_on_commit(EMAIL_INVOICE, invoice.pk)


def invoice_due_at(*, contract: Contract | None, issued_at: datetime) -> datetime:
    """When an invoice issued at `issued_at` under `contract` falls due: the contract's
    payment terms in days (`payment_terms_days`), else TOKENTILL_PAYMENT_TERMS_DAYS, after
    its issue; 0 is due on receipt."""
    days = contract.payment_terms_days if contract is not None else None
    if days is None:
        days = settings.TOKENTILL_PAYMENT_TERMS_DAYS
    return issued_at + timedelta(days=days)


def _invoice_store(draft: InvoiceDraft, now: datetime, contract: Contract | None) -> Invoice:
    """Store the draft as a finalized invoice numbered from the invoice sequence (taken
    last, under its lock, so the number is held as briefly as possible), due after the
    payment terms of `contract` (the contract in force for the period), with its webhook
    events: invoice.finalized, and invoice.paid too for a total of 0."""
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
        due_at=invoice_due_at(contract=contract, issued_at=now),
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
            unit_price=cast(Decimal, line.unit_price),  # set by DraftLine.__post_init__
            exact_amount=line.exact_amount,
            amount=line.amount(currency),
            price_id=line.price_id,
            terms_id=line.terms_id,
            event_count=line.event_count,
            first_event_at=line.first_event_at,
            last_event_at=line.last_event_at,
            rated_after=line.rated_after,
            rated_until=line.rated_until,
            details=line.details,
        )
        for position, line in enumerate(draft.lines, start=1)
    )
    _billed_events_record(invoice)
    invoice.number = number_next("invoices", settings.TOKENTILL_INVOICE_PREFIX)
    invoice.save(update_fields=["number"])
    invoice_event_emit(invoice_id=invoice.pk, event_type="invoice.finalized")
    if invoice.status == Invoice.Status.PAID:  # a total of 0: nothing to collect
        invoice_event_emit(invoice_id=invoice.pk, event_type="invoice.paid")
    return invoice


def _billed_events_record(invoice: Invoice) -> None:
    """Record the events each usage line bills, with what they were rated at: the rated
    events of its period (and price and terms) rated in its window [`rated_after`,
    `rated_until`]. One INSERT ... SELECT a line, so no event is held in memory."""
    table = BilledEvent._meta.db_table
    for line in invoice.lines.filter(kind__in=LINES_WITH_EVENTS):
        rated = RatedEvent.objects.filter(
            rollup__customer_id=invoice.customer_id,
            rollup__period_start=line.period_start,
            rollup__status=UsageRollup.Status.RATED,
        )
        if line.price_id:
            rated = rated.filter(rollup__price_id=line.price_id, rollup__terms_id=line.terms_id)
        if line.rated_after:
            rated = rated.filter(rated_at__gt=line.rated_after)
        if line.rated_until:
            rated = rated.filter(rated_at__lte=line.rated_until)
        # The line's id is selected last: Django puts annotations after the columns.
        select, params = (
            rated.annotate(line_pk=Value(line.pk, output_field=BigIntegerField()))
            .values_list("event_id", "amount", "quantity", "rated_at", "line_pk")
            .order_by()
            .query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (event_id, amount, quantity, rated_at, line_id) {select}",
                params,
            )
