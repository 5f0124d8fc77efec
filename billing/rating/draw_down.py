"""Credits drawn for rated usage: each period's billable usage, less what credits already
paid or could not cover, drawn from the customer's wallet between rating batches.

Rating queues every period a batch touches (`DrawDownDue`) in its own transaction; the
draw-down pass takes them off that queue, draws each period once however many batches
touched it, checks the period's budget alerts, then settles the holds of the period's calls
rated since, each at what it added to the period's billable usage.
Drawing is a reconciliation, so a period drawn twice draws nothing more. Each batch queues
its periods in rows of its own, which no pass takes before the batch commits
(`store.draw_downs_queue`): a period whose usage a batch changes after a pass read it is
always drawn again.
"""

import copy
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from contracts.models import Customer
from pricing.credits import credits_move, credits_moved
from pricing.rating import RatingError, calls_billable
from wallets.alerts import alerts_check_usage
from wallets.models import Wallet
from wallets.selectors import customers_with_budget
from wallets.services import (
    DrawDownAsk,
    credits_give_back,
    holds_settle,
    wallet_get_or_create,
    wallets_draw_down,
    wallets_lock,
)

from ..models import HoldSettlement, UsageDrawDown, UsageRollup
from ..periods import PeriodMoney, period_money, periods_rollups
from .store import (
    draw_down_records_create,
    draw_down_records_save,
    draw_downs_queue,
    draw_downs_take,
    pg_array,
)

logger = logging.getLogger(__name__)


_ZERO = Decimal(0)


def usage_draw_down_pending(*, chunk: int = 200) -> int:
    """Draw the credits for the periods whose usage was rated since (the draw-down queue),
    settling the holds of their calls; return how many periods.

    Rating queues each period it touches in its own transaction, so a period is drawn
    once per pass however many batches touched it, and a crash between the two loses
    nothing: the queue row is still there. Any number of passes may run at once (rows are
    taken with SKIP LOCKED on PostgreSQL), and drawing is a reconciliation (billable usage
    less what was drawn or short), so drawing a period twice draws nothing more. A period
    whose drawing fails is logged and queued again for the next pass (its holds stay
    held); it never stops the others.
    """
    return _draw_down(chunk, deadline=None)[0]


def usage_draw_down_slice(
    *, seconds: float, chunk: int = 200, until: Callable[[], bool] | None = None
) -> bool:
    """`usage_draw_down_pending` for about `seconds`: it stops after the chunk that ends
    past them, or after the first chunk at which `until()` is true, and leaves the rest
    queued, so a rater gets back to its queue. Whether the pass ran out of periods (those
    that failed are queued again all the same)."""
    return _draw_down(chunk, deadline=time.monotonic() + seconds, until=until)[1]


def _draw_down(
    chunk: int, *, deadline: float | None, until: Callable[[], bool] | None = None
) -> tuple[int, bool]:
    """Chunk after chunk until the queue is empty, `deadline` passes or `until()` is true:
    how many periods, and whether the queue ran out."""
    done, failed, emptied = 0, set(), False
    while True:
        with transaction.atomic():
            periods = set(draw_downs_take(chunk))
            if not periods:
                emptied = True
                break
            failed |= _draw_downs_apply(periods)
        done += len(periods)
        if deadline is not None and time.monotonic() >= deadline:
            break
        if until is not None and until():
            break
    draw_downs_queue(failed)
    return done, emptied


def _draw_downs_apply(periods: set[tuple[int, datetime]]) -> set[tuple[int, datetime]]:
    """Draw for the periods together; if that fails, one by one, and return those that
    failed (each in a savepoint, so what the others drew stands)."""
    try:
        with transaction.atomic():
            _usage_draw_down(periods)
        return set()
    except Exception:
        failed = set()
        for period in sorted(periods):
            try:
                with transaction.atomic():
                    _usage_draw_down({period})
            except Exception:
                logger.exception(
                    "drawing credits for customer %s, period %s failed; queued again", *period
                )
                failed.add(period)
        return failed


def _usage_draw_down(periods: set[tuple[int, datetime]]) -> None:
    """Draw each touched period's new billable usage from the customer's credits.

    Billable usage is the period's usage after discount beyond its included allowance,
    worked out from the rollups (so tiers, discounts and the pooled allowance count as on
    the invoice); what the credits already paid or could not cover is subtracted, and the
    rest is drawn, or, when re-rating lowered it, given back (the shortfall first, then a
    refund grant). Where the period's latest terms say credits cover arrears, what the
    credits could not cover before is asked of them again, so credits granted since pay
    for it. In the rating transaction: exactly once, like the rating itself. Customers
    without a wallet are not drawn; their first credits pay for the open period's usage
    from its start. The period's usage (after discount) is checked against the
    customer's budget alerts here too, with or without a wallet. Last, the holds of the
    period's calls rated since are settled, each at what it added to the billable usage.

    The periods are drawn together, in a few statements whatever their number: their
    records locked in (customer, start) order, then every period's rollups read at once,
    then the wallets locked in id order, then every draw-down made together
    (`wallets_draw_down`) and the records saved together (docs/development/architecture.md,
    "The draw-down pass over many customers").
    """
    customer_ids = {customer for customer, _ in periods}
    with_wallets = set(
        Wallet.objects.filter(customer_id__in=customer_ids).values_list("customer_id", flat=True)
    )
    budgeted = customers_with_budget(customer_ids=customer_ids)
    watched = with_wallets | budgeted
    # Read before the rollups: a call read here is counted in the rollups read below.
    settling = _calls_rated(customer_ids)
    for customer_id, period_start in sorted(periods):
        if customer_id not in with_wallets:
            # No wallet, so no hold of theirs: a call of theirs carried another's hold.
            _settlements_forget(settling.get((customer_id, period_start), []))
    drawn = sorted(period for period in periods if period[0] in watched)
    if not drawn:
        return
    # The records' locks first, in (customer, start) order: two passes never draw one
    # period at once. A batch that rates a period and commits after the rollups are read
    # queued it in a row this pass did not take (store.draw_downs_queue): the next pass
    # draws that usage.
    records = _records_lock(drawn)
    read = periods_rollups(periods=drawn)
    customers = Customer.objects.in_bulk({customer for customer, _ in drawn})
    # Then the wallets, in id order, before any is given back to or drawn from.
    wallets = _wallets_of(customers, with_wallets)
    plans: list[_Reconcile] = []
    settle: list[tuple[Customer, PeriodMoney, list[UsageRollup], list[_Call]]] = []
    for key in drawn:
        customer_id, period_start = key
        record, rollups, customer = records[key], read[key], customers[customer_id]
        if rollups.rerating:
            continue  # drawn once re-rated: its rating queues it again
        if not rollups:
            # Re-rating moved all its usage to other periods: none is left to pay for.
            if customer_id in with_wallets and (record.drawn or record.short):
                plans.append(_Reconcile(record, customer, _ZERO, cover=False))
            continue
        end = rollups[0].period_end
        money = period_money(customer=customer, start=period_start, end=end, rollups=rollups)
        charges = money.charges
        if customer_id in budgeted:
            usage = sum(charges.usage_by_segment, _ZERO)
            alerts_check_usage(customer=customer, period_start=period_start, usage=usage)
        if customer_id not in with_wallets:
            continue
        latest_terms = money.segments[-1].terms
        record.allowance_left = charges.allowance_left
        cover = latest_terms is not None and latest_terms.credits_cover_arrears
        plans.append(_Reconcile(record, customer, charges.billable, cover=cover))
        calls = settling.get(key, [])
        if calls:
            settle.append((customer, money, rollups, calls))
    _records_reconcile(plans, wallets)
    for settled in settle:
        _holds_settle_drawn(*settled)


def _records_lock(periods: list[tuple[int, datetime]]) -> dict[tuple[int, datetime], UsageDrawDown]:
    """The periods' draw-down records, created where missing, locked in (customer, start)
    order, by period."""
    if connection.vendor != "postgresql":  # one writer at a time: nothing to lock
        UsageDrawDown.objects.bulk_create(
            [UsageDrawDown(customer_id=c, period_start=start) for c, start in periods],
            ignore_conflicts=True,
        )
        wanted = set(periods)
        rows = UsageDrawDown.objects.filter(customer_id__in={c for c, _ in periods})
        return {
            (row.customer_id, row.period_start): row
            for row in rows
            if (row.customer_id, row.period_start) in wanted
        }
    draw_down_records_create(periods)
    table = UsageDrawDown._meta.db_table
    locked = UsageDrawDown.objects.raw(
        f"SELECT d.* FROM {table} AS d "  # noqa: S608
        "JOIN unnest(%s::bigint[], %s::timestamptz[]) AS p(customer_id, period_start) "
        "ON d.customer_id = p.customer_id AND d.period_start = p.period_start "
        "ORDER BY d.customer_id, d.period_start FOR UPDATE OF d",
        [pg_array(c for c, _ in periods), pg_array(start for _, start in periods)],
    )
    return {(row.customer_id, row.period_start): row for row in locked}


def _wallets_of(customers: dict[int, Customer], with_wallets: set[int]) -> dict[int, Wallet]:
    """The wallet in each customer's billing currency (of those with one), locked in id
    order, by customer pk. A customer whose wallets are all in other currencies gets one
    when there is something to draw or give back (`_records_reconcile`), as before."""
    found = [
        (pk, customer_id)
        for pk, customer_id, currency in Wallet.objects.filter(
            customer_id__in=with_wallets
        ).values_list("pk", "customer_id", "currency")
        if currency == customers[customer_id].currency
    ]
    locked = wallets_lock(wallet_ids=[pk for pk, _ in found])
    return {customer_id: locked[pk] for pk, customer_id in found}


@dataclass
class _Reconcile:
    """A period's record to bring to its billable usage (`_records_reconcile`)."""

    record: UsageDrawDown
    customer: Customer
    billable: Decimal
    cover: bool


def _records_reconcile(plans: list[_Reconcile], wallets: dict[int, Wallet]) -> None:
    """Bring what each period's record says credits paid (`drawn`) or could not cover
    (`short`) to its billable usage: draw what is owed; give back what re-rating took off
    (the shortfall first, then a refund grant); and where credits cover arrears (`cover`),
    ask them for what is still short; what invoices settled of rounding stays
    (`pricing.credits`). Every draw in one `wallets_draw_down`, under the wallets' locks
    (taken already); every record saved, even when nothing moved, in one statement."""
    moves = [
        credits_move(
            billable=plan.billable,
            settled=plan.record.settled,
            drawn=plan.record.drawn,
            short=plan.record.short,
            cover=plan.cover,
        )
        for plan in plans
    ]
    asks, asked = [], []
    for plan, move in zip(plans, moves, strict=True):
        reference = f"usage {plan.record.period_start:%Y-%m-%d}"
        wallet = wallets.get(plan.customer.pk) or wallet_get_or_create(customer=plan.customer)
        if move.refund:
            credits_give_back(wallet=wallet, amount=move.refund, reason=f"re-rated {reference}")
        # What is still short is asked of the credits at every draw (after a re-rating
        # lowered it too), under the wallet's lock: a grant this does not see takes that
        # lock after this transaction commits, so it is credited after the `updated_at`
        # saved below, and usage_shortfalls_cover offers it the rest.
        if move.ask > 0:
            asks.append(DrawDownAsk(wallet=wallet, amount=move.ask, reference=reference))
            asked.append(plan)
    got = dict(
        zip(
            (id(plan) for plan in asked),
            (taken.drawn for taken in wallets_draw_down(asks=asks)),
            strict=True,
        )
    )
    now = timezone.now()
    for plan, move in zip(plans, moves, strict=True):
        record = plan.record
        record.drawn, record.short = credits_moved(
            move, drawn=record.drawn, short=record.short, got=got.get(id(plan), _ZERO),
            cover=plan.cover,
        )  # fmt: skip
    # Saved even when nothing moved: `updated_at` tells usage_shortfalls_cover that
    # grants older than it have been offered this period's shortfall.
    draw_down_records_save([plan.record for plan in plans], now)


def usage_shortfalls_cover() -> int:
    """Offer each period's usage past the credits to the grants credited to the wallet since
    it was last drawn (for terms where credits cover arrears), so a grant pays for it at
    once rather than at the period's next usage. Run by every rater pass; crediting a
    grant (at once, or once effective) asks for one.
    A period whose drawing fails is logged and queued for the draw-down pass; it holds
    back neither the others nor the rating that follows.
    """
    with transaction.atomic():
        due = set(
            UsageDrawDown.objects.filter(
                short__gt=0, customer__wallets__grants__credited_at__gte=F("updated_at")
            ).values_list("customer_id", "period_start")
        )
        failed = _draw_downs_apply(due) if due else set()
    draw_downs_queue(failed)
    return len(due)


@dataclass(frozen=True)
class _Call:
    """A rated call whose hold waits to be settled, as its rating has it now."""

    hold_id: uuid.UUID
    customer_id: int
    at: datetime
    event_id: int
    rollup_id: int
    status: str
    amount: Decimal | None  # per-event prices
    quantity: Decimal | None  # tiered prices


def _calls_rated(customer_ids: Collection[int]) -> dict[tuple[int, datetime], list[_Call]]:
    """The calls of these customers whose holds wait to be settled, by the period their
    rating is in now, each period's in the order they happened."""
    rows = HoldSettlement.objects.filter(
        customer_id__in=customer_ids, event__rating__isnull=False
    ).values_list(
        "hold_id",
        "customer_id",
        "event__timestamp",
        "event_id",
        "event__rating__rollup_id",
        "event__rating__rollup__period_start",
        "event__rating__rollup__status",
        "event__rating__amount",
        "event__rating__quantity",
    )
    calls: dict[tuple[int, datetime], list[_Call]] = defaultdict(list)
    for hold_id, customer, at, event, rollup, start, status, amount, quantity in rows:
        calls[(customer, start)].append(
            _Call(hold_id, customer, at, event, rollup, status, amount, quantity)
        )
    for period_calls in calls.values():
        period_calls.sort(key=lambda call: (call.at, call.event_id))
    return calls


def _holds_settle_drawn(
    customer: Customer, money: PeriodMoney, rollups: list[UsageRollup], calls: list[_Call]
) -> None:
    """Settle the holds of the period's calls, just drawn, at what each added to the
    period's billable usage (pricing.rating rule 14), and forget them. If a re-rating
    moved them since they were read, they are left to the next draw of the period their
    rating is then in (which that re-rating queued)."""
    costs = _calls_costs(customer, money, rollups, calls)
    if costs is None:
        return
    holds_settle(costs=costs, customer_ids={call.hold_id: call.customer_id for call in calls})
    _settlements_forget(calls)


def _calls_costs(
    customer: Customer, money: PeriodMoney, rollups: list[UsageRollup], calls: list[_Call]
) -> dict[uuid.UUID, Decimal | None] | None:
    """Each call's cost by its hold: the step it makes in the period's billable usage,
    counted as the period's latest usage, calls together in the order they happened
    (docs/guide/credits.md, "Authorizations"); None for a call that could not be priced.
    The period's usage without the latest calls is its usage with them less theirs, taken
    off newest first: a per-event call's amount off its segment's usage; a tiered call's
    quantity off its rollup, its line priced again (`period_money`). None when the
    rollups read do not hold the calls (a re-rating committed between the two reads)."""
    costs: dict[uuid.UUID, Decimal | None] = {call.hold_id: None for call in calls}
    priced = [call for call in calls if call.status == UsageRollup.Status.RATED]
    if not priced:
        return costs
    without = {rollup.pk: copy.copy(rollup) for rollup in rollups}
    if any(call.rollup_id not in without for call in priced):
        return None
    segment_of = {terms.pk: number for number, (_, terms) in enumerate(money.segments) if terms}
    start, end = rollups[0].period_start, rollups[0].period_end
    usage = list(money.charges.usage_before_discount)
    states = [tuple(usage)]
    try:
        for call in reversed(priced):
            rollup = without[call.rollup_id]
            assert rollup.terms_id is not None  # a rated rollup has its terms
            if call.amount is not None:
                rollup.amount -= call.amount
                usage[segment_of[rollup.terms_id]] -= call.amount
            else:
                assert call.quantity is not None  # rated: an amount or a quantity
                rollup.quantity -= call.quantity
                rest = period_money(
                    customer=customer, start=start, end=end, rollups=list(without.values())
                )
                usage = list(rest.charges.usage_before_discount)
            states.append(tuple(usage))
        steps = calls_billable(
            period_start=start,
            period_end=end,
            segments=[piece.segment for piece in money.segments],
            usage_by_segment=states[::-1],
        )
    except RatingError:  # usage below zero: the calls are not all in these rollups
        return None
    costs.update(zip((call.hold_id for call in priced), steps, strict=True))
    return costs


def _settlements_forget(calls: list[_Call]) -> None:
    if calls:
        HoldSettlement.objects.filter(pk__in=[call.hold_id for call in calls]).delete()
