"""Raters racing each other, dying mid-batch, and racing a contract change.

PostgreSQL only: real processes, each with its own connection (as in
tests/metering/test_ingest_races.py). NOW is 2026-11-15 12:00 UTC.
"""

import multiprocessing
import os
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection, connections

from billing.models import TOKEN_COLUMNS, RatedEvent, UsageDrawDown, UsageRollup
from billing.rating import rater
from billing.rating.rater import terms_changes_apply, usage_rate_pending
from billing.selectors import usage_for_period
from contracts.models import RateCardVersion
from contracts.rate_cards import price_create, rate_card_version_schedule
from contracts.services import contract_amend, contract_create
from metering import services as metering_services
from metering.models import UnratedEvent, UsageEvent
from wallets import services as wallets_services
from wallets.models import Wallet
from wallets.services import credit_grant

from .conftest import (
    GPT_4O_RATES,
    NOVEMBER,
    event,
    ingest,
    queued,
    rollups,
    tiered_card,
)

PROCESSES = 4
AMENDED = datetime(2026, 11, 11, tzinfo=UTC)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between processes are tested on PostgreSQL")


@pytest.fixture(autouse=True)
def _no_rating_on_commit(monkeypatch):
    """Ingestion and grants ask for a rating run after commit, which runs eagerly in tests:
    here the queue must stay full until the processes under test drain it."""
    monkeypatch.setattr(metering_services, "rating_nudge", lambda: None)
    monkeypatch.setattr(wallets_services, "rating_nudge", lambda: None)


def _child(target, number, barrier, answers, args):
    connections.close_all()  # the inherited connection belongs to the parent
    try:
        barrier.wait(timeout=30)
        answers.put((number, target(*args)))
    except BaseException as error:
        answers.put((number, f"error: {error!r}"))
        raise
    finally:
        connections.close_all()


def race(target, args_list: list[tuple], timeout: float = 120) -> list:
    """Run target(*args) for each args in its own process, all released at once; return
    their answers in the order given."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(args_list))
    answers = context.Queue()
    connections.close_all()
    children = [
        context.Process(target=_child, args=(target, number, barrier, answers, args))
        for number, args in enumerate(args_list)
    ]
    for child in children:
        child.start()
    results = dict(answers.get(timeout=timeout) for _ in children)
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0, results
    return [results[number] for number in range(len(args_list))]


def other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def wait_for_other_backends_to_end(timeout: float = 20) -> None:
    """A killed process's server session rolls back when the server sees it gone."""
    deadline = time.monotonic() + timeout
    while other_backends() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other_backends() == 0


@pytest.fixture
def priced(acme, now):
    """A card with a per-event price (gpt-4o), a graduated one (embed-*) and a formula that
    goes negative for some events (odd); a contract amended on November 11 (10 % off)."""
    version = tiered_card("Race", NOVEMBER)
    card = version.rate_card
    price_create(
        version=version,
        name="odd",
        model_pattern="odd",
        rates=GPT_4O_RATES,
        formula="input_tokens * rate_in - output_tokens * rate_out",
    )
    contract = contract_create(customer=acme, starts_at=NOVEMBER, rate_card=card, anchor_day=1)
    contract_amend(contract=contract, effective_from=AMENDED, discount_percent=D("10"))
    return contract


MODELS = ["gpt-4o", "gpt-4o", "embed-small", "odd", "llama"]


def events(count: int, *, start: datetime, prefix: str = "e") -> list[dict]:
    return [
        event(
            f"{prefix}{i:05}",
            start + timedelta(minutes=7 * i),
            model=MODELS[i % len(MODELS)],
            feature=["", "chat", "search"][i % 3],
            metrics={
                "input_tokens": 1 + (i * 37) % 5000,
                "output_tokens": (i * 11) % 900,
                "cached_input_tokens": (i * 5) % 300,
            },
        )
        for i in range(count)
    ]


def rollups_agree_with_ratings() -> None:
    """Each rollup holds exactly the sums of the events rated into it."""
    expected = defaultdict(lambda: defaultdict(D))
    for rated in RatedEvent.objects.select_related("event"):
        sums = expected[rated.rollup_id]
        sums["event_count"] += 1
        sums["amount"] += rated.amount or 0
        sums["quantity"] += rated.quantity or 0
        for name in TOKEN_COLUMNS:
            sums[name] += rated.event.metrics.get(name, 0)
    fields = ["event_count", "amount", "quantity", *TOKEN_COLUMNS]
    for rollup in UsageRollup.objects.all():
        assert {name: getattr(rollup, name) for name in fields} == {
            name: expected[rollup.pk][name] for name in fields
        }, rollup.pk


def _rate_in_batches_of_50():
    return usage_rate_pending(batch_size=50)


def test_raters_in_four_processes_rate_every_event_exactly_once(priced):
    ingest(*events(1000, start=datetime(2026, 11, 1, 6, tzinfo=UTC)))
    ingest(*events(1000, start=datetime(2026, 11, 1, 6, 3, tzinfo=UTC), prefix="f"))
    assert queued() == 2000
    # The contract's changes are applied first: applying one re-queues the events a rater
    # has in hand to rate them again (test_an_amendment_committed_while...), which is
    # right, but would blur the count of ratings this test checks.
    assert terms_changes_apply() == 2

    counts = race(_rate_in_batches_of_50, [()] * PROCESSES)

    assert sum(counts) == 2000  # no event was in two batches
    assert sum(1 for count in counts if count) >= 2  # 40 batches, shared out
    assert queued() == 0
    assert RatedEvent.objects.count() == 2000
    assert sum(UsageRollup.objects.values_list("event_count", flat=True)) == 2000
    rollups_agree_with_ratings()
    # And it is what one process rating everything, in one go, gives.
    raced = rollups()
    UnratedEvent.objects.bulk_create(
        [
            UnratedEvent(event_id=pk, customer_id=customer)
            for pk, customer in UsageEvent.objects.values_list("pk", "customer_id")
        ]
    )
    assert usage_rate_pending(batch_size=5000) == 2000
    assert rollups() == raced


def _rate_in_small_batches():
    return usage_rate_pending(batch_size=37)


def test_small_batches_in_four_processes_rate_every_event_exactly_once(priced):
    ingest(*events(1500, start=datetime(2026, 11, 1, 6, tzinfo=UTC)))
    terms_changes_apply()

    counts = race(_rate_in_small_batches, [()] * PROCESSES)

    assert sum(counts) == 1500
    assert sum(1 for count in counts if count) >= 2
    assert (queued(), RatedEvent.objects.count()) == (0, 1500)
    rollups_agree_with_ratings()


def _killed_after_storing():
    connections.close_all()  # the inherited connection belongs to the parent
    store = rater._ratings_store

    def store_then_die(*args, **kwargs):
        store(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: nothing is committed

    rater._ratings_store = store_then_die
    return usage_rate_pending(batch_size=50)


def test_a_rater_killed_mid_batch_leaves_the_events_queued_and_the_rollups_untouched(priced):
    card = priced.terms.get(number=1).rate_card
    later = rate_card_version_schedule(rate_card=card, effective_from=AMENDED)
    ingest(*events(100, start=datetime(2026, 11, 1, 6, tzinfo=UTC)))  # all before Nov 11
    assert usage_rate_pending() == 100
    before = rollups()
    ingest(*events(200, start=datetime(2026, 11, 12, tzinfo=UTC), prefix="late"))

    context = multiprocessing.get_context("fork")
    connections.close_all()
    child = context.Process(target=_killed_after_storing)
    child.start()
    child.join(timeout=60)

    assert child.exitcode == -signal.SIGKILL
    wait_for_other_backends_to_end()
    assert queued() == 200
    assert RatedEvent.objects.count() == 100
    assert rollups() == before
    later.refresh_from_db()
    assert later.locked_at is None  # locking the version was rolled back with the rest
    # The next rater rates them all.
    assert usage_rate_pending() == 200
    assert RatedEvent.objects.count() == 300
    assert RateCardVersion.objects.get(pk=later.pk).locked_at is not None
    rollups_agree_with_ratings()


def _rate_slowly(loaded, go):
    """A rater that has read the terms and waits for `go` before storing its ratings."""
    connections.close_all()
    store = rater._ratings_store

    def store_when_told(*args, **kwargs):
        loaded.set()
        go.wait(timeout=30)
        store(*args, **kwargs)

    rater._ratings_store = store_when_told
    return usage_rate_pending()


def _amend_and_apply(contract_pk, amended, done):
    from contracts.models import Contract

    connections.close_all()
    contract = Contract.objects.get(pk=contract_pk)
    contract_amend(
        contract=contract,
        effective_from=datetime(2026, 11, 13, tzinfo=UTC),
        price_overrides={"gpt-4o": {"rate_in": {"amount": "0", "per": 1_000_000}}},
    )
    amended.set()
    terms_changes_apply()
    done.set()
    connections.close_all()


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_an_amendment_committed_while_a_batch_rates_with_the_old_terms_is_still_applied(
    priced,
):
    # The event at Nov 14 costs 0.01 under the terms a rater reads first; an amendment
    # from Nov 13 (input at 0) commits and is applied while that rater is mid-batch.
    # Whatever the interleaving, the event must end up rated with the amendment:
    # 1,000 x 0 + 500 x 0.00001 + 2,000 x 0.00000125 = 0.005 + 0.0025 = 0.0075.
    ingest(event("e1", datetime(2026, 11, 14, tzinfo=UTC)))
    context = multiprocessing.get_context("fork")
    loaded, go = context.Event(), context.Event()
    amended, done = context.Event(), context.Event()
    connections.close_all()
    rater = context.Process(target=_rate_slowly, args=(loaded, go))
    rater.start()
    assert loaded.wait(timeout=30)
    amender = context.Process(target=_amend_and_apply, args=(priced.pk, amended, done))
    amender.start()
    assert amended.wait(timeout=30)  # committed while the rater holds the old terms
    # Applying it either finishes or waits for the rater; either way, the rater goes on.
    deadline = time.monotonic() + 30
    while not done.is_set() and not lock_waiters() and time.monotonic() < deadline:
        time.sleep(0.01)
    go.set()
    rater.join(timeout=60)
    amender.join(timeout=60)
    assert (rater.exitcode, amender.exitcode) == (0, 0)

    usage_rate_pending()

    rated = RatedEvent.objects.select_related("rollup__terms").get()
    assert (rated.rollup.terms.number, rated.amount) == (3, D("0.007500000000"))
    assert queued() == 0
    rollups_agree_with_ratings()


def _rate_or_amend(role: str, contract_pk: int):
    if role == "rate":
        return usage_rate_pending(batch_size=40)
    from contracts.models import Contract

    time.sleep(0.3)  # while the raters are at work
    contract_amend(
        contract=Contract.objects.get(pk=contract_pk),
        effective_from=datetime(2026, 11, 13, tzinfo=UTC),
        price_overrides={"gpt-4o": {"rate_out": {"amount": "12.00", "per": 1_000_000}}},
    )
    return terms_changes_apply()


def test_an_amendment_racing_three_raters_leaves_every_event_rated_by_its_terms(priced):
    ingest(*events(1000, start=datetime(2026, 11, 10, tzinfo=UTC)))  # Nov 10 to Nov 14
    terms_changes_apply()

    answers = race(_rate_or_amend, [("rate", priced.pk)] * 3 + [("amend", priced.pk)])
    usage_rate_pending()  # what the amendment queued again after the raters stopped

    assert answers[3] == 1
    assert queued() == 0
    rollups_agree_with_ratings()
    by_terms = defaultdict(int)
    for timestamp, number in RatedEvent.objects.filter(rollup__terms__isnull=False).values_list(
        "event__timestamp", "rollup__terms__number"
    ):
        expected = 3 if timestamp >= datetime(2026, 11, 13, tzinfo=UTC) else 2
        expected = 1 if timestamp < AMENDED else expected
        assert number == expected, timestamp
        by_terms[number] += 1
    assert set(by_terms) == {1, 2, 3}
    # The same as one process rating every event again from scratch.
    raced = rollups()
    UnratedEvent.objects.bulk_create(
        [
            UnratedEvent(event_id=pk, customer_id=customer)
            for pk, customer in UsageEvent.objects.values_list("pk", "customer_id")
        ]
    )
    usage_rate_pending()
    assert rollups() == raced


def test_raters_in_four_processes_draw_credits_for_the_usage_exactly_once(priced):
    # given credits that run out part-way through the usage
    credit_grant(customer=priced.customer, amount="3.00", source="purchased")
    ingest(*events(1000, start=datetime(2026, 11, 1, 6, tzinfo=UTC)))
    assert terms_changes_apply() == 2

    # when four processes rate it in batches of 50
    assert sum(race(_rate_in_batches_of_50, [()] * PROCESSES)) == 1000

    # then credits paid what they could, the rest is short, and together they are the
    # period's billable usage: drawn once, however the batches fell
    usage = usage_for_period(customer=priced.customer, at=datetime(2026, 11, 15, tzinfo=UTC))
    billable = sum(usage.charges.usage_by_segment) - usage.charges.allowance_used
    record = UsageDrawDown.objects.get()
    assert record.drawn == D("3.00")
    assert record.drawn + record.short == billable
    wallet = Wallet.objects.get()
    assert wallet.balance == 0
    assert wallet.balance == sum(wallet.entries.values_list("amount", flat=True), D(0))
