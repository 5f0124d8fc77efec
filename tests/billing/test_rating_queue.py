"""The rating queue taken grouped by customer: the customers of the oldest events first,
each with its own events, oldest first; on PostgreSQL, raters at once never take the same
event and each still gets a full batch. NOW is 2026-11-15 12:00 UTC."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from billing.models import RatedEvent
from billing.rating.rater import _rate_batch, terms_changes_apply
from billing.rating.store import batch_choose, queue_forget, queue_take
from contracts.services import contract_create, customer_create
from metering import services as metering_services
from metering.models import UnratedEvent, UsageEvent

from .conftest import NOVEMBER, NOW, event, ingest


@pytest.fixture(autouse=True)
def _no_rating_on_commit(monkeypatch):
    """Ingestion asks for a rating run after commit: here the queue must stay full."""
    monkeypatch.setattr(metering_services, "rating_nudge", lambda: None)


@pytest.fixture(autouse=True)
def _rater_looks_afresh():
    """A rater keeps what it saw of the queue between batches: each test starts as a new
    rater would."""
    queue_forget()


def interleaved(names: list[str], each: int) -> None:
    """`each` events of every customer named, stored in turn (a1, b1, a2, b2, ...), as
    ingestion interleaves customers; each customer's n-th event at NOW less n minutes,
    its id "<name>-<n>"."""
    ingest(
        *[
            event(f"{name}-{n}", NOW - timedelta(minutes=each - n), customer=name)
            for n in range(1, each + 1)
            for name in names
        ]
    )


def ids(pks) -> list[str]:
    """The event ids of these queue rows, in the order of their primary keys."""
    found = dict(UsageEvent.objects.filter(pk__in=list(pks)).values_list("pk", "event_id"))
    return [found[pk] for pk in sorted(pks)]


@pytest.fixture
def customers(rate_card):
    def make(*names: str) -> None:
        for name in names:
            customer = customer_create(external_id=name, name=name, currency="USD")
            contract_create(
                customer=customer, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1
            )
        terms_changes_apply()  # the contracts', as a rater's run does first

    return make


def test_choosing_takes_each_customer_in_turn_by_their_oldest_event():
    # queue order: a b c a b a, as event pks by customer pk
    queued = {10: [1, 4, 6], 20: [2, 5], 30: [3]}

    assert batch_choose(queued, 4) == {10: [1, 4, 6], 20: [2]}  # all of a's, b's oldest
    assert queued == {20: [5], 30: [3]}  # what is left
    assert batch_choose(queued, 1) == {30: [3]}  # the oldest event left, always
    assert batch_choose(queued, 10) == {20: [5]}
    assert queued == {}
    assert batch_choose({}, 10) == {}


def test_a_batch_takes_the_customers_of_the_oldest_events_with_their_own_events(customers):
    customers("a", "b", "c")
    interleaved(["a", "b", "c"], 3)  # a-1 b-1 c-1 a-2 b-2 c-2 a-3 b-3 c-3

    assert _rate_batch(4) == 4
    assert ids(RatedEvent.objects.values_list("event_id", flat=True)) == [
        "a-1", "b-1", "a-2", "a-3"
    ]  # fmt: skip
    assert _rate_batch(4) == 4  # b's last two, then c's oldest two
    assert _rate_batch(4) == 1
    assert ids(UnratedEvent.objects.values_list("event_id", flat=True)) == []
    assert RatedEvent.objects.count() == 9


def test_the_oldest_event_is_in_the_batch_whatever_its_customer_has_queued(customers):
    customers("small", "big")
    ingest(event("small-1", NOW - timedelta(hours=1), customer="small"))
    ingest(*[event(f"big-{n}", NOW - timedelta(minutes=n), customer="big") for n in range(8)])

    with transaction.atomic():
        taken = ids(queue_take(3))

    assert taken[0] == "small-1"  # stored first: the oldest in the queue
    assert sorted(taken[1:]) == ["big-0", "big-1"]  # then big's oldest two


def test_a_single_customers_queue_is_taken_in_the_order_it_was_stored(customers):
    customers("acme")
    ingest(*[event(f"e{n}", NOW - timedelta(minutes=n)) for n in range(6)])

    with transaction.atomic():
        first = ids(queue_take(4))
    with transaction.atomic():
        second = ids(queue_take(4))

    assert (first, second) == (["e0", "e1", "e2", "e3"], ["e4", "e5"])


def test_a_batch_that_fails_is_taken_again_first(customers, monkeypatch):
    from billing.rating import rater

    customers("a", "b")
    interleaved(["a", "b"], 3)
    store = rater._ratings_store

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(rater, "_ratings_store", fail)
    with pytest.raises(RuntimeError):
        _rate_batch(3)
    monkeypatch.setattr(rater, "_ratings_store", store)

    assert _rate_batch(3) == 3  # a's again, the oldest: not b's after them
    assert ids(RatedEvent.objects.values_list("event_id", flat=True)) == ["a-1", "a-2", "a-3"]


# --- Two raters at once (PostgreSQL): each holds its batch while the other takes -------


def take_while_other_holds(size: int) -> tuple[list[int], list[int]]:
    """A first rater takes `size` and holds them uncommitted while a second takes `size`
    in another connection; both then commit. What each took."""
    held, second_done = threading.Event(), threading.Event()
    taken: dict[str, list[int]] = {}

    def first():
        try:
            with transaction.atomic():
                taken["first"] = queue_take(size)
                held.set()
                assert second_done.wait(timeout=30)
        finally:
            held.set()
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(timeout=30)
    try:
        with transaction.atomic():
            taken["second"] = queue_take(size)
    finally:
        second_done.set()
        thread.join(timeout=30)
    return taken["first"], taken["second"]


@pytest.fixture
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("raters at once are tested on PostgreSQL")


@pytest.mark.usefixtures("_postgres_only")
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_rater_takes_the_next_customers_never_the_events_another_holds(customers):
    customers("a", "b", "c")
    interleaved(["a", "b", "c"], 4)

    first, second = take_while_other_holds(4)

    assert ids(first) == ["a-1", "a-2", "a-3", "a-4"]
    # it chose a's, held, then chose again without a: b's
    assert ids(second) == ["b-1", "b-2", "b-3", "b-4"]
    assert ids(UnratedEvent.objects.values_list("event_id", flat=True)) == [
        "c-1", "c-2", "c-3", "c-4"
    ]  # fmt: skip


@pytest.mark.usefixtures("_postgres_only")
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_rater_on_one_customers_queue_takes_the_events_after_those_held(customers):
    customers("acme")
    ingest(*[event(f"e{n}", NOW - timedelta(minutes=n)) for n in range(10)])

    first, second = take_while_other_holds(4)

    assert ids(first) == ["e0", "e1", "e2", "e3"]
    # it chose the held e0-e3, then nothing of another customer: the oldest free events
    assert ids(second) == ["e4", "e5", "e6", "e7"]
    assert UnratedEvent.objects.count() == 2


@pytest.mark.usefixtures("_postgres_only")
@pytest.mark.postgres
@pytest.mark.django_db
def test_an_event_queued_again_is_taken_first_by_a_rater_that_kept_the_queue(customers):
    customers("a", "b", "c")
    interleaved(["a", "b", "c"], 3)  # a-1 b-1 c-1 a-2 b-2 c-2 a-3 b-3 c-3
    with transaction.atomic():
        first = queue_take(3)  # a's; the rater keeps the rest of what it read
    # a-1 queued again, as a re-rating queues its events: its pk is older than the rest
    again = UsageEvent.objects.get(event_id="a-1")
    UnratedEvent.objects.create(event=again, customer_id=again.customer_id)

    with transaction.atomic():
        second = queue_take(3)

    assert ids(first) == ["a-1", "a-2", "a-3"]
    assert ids(second) == ["a-1", "b-1", "b-2"]  # the oldest first, then b's oldest


@pytest.mark.usefixtures("_postgres_only")
@pytest.mark.django_db
def test_arrays_sent_as_text_come_back_exactly():
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from billing.rating.store import pg_array

    texts = ['say "no"', "back\\slash", "NULL", "", "a,b{c}", None]
    numbers = [Decimal("0.000000000001"), Decimal("-12.500000000000"), None, Decimal("1E+3")]
    instants = [datetime(2026, 11, 15, 12, 0, 0, 1, tzinfo=UTC), None]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text[], %s::numeric[], %s::timestamptz[], %s::date[], %s::bigint[]",
            [
                pg_array(texts),
                pg_array(numbers),
                pg_array(instants),
                pg_array([date(2026, 11, 1)]),
                pg_array([2**40, -1]),
            ],
        )
        row = cursor.fetchone()

    assert row == (texts, numbers, instants, [date(2026, 11, 1)], [2**40, -1])
