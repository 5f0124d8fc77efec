"""Moving prepaid credits: grants in, draw-downs, adjustments and expiries out, and holds
that reserve credits for a call about to be made.

Every write takes the wallet's row lock first (after the customer's, where both are
taken: the lock order of docs/development/architecture.md), writes its ledger entries,
and moves the cached balance and the grants' remaining amounts by the same sums in the
same transaction, so the balance always equals the sum of the entries. Two draw-downs
racing for the last credits queue on the lock: the second sees what the first left.
"""

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, TypeAlias, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from common.audit import audit_record
from common.fields import RATED_DIGITS
from common.tasks import rating_nudge
from contracts.models import Customer
from pricing.money import RATED_PLACES, plain

from .alerts import alerts_check_wallet, alerts_check_wallets
from .models import CreditGrant, Hold, LedgerEntry, Wallet
from .selectors import grants_live, grants_live_of
from .webhook_events import grant_created_emit, grant_expired_emit

_ZERO = Decimal(0)
_PLACES = RATED_PLACES
_WHOLE_DIGITS = RATED_DIGITS["max_digits"] - RATED_PLACES  # what a money column can hold
_TOO_LARGE = Decimal(10) ** _WHOLE_DIGITS

#: An amount as callers give it: a Decimal, an int or decimal text; a float is refused.
Amount: TypeAlias = Decimal | int | str


class InsufficientCredits(Exception):
    """A draw-down that must be covered in full and cannot be: nothing was drawn."""


@dataclass(frozen=True)
class DrawDown:
    """What a draw-down took (`drawn`) and what it could not cover (`short`)."""

    drawn: Decimal
    short: Decimal


def wallet_get_or_create(*, customer: Customer, currency: str | None = None) -> Wallet:
    """The customer's wallet in `currency` (their billing currency), created on first use."""
    wallet, _ = Wallet.objects.get_or_create(
        customer=customer, currency=currency or customer.currency
    )
    return wallet


def credit_grant(
    *,
    customer: Customer,
    amount: Amount,
    source: str,
    priority: int = 0,
    effective_at: datetime | None = None,
    expires_at: datetime | None = None,
    reason: str = "",
    created_by: str = "",
    currency: str | None = None,
) -> CreditGrant:
    """Add credits to the customer's wallet, usable at once or, with `effective_at` (in the
    future), from then on; they expire at `expires_at`. Credits granted for later enter the
    wallet, with their grant entry, once effective (`grants_credit_effective`): until then
    nothing draws, holds or counts them."""
    amount = _money(amount, "amount")
    now = timezone.now()
    errors: dict[str, str] = {}
    if source not in CreditGrant.Source.values:
        errors["source"] = f"Use one of {', '.join(CreditGrant.Source.values)}."
    starts = effective_at if effective_at is not None and effective_at > now else now
    if effective_at is not None and starts is now:
        errors["effective_at"] = (
            "Give an instant in the future, or leave it out for credits usable at once."
        )
    if expires_at is not None and expires_at <= starts:
        errors["expires_at"] = (
            "A grant must expire in the future."
            if starts is now
            else "A grant must expire after it becomes effective."
        )
    if source == CreditGrant.Source.ADJUSTMENT and not reason.strip():
        errors["reason"] = "A manual adjustment needs a reason."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
        wallet = _wallet_lock(wallet_get_or_create(customer=customer, currency=currency))
        grant = _grant_add(wallet, source, amount, starts, priority, expires_at, reason, created_by)
        if source != CreditGrant.Source.REFUND:  # refunds follow from another recorded change
            audit_record("credit_grant.create", grant, customer=customer.external_id, reason=reason)
        return grant


def credits_give_back(*, wallet: Wallet, amount: Amount, reason: str) -> CreditGrant:
    """Give credits back to an existing wallet as a refund grant, under the wallet's lock
    alone: the draw-down and closing give back while they hold a period's record, which
    the customer's lock must come before (docs/development/architecture.md, "Locks").
    It asks no rater run: its callers are the rater's draw-down and closing, and the
    rater's periodic pass offers these credits to what was short."""
    amount = _money(amount, "amount")
    with transaction.atomic():
        wallet = _wallet_lock(wallet)
        return _grant_add(
            wallet, CreditGrant.Source.REFUND, amount, timezone.now(), 0, None, reason, "",
            nudge=False,
        )  # fmt: skip


def _grant_add(
    wallet: Wallet,
    source: str,
    amount: Decimal,
    effective_at: datetime,
    priority: int,
    expires_at: datetime | None,
    reason: str,
    created_by: str,
    *,
    nudge: bool = True,
) -> CreditGrant:
    """A grant into the wallet, whose lock the caller holds: credited at once with its
    ledger entry, or later if `effective_at` is still to come; grant.created is emitted
    now, either way (its `effective_at` says when the credits count)."""
    grant = CreditGrant.objects.create(
        wallet=wallet,
        source=source,
        amount=amount,
        remaining=_ZERO,
        priority=priority,
        effective_at=effective_at,
        expires_at=expires_at,
        reason=reason,
        created_by=created_by,
    )
    grant.wallet = wallet  # with its customer, which the event names
    grant_created_emit(grant=grant)
    if effective_at <= timezone.now():
        _grants_credit(wallet, [grant], nudge=nudge)
    return grant


def _grants_credit(wallet: Wallet, grants: list[CreditGrant], *, nudge: bool = True) -> None:
    """Put the grants' credits into the wallet, whose lock the caller holds: each one's
    grant entry, its remaining amount and the balance. `credited_at` is read under the
    lock, so a draw-down that did not see these credits saved its period's record before
    it (billing's usage_shortfalls_cover offers them what that period could not cover)."""
    credited_at = timezone.now()
    for grant in grants:
        by = {"reason": grant.reason, "created_by": grant.created_by}
        _entry(grant, LedgerEntry.Kind.GRANT, grant.amount, credited_at, **by)
        _add(grant, "remaining", grant.amount)
        _add(wallet, "balance", grant.amount)
        CreditGrant.objects.filter(pk=grant.pk).update(credited_at=credited_at)
        grant.credited_at = credited_at
    alerts_check_wallet(wallet=wallet)
    if nudge:  # the rater offers the new credits the open periods' usage past the credits
        transaction.on_commit(rating_nudge)


def _grants_credit_due(wallet: Wallet, now: datetime) -> int:
    """Credit the wallet's grants that have become effective by `now` (under its lock)."""
    due = CreditGrant.objects.filter(wallet=wallet, credited_at__isnull=True, effective_at__lte=now)
    grants = list(due.order_by("effective_at", "pk"))
    if grants:
        _grants_credit(wallet, grants)
    return len(grants)


def grants_credit_effective(*, now: datetime | None = None) -> int:
    """Credit every grant granted for later that has become effective (beat: every
    minute; a wallet's draw-downs and holds credit its own first). Safe to run twice or
    in two workers at once: each wallet's grants are credited under its lock, once."""
    now = now or timezone.now()
    due = CreditGrant.objects.filter(credited_at__isnull=True, effective_at__lte=now)
    credited = 0
    for wallet_id in due.values_list("wallet_id", flat=True).distinct().order_by("wallet_id"):
        with transaction.atomic():
            credited += _grants_credit_due(_wallet_lock(Wallet(pk=wallet_id)), now)
    return credited


def wallet_draw_down(
    *,
    wallet: Wallet,
    amount: Amount,
    reference: str = "",
    partial: bool = True,
    kind: str = LedgerEntry.Kind.DRAW_DOWN,
    reason: str = "",
    created_by: str = "",
) -> DrawDown:
    """Take `amount` from the wallet's live grants: highest priority first, then the one
    that expires soonest (never-expiring last), then the oldest.

    With `partial` (usage billed in arrears past the credits), what the grants cannot cover
    is returned as `short`; without it, a draw-down the credits cannot cover in full takes
    nothing and raises InsufficientCredits.
    """
    amount = _money(amount, "amount")
    now = timezone.now()
    with transaction.atomic():
        wallet = _wallet_lock(wallet)
        _grants_credit_due(wallet, now)
        grants = list(grants_live(wallet=wallet, at=now))
        available = sum((grant.remaining for grant in grants), _ZERO)
        if not partial and available < amount:
            raise InsufficientCredits(
                f"{wallet} has {plain(available)} available; {plain(amount)} was asked for."
            )
        by = {"reference": reference, "reason": reason, "created_by": created_by}
        (taken,) = _grants_take(
            {wallet.pk: wallet}, {wallet.pk: grants}, [(wallet.pk, amount, by)], kind, now
        )
    return taken


@dataclass(frozen=True)
class DrawDownAsk:
    """One draw-down of many (`wallets_draw_down`): `amount` from `wallet`."""

    wallet: Wallet
    amount: Decimal
    reference: str = ""


def wallets_draw_down(*, asks: Sequence[DrawDownAsk]) -> list[DrawDown]:
    """Many draw-downs of usage at once (billing's draw-down pass over many customers'
    periods), each as `wallet_draw_down` with `partial` would take it, in a few statements
    whatever their number: the wallets locked in id order (one statement), their grants
    that became effective credited, their live grants read (one statement), the ledger
    entries written (one), the grants and balances moved (one each), and the alerts of
    every wallet checked together. Asks of one wallet are taken in the order given. What
    each took and could not cover, in the order of `asks`."""
    for ask in asks:
        _money(ask.amount, "amount")
    if not asks:
        return []
    now = timezone.now()
    with transaction.atomic():
        wallets = wallets_lock(wallet_ids={ask.wallet.pk for ask in asks})
        due = CreditGrant.objects.filter(
            wallet_id__in=list(wallets), credited_at__isnull=True, effective_at__lte=now
        ).order_by("wallet_id", "effective_at", "pk")
        by_wallet: dict[int, list[CreditGrant]] = {}
        for grant in due:
            by_wallet.setdefault(grant.wallet_id, []).append(grant)
        for wallet_id, grants in by_wallet.items():
            _grants_credit(wallets[wallet_id], grants)
        live: dict[int, list[CreditGrant]] = {pk: [] for pk in wallets}
        # What _grants_take reads of a grant, and no more: a thousand grants' instants
        # and texts cost more than their draws.
        rows = grants_live_of(wallet_ids=list(wallets), at=now)
        for grant in rows.only("pk", "wallet_id", "remaining"):
            live[grant.wallet_id].append(grant)
        return _grants_take(
            wallets,
            live,
            [(ask.wallet.pk, ask.amount, {"reference": ask.reference}) for ask in asks],
            LedgerEntry.Kind.DRAW_DOWN,
            now,
        )


def _grants_take(
    wallets: Mapping[int, Wallet],
    live: Mapping[int, list[CreditGrant]],
    asks: Sequence[tuple[int, Decimal, Mapping[str, str]]],
    kind: str,
    now: datetime,
) -> list[DrawDown]:
    """Take each ask (wallet id, amount, the entries' reference, reason, author) from its
    wallet's live grants, in draw-down order, under the wallets' locks the caller holds:
    a ledger entry per grant touched, the grants' remaining amounts and the balances moved
    by the same sums (one statement each on PostgreSQL), then the wallets' alerts."""
    entries: list[_Entry] = []
    grants_moved: dict[int, Decimal] = {}
    balances_moved: dict[int, Decimal] = {}
    results = []
    for wallet_id, amount, by in asks:
        left = amount
        for grant in live[wallet_id]:
            if not left:
                break
            if grant.remaining <= 0:
                continue  # spent by an earlier ask of this wallet
            take = min(grant.remaining, left)
            entries.append(_Entry(wallet_id, grant.pk, -take, by))
            grant.remaining -= take
            grants_moved[grant.pk] = grants_moved.get(grant.pk, _ZERO) - take
            left -= take
        balances_moved[wallet_id] = balances_moved.get(wallet_id, _ZERO) - (amount - left)
        results.append(DrawDown(drawn=amount - left, short=left))
    _entries_insert(entries, kind, now)
    _add_many(CreditGrant, "remaining", grants_moved)
    _add_many(Wallet, "balance", balances_moved)
    for wallet_id, delta in balances_moved.items():
        wallets[wallet_id].balance += delta
    alerts_check_wallets(wallets=[wallets[pk] for pk in sorted(balances_moved)])
    return results


class _Entry(NamedTuple):
    """A ledger entry of a grant taken (`_grants_take`): `by` names its reference, reason
    and author (each empty when not given)."""

    wallet_id: int
    grant_id: int
    amount: Decimal
    by: Mapping[str, str]


_ENTRY_TEXTS = ("reference", "reason", "created_by")


def _entries_insert(entries: Sequence[_Entry], kind: str, now: datetime) -> None:
    """Write the entries of grants taken, in their order, as `bulk_create` would: on
    PostgreSQL one INSERT over arrays bound by the server (`common.postgresql`'s
    `server_bound_cursor`, prepared where the database allows), where `bulk_create` made
    a model instance of each entry and quoted each of its values in Python."""
    if not entries:
        return
    if connection.vendor != "postgresql":
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    wallet_id=entry.wallet_id, grant_id=entry.grant_id, kind=kind,
                    amount=entry.amount, created_at=now, **entry.by,
                )
                for entry in entries
            ]
        )  # fmt: skip
        return
    table = LedgerEntry._meta.db_table
    texts = [[entry.by.get(name, "") for entry in entries] for name in _ENTRY_TEXTS]
    with connection.server_bound_cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            f"INSERT INTO {table} (wallet_id, grant_id, hold_id, kind, amount, "  # noqa: S608
            "reference, reason, created_by, created_at) "
            "SELECT e.wallet_id, e.grant_id, NULL, %s, e.amount, e.reference, e.reason, "
            "e.created_by, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::text[], %s::text[], "
            "%s::text[]) WITH ORDINALITY AS e(wallet_id, grant_id, amount, reference, reason, "
            "created_by, n) ORDER BY e.n",
            [
                kind,
                now,
                [entry.wallet_id for entry in entries],
                [entry.grant_id for entry in entries],
                [entry.amount for entry in entries],
                *texts,
            ],
        )


def wallet_adjust(
    *, wallet: Wallet, amount: Amount, reason: str, created_by: str
) -> DrawDown | CreditGrant:
    """A manual correction with a required reason: a positive amount is a grant of its own
    (source: manual adjustment); a negative one is taken from the grants in draw-down order
    and must be covered in full."""
    if not reason.strip():
        raise ValidationError({"reason": "A manual adjustment needs a reason."})
    value = _decimal(amount, "amount")
    if not value:
        raise ValidationError(
            {"amount": "Give a positive amount to add or a negative one to take."}
        )
    if value > 0:
        return credit_grant(
            customer=wallet.customer,
            currency=wallet.currency,
            amount=value,
            source=CreditGrant.Source.ADJUSTMENT,
            reason=reason,
            created_by=created_by,
        )
    with transaction.atomic():
        taken = wallet_draw_down(
            wallet=wallet,
            amount=-value,
            partial=False,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            reason=reason,
            created_by=created_by,
        )
        audit_record(
            "wallet.adjust",
            wallet,
            after={"amount": format(value, "f"), "drawn": format(taken.drawn, "f")},
            customer=wallet.customer.external_id,
            reason=reason,
        )
    return taken


def hold_place(
    *,
    customer: Customer,
    amount: Amount,
    estimate: Amount | None = None,
    up_to: bool = False,
    reference: str = "",
    currency: str | None = None,
) -> Hold | None:
    """Reserve `amount` of the customer's available credits (in `currency`, theirs by
    default) until the hold expires (TOKENTILL_HOLD_SECONDS), is settled by the usage it
    was placed for, or is released.

    Without `up_to`, a hold the available balance cannot cover in full reserves nothing
    and raises InsufficientCredits: of two calls racing for the last credits, the second
    to take the wallet's lock sees what the first reserved. With `up_to`, it reserves what
    is available (possibly nothing), for usage that may run past the credits in arrears;
    a customer without a wallet then gets no hold (None). Expired holds of the wallet are
    released first, so they never block new spend.
    """
    amount = _decimal(amount, "amount")
    estimate = amount if estimate is None else _decimal(estimate, "estimate")
    if amount < 0:
        raise ValidationError({"amount": "Must not be negative."})
    now = timezone.now()
    with transaction.atomic():
        wallet = (
            Wallet.objects.select_for_update(no_key=True)
            .filter(customer=customer, currency=currency or customer.currency)
            .first()
        )
        if wallet is None:
            if up_to:
                return None
            raise InsufficientCredits(f"{customer.external_id} has no credits.")
        _grants_credit_due(wallet, now)
        _holds_close(Hold.objects.filter(wallet=wallet, expires_at__lte=now), wallet, now)
        available = max(wallet.available, _ZERO)
        if amount > available:
            if not up_to:
                raise InsufficientCredits(
                    f"{wallet} has {plain(available)} available; {plain(amount)} was asked for."
                )
            amount = available
        hold = Hold.objects.create(
            wallet=wallet,
            amount=amount,
            estimate=estimate,
            reference=reference,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.TOKENTILL_HOLD_SECONDS),
        )
        if amount:
            _hold_entry(hold, LedgerEntry.Kind.HOLD, -amount, now)
            _add(wallet, "held", amount)
    return hold


def hold_release(*, hold: Hold) -> bool:
    """Give back what an active hold reserves (the call was not made); False if it had
    already been settled, released or expired."""
    with transaction.atomic():
        wallet = _wallet_lock(hold.wallet)
        return bool(_holds_close(Hold.objects.filter(pk=hold.pk), wallet, timezone.now()))


def holds_settle(
    *, costs: Mapping[uuid.UUID, Decimal | None], customer_ids: Mapping[uuid.UUID, int]
) -> int:
    """Close the active holds whose calls have been rated and drawn: `costs` maps hold id
    to what was drawn for the call (None when it could not be priced), `customer_ids`
    maps it to the customer of the event that carried it (a hold of another customer's
    wallet is not theirs to settle). What each reserved is released; the call's cost is
    drawn by the draw-down transaction that calls this (billing), so settling is exactly
    once, like rating. Unknown, expired or already closed holds are skipped."""
    now = timezone.now()
    settled = 0
    holds = Hold.objects.filter(pk__in=list(costs), status=Hold.Status.ACTIVE)
    with transaction.atomic():
        for wallet_id, customer_id in (
            holds.values_list("wallet_id", "wallet__customer_id").distinct().order_by("wallet_id")
        ):
            wallet = _wallet_lock(Wallet(pk=wallet_id))
            mine = [pk for pk in costs if customer_ids.get(pk) == customer_id]
            closing = holds.filter(wallet_id=wallet_id, pk__in=mine)
            settled += len(_holds_close(closing, wallet, now, settled_costs=costs))
    return settled


def holds_expire(*, now: datetime | None = None) -> int:
    """Release every active hold past its expiry (beat: every minute); safe to run twice
    or in two workers at once, as each wallet's holds are closed under its lock."""
    now = now or timezone.now()
    due = Hold.objects.filter(status=Hold.Status.ACTIVE, expires_at__lte=now)
    expired = 0
    for wallet_id in due.values_list("wallet_id", flat=True).distinct().order_by("wallet_id"):
        with transaction.atomic():
            wallet = _wallet_lock(Wallet(pk=wallet_id))
            expired += len(_holds_close(due.filter(wallet_id=wallet_id), wallet, now))
    return expired


def grants_expire(*, now: datetime | None = None) -> int:
    """Expire what is left of every grant past its expiry, with a ledger entry each.

    Safe to run twice or in two workers at once: each grant is expired under its wallet's
    lock, and one with nothing left is skipped.
    """
    now = now or timezone.now()
    expired = 0
    due = CreditGrant.objects.filter(expires_at__lte=now, remaining__gt=0)
    for grant_id, wallet_id in due.values_list("pk", "wallet_id").order_by("wallet_id", "pk"):
        with transaction.atomic():
            wallet = _wallet_lock(Wallet(pk=wallet_id))
            grant = CreditGrant.objects.get(pk=grant_id)
            left = grant.remaining
            if left <= 0:
                continue  # expired by another worker meanwhile
            _entry(grant, LedgerEntry.Kind.EXPIRY, -left, now, reason="expired")
            _add(wallet, "balance", -left)
            _add(grant, "remaining", -left)
            grant.wallet = wallet
            grant_expired_emit(grant=grant, expired=left)
            alerts_check_wallet(wallet=wallet)
            expired += 1
    return expired


def grants_warn_expiring(*, now: datetime | None = None) -> int:
    """Email each customer once per grant that expires within TOKENTILL_EXPIRY_WARNING_DAYS
    with credits left. The grant is marked in the transaction that sends, under its row
    lock, so two workers never both send; a send that fails leaves it for the next run."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.TOKENTILL_EXPIRY_WARNING_DAYS)
    due = CreditGrant.objects.filter(
        expiry_warned_at__isnull=True, expires_at__gt=now, expires_at__lte=horizon
    ).filter(remaining__gt=0)
    warned = 0
    for grant_id in due.values_list("pk", flat=True).order_by("pk"):
        with transaction.atomic():
            grant = (
                CreditGrant.objects.select_for_update(skip_locked=True)
                .select_related("wallet__customer")
                .filter(pk=grant_id, expiry_warned_at__isnull=True)
                .first()
            )
            if grant is None:
                continue  # warned, or being warned, by another worker
            customer = grant.wallet.customer
            if customer.email:
                send_mail(
                    subject=f"{plain(grant.remaining)} {grant.wallet.currency} of credits "
                    f"expire on {grant.expires_at:%Y-%m-%d}",
                    message=(
                        f"{customer.name}: {plain(grant.remaining)} {grant.wallet.currency} "
                        f"of your {grant.get_source_display().lower()} credits expire at "
                        f"{grant.expires_at:%Y-%m-%d %H:%M} UTC. Usage until then draws on "
                        "them first among credits of the same priority."
                    ),
                    from_email=None,
                    recipient_list=[customer.email],
                )
            CreditGrant.objects.filter(pk=grant.pk).update(expiry_warned_at=now)
            warned += 1
    return warned


# --- helpers -------------------------------------------------------------------------------


def _wallet_lock(wallet: Wallet) -> Wallet:
    """The wallet's row, locked FOR NO KEY UPDATE, and only it (not the customer joined in):
    rows that merely refer to the wallet or its customer (ledger entries, alerts) take a key
    share lock, which this lock does not block, so a rater drawing credits and a grant
    holding the customer's lock never wait on each other in a cycle. The customer's lock
    is the same strength for the same reason."""
    return (
        Wallet.objects.select_for_update(no_key=True, of=("self",))
        .select_related("customer")
        .get(pk=wallet.pk)
    )


def wallets_lock(*, wallet_ids: Collection[int]) -> dict[int, Wallet]:
    """The wallets' rows (with their customers), locked as every wallet service locks one,
    in id order (two passes over many wallets never wait on each other in a cycle), by
    id. Billing's draw-down pass takes them all before it gives back or draws any."""
    rows = (
        Wallet.objects.select_for_update(no_key=True, of=("self",))
        .select_related("customer")
        .filter(pk__in=sorted(wallet_ids))
        .order_by("pk")
    )
    return {wallet.pk: wallet for wallet in rows}


def _add_many(
    model: type[Wallet] | type[CreditGrant], field: str, deltas: Mapping[int, Decimal]
) -> None:
    """`_add` for many rows (by pk) of one table: one UPDATE over arrays on PostgreSQL, in
    id order, under the wallet locks the caller holds."""
    if not deltas:
        return
    if connection.vendor != "postgresql":
        for pk in sorted(deltas):
            _add(model(pk=pk), field, deltas[pk])
        return
    table, column = model._meta.db_table, field  # each column is named as its field
    pks = sorted(deltas)
    # The arrays bound by the server, as `_entries_insert`'s.
    with connection.server_bound_cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            f"UPDATE {table} AS t SET {column} = t.{column} + d.delta "  # noqa: S608
            "FROM unnest(%s::bigint[], %s::numeric[]) AS d(id, delta) WHERE t.id = d.id",
            [pks, [deltas[pk] for pk in pks]],
        )


def _holds_close(
    holds: QuerySet[Hold],
    wallet: Wallet,
    now: datetime,
    settled_costs: Mapping[uuid.UUID, Decimal | None] | None = None,
) -> list[Hold]:
    """Release the active holds among `holds` (of `wallet`, whose lock the caller holds),
    each with a release entry. They end settled (with their call's cost) when
    `settled_costs` is given, else expired if past their expiry, else released."""
    closed = list(holds.filter(status=Hold.Status.ACTIVE).order_by("created_at", "pk"))
    for hold in closed:
        if settled_costs is not None:
            hold.status, hold.settled_cost = Hold.Status.SETTLED, settled_costs[hold.pk]
        elif hold.expires_at <= now:
            hold.status = Hold.Status.EXPIRED
        else:
            hold.status = Hold.Status.RELEASED
        hold.closed_at = now
        hold.save(update_fields=["status", "closed_at", "settled_cost"])
        if hold.amount:
            _hold_entry(hold, LedgerEntry.Kind.RELEASE, hold.amount, now)
    released = sum((hold.amount for hold in closed), _ZERO)
    if released:
        _add(wallet, "held", -released)
    return closed


def _hold_entry(hold: Hold, kind: str, amount: Decimal, at: datetime) -> LedgerEntry:
    return LedgerEntry.objects.create(
        wallet_id=hold.wallet_id, hold=hold, kind=kind, amount=amount, created_at=at,
        reference=hold.reference,
    )  # fmt: skip


def _entry(
    grant: CreditGrant, kind: str, amount: Decimal, at: datetime, **fields: str
) -> LedgerEntry:
    return LedgerEntry.objects.create(
        wallet_id=grant.wallet_id, grant=grant, kind=kind, amount=amount, created_at=at, **fields
    )


def _add(row: Wallet | CreditGrant, field: str, delta: Decimal) -> None:
    """`row.field += delta` in the database, under the wallet lock the caller holds (and
    so on a row read under it: its value in memory is the stored one).

    PostgreSQL adds in SQL (exact numeric); SQLite keeps these columns as text, so the sum
    is done here, in the transaction that holds SQLite's only write lock.
    """
    if connection.vendor == "postgresql":
        type(row).objects.filter(pk=row.pk).update(**{field: F(field) + delta})
        setattr(row, field, getattr(row, field) + delta)
        return
    fresh = type(row).objects.filter(pk=row.pk).values_list(field, flat=True).get()
    setattr(row, field, fresh + delta)
    type(row).objects.filter(pk=row.pk).update(**{field: fresh + delta})


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValidationError({what: "Give the amount as text or a Decimal, never a float."})
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError({what: f"'{value}' is not a number."}) from None
    # The exponent is an int once the number is finite.
    if not number.is_finite() or cast(int, number.normalize().as_tuple().exponent) < -_PLACES:
        raise ValidationError({what: f"Use a finite amount with at most {_PLACES} places."})
    if abs(number) >= _TOO_LARGE:
        raise ValidationError({what: f"Use at most {_WHOLE_DIGITS} digits before the point."})
    return number


def _money(value: object, what: str) -> Decimal:
    number = _decimal(value, what)
    if number <= 0:
        raise ValidationError({what: "Must be greater than 0."})
    return number
