"""Billing periods closed into finalized invoices, once, on the schedule.

A contract's period is open until its end, in grace for TOKENTILL_PERIOD_GRACE_HOURS after
it (late events still land in it), then closed by `periods_close_due` (beat) into a
finalized invoice numbered without gaps: its draft (`draft`) stored as it is. Closing
reads the period's rollups, never its events; closing again changes nothing. Usage of
earlier closed periods that changed since they were billed is billed on this invoice
(late usage) or, when it went down, credited on theirs by a credit note (`late`). The
credits each invoice applies are settled in the wallet to the minor unit as it is made.
"""

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Value
from django.utils import timezone

from common.tasks import PUSH_INVOICE, task_send_on_commit
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
        _push_on_commit(invoice)
        _credits_settle(draft, invoice)
        _corrections_apply(draft, now)
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


def corrections_close_due(*, now: datetime) -> int:
    """Bill the corrections of customers whose contracts have all ended and whose every
    period is closed: a final invoice of correction lines (and the credit notes of what is
    owed back), once the latest change to their closed periods is older than the grace,
    so changes arriving together are billed together. How many customers were billed."""
    grace = timedelta(hours=settings.TOKENTILL_PERIOD_GRACE_HOURS)
    closed_ends = defaultdict(set)
    for contract_id, end in BillingPeriod.objects.values_list("contract_id", "end"):
        closed_ends[contract_id].add(end)
    contracts_by_customer: dict[int, list[Contract]] = defaultdict(list)
    for contract in Contract.objects.select_related("customer"):
        contracts_by_customer[contract.customer_id].append(contract)
    billed = 0
    for contracts in contracts_by_customer.values():
        if not all(
            contract.ends_at is not None
            and contract.ends_at <= now
            and contract.period_bounds(contract.ends_at - timedelta(microseconds=1))[1]
            in closed_ends[contract.pk]
            for contract in contracts
        ):
            continue
        customer = contracts[0].customer
        with transaction.atomic():
            Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
            _credits_lock(customer)
            draft = corrections_draft(customer=customer, at=now)
            if draft is None or any(
                late.changed_at and now - late.changed_at < grace for late in draft.late
            ):
                continue
            invoice = None
            if draft.lines:
                invoice = _invoice_store(draft, now)
                _push_on_commit(invoice)
            _credits_settle(draft, invoice)
            _corrections_apply(draft, now)
            billed += bool(draft.late)
    return billed


class DuePeriod(NamedTuple):
    """A contract's period [start, end) that is due to close."""

    contract: Contract
    start: datetime
    end: datetime


def periods_due(*, now: datetime) -> list[DuePeriod]:
    """Every contract period whose grace has passed and that is not closed yet, oldest
    first: from the end of each contract's last closed period (or its first period) on."""
    grace = timedelta(hours=settings.TOKENTILL_PERIOD_GRACE_HOURS)
    last_closed: dict[int, datetime | None] = defaultdict(lambda: None)
    for contract_id, end in BillingPeriod.objects.order_by("end").values_list("contract_id", "end"):
        last_closed[contract_id] = end
    due: list[DuePeriod] = []
    for contract in Contract.objects.select_related("customer").filter(starts_at__lt=now):
        cursor = last_closed[contract.pk] or contract.period_bounds(contract.starts_at)[0]
        while True:
            start, end = contract.period_bounds(cursor)
            if end + grace > now or (contract.ends_at and start >= contract.ends_at):
                break
            due.append(DuePeriod(contract, start, end))
            cursor = end
    return sorted(due, key=lambda period: (period.start, period.contract.pk))


def periods_close_due(*, now: datetime | None = None) -> int:
    """Close every period due (beat), then bill the corrections of customers whose
    contracts have all ended; rates what is queued first, so usage that arrived before the
    grace ended is in its period's invoice. How many invoices (or credit notes alone) it
    made. Safe to run twice or at once."""
    now = now or timezone.now()
    usage_rate_pending()
    closed = 0
    for contract, start, end in periods_due(now=now):
        closed += _period_close(contract, start, end, now)[1]
    return closed + corrections_close_due(now=now)


def _push_on_commit(invoice: Invoice) -> None:
    """Push the invoice to Stripe once it is committed, when Stripe is on (beat's sweep
    pushes what was made while it was off, once it is on)."""
    if settings.STRIPE_API_KEY:
        task_send_on_commit(PUSH_INVOICE, invoice.pk)


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
        )
        for position, line in enumerate(draft.lines, start=1)
    )
    _billed_events_record(invoice)
    invoice.number = number_next("invoices", settings.TOKENTILL_INVOICE_PREFIX)
    invoice.save(update_fields=["number"])
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
