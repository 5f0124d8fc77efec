"""Rating batches and draw-down passes racing: a period whose usage changes after a pass
read it is always drawn again, so every wallet ends drawn for all its usage.

PostgreSQL only: threads and processes, each with its own connection. NOW is 2026-11-15
12:00 UTC.
"""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.db import connection, connections, transaction

from billing.models import DrawDownDue, UsageDrawDown
from billing.rating import draw_down, rater
from billing.rating.draw_down import usage_draw_down_pending
from billing.rating.rater import _rate_batch, terms_changes_apply, usage_rate_pending
from contracts.services import contract_create, customer_create
from metering import services as metering_services
from metering.models import UnratedEvent
from wallets import services as wallets_services
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant

from ..wallets.test_wallets import assert_consistent
from .conftest import CALL, NOVEMBER, NOW, event, ingest, usage_of
from .test_rating_races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 30  # seconds: every wait in these tests is bounded


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between connections are tested on PostgreSQL")


@pytest.fixture(autouse=True)
def _no_rating_on_commit(monkeypatch):
    """Ingestion and grants ask for a rating run after commit, which runs eagerly in tests:
    here only the threads under test rate and draw."""
    monkeypatch.setattr(metering_services, "rating_nudge", lambda: None)
    monkeypatch.setattr(wallets_services, "rating_nudge", lambda: None)


class Thread(threading.Thread):
    """Runs `target` on a connection of its own; `result()` joins it (bounded) and returns
    what it returned, or raises what it raised."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self._target_call, self._answer, self._error = target, None, None

    def run(self):
        try:
            self._answer = self._target_call()
        except BaseException as error:  # handed to the test's thread by result()
            self._error = error
        finally:
            connections.close_all()

    def result(self):
        self.join(timeout=WAIT)
        assert not self.is_alive(), "the thread did not finish"
        if self._error is not None:
            raise self._error
        return self._answer


def record() -> tuple[D, D]:
    drawn_down = UsageDrawDown.objects.get()
    return drawn_down.drawn, drawn_down.short


def balance() -> D:
    return Wallet.objects.get().balance


@pytest.fixture
def rated_once(contract, now):
    """acme with 10.00 of credits and one call of 0.01 rated (its period queued for the
    pass, not drawn yet), and a second call of 0.01 waiting to be rated."""
    credit_grant(customer=contract.customer, amount="10", source=CreditGrant.Source.PURCHASED)
    terms_changes_apply()  # as a rater run does first: no event waits on the new contract
    ingest(event("e1", NOW - timedelta(minutes=2)))
    assert _rate_batch(10) == 1
    ingest(event("e2", NOW - timedelta(minutes=1)))
    assert DrawDownDue.objects.count() == 1
    return contract.customer


def test_a_period_a_batch_rates_while_a_pass_draws_it_is_drawn_again_once_it_commits(
    rated_once, monkeypatch
):
    # given a batch that has rated e2 and queued its period, and has not committed yet
    written, commit = threading.Event(), threading.Event()

    @contextmanager
    def atomic_then_wait():
        with transaction.atomic():
            yield
            written.set()  # all of the batch is written; its commit waits
            assert commit.wait(WAIT)

    monkeypatch.setattr(rater, "transaction", SimpleNamespace(atomic=atomic_then_wait))
    batch = Thread(lambda: _rate_batch(10))
    batch.start()
    assert written.wait(WAIT)

    # when a pass runs meanwhile, then another once the batch has committed
    first_pass = usage_draw_down_pending()
    drawn_first = record()
    commit.set()
    assert batch.result() == 1
    second_pass = usage_draw_down_pending()

    # then the first drew e1 only (e2 was not committed), and the second drew e2: the
    # batch's queue row was its own, unseen until it committed (with ON CONFLICT DO
    # NOTHING on a unique row, the first pass took the row e1's batch had queued, and
    # nothing was left to draw e2)
    assert (first_pass, second_pass) == (1, 1)
    assert drawn_first == (D("0.01"), D(0))
    assert record() == (D("0.02"), D(0))
    assert balance() == D("9.98")
    assert not DrawDownDue.objects.exists()
    assert_consistent(Wallet.objects.get())


def test_a_batch_never_waits_for_a_pass_and_what_it_queues_is_drawn(rated_once, monkeypatch):
    # given a pass that has taken the period off the queue and not read its usage yet
    taken, read = threading.Event(), threading.Event()
    take = draw_down.draw_downs_take

    def take_then_wait(chunk):
        periods = take(chunk)
        if periods:
            taken.set()
            assert read.wait(WAIT)
        return periods

    monkeypatch.setattr(draw_down, "draw_downs_take", take_then_wait)
    first_pass = Thread(usage_draw_down_pending)
    first_pass.start()
    assert taken.wait(WAIT)

    # when a batch rates e2 meanwhile: it commits while the pass still holds what it took
    # (a unique queue row made it wait for the pass, as long as the pass's transaction)
    batch = Thread(lambda: _rate_batch(10))
    batch.start()
    batch.join(timeout=10)
    read.set()
    assert not batch.is_alive(), "the batch waited for the pass"
    assert batch.result() == 1
    drawn = first_pass.result()

    # then the pass, reading the usage after the batch committed, drew both calls; it
    # then took the row the batch queued meanwhile, and found nothing more to draw
    assert drawn == 2
    assert not DrawDownDue.objects.exists()
    assert record() == (D("0.02"), D(0))
    assert balance() == D("9.98")
    assert Wallet.objects.get().entries.filter(kind="draw_down").count() == 1
    assert_consistent(Wallet.objects.get())


# --- Many customers, raters and passes at once (processes) ----------------------------

CUSTOMERS = 50
EVENTS = 2_000  # 40 calls a customer, interleaved so that every batch touches many


def _rate_in_small_batches():
    return usage_rate_pending(batch_size=20)


def _draw_while_there_is_rating():
    """Pass after pass, a period at a time, until the raters have rated it all."""
    passes, deadline = 0, time.monotonic() + 60
    while UnratedEvent.objects.exists() and time.monotonic() < deadline:
        if not usage_draw_down_pending(chunk=1):
            time.sleep(0.001)
        passes += 1
    return passes


def test_raters_and_passes_racing_over_many_customers_draw_each_wallet_for_all_its_usage(
    rate_card, now, api, settings
):
    # given 50 customers with 100.00 of credits each, every fourth with 10 % off and an
    # allowance of 0.05 a month, and 2,000 calls of 0.01 to 0.0145, customer after customer
    settings.TOKENTILL_DRAW_DOWN_SECONDS = 60  # raters draw once done: the passes race them
    customers = []
    for number in range(CUSTOMERS):
        customer = customer_create(
            external_id=f"c{number:03}", name=f"Customer {number}", currency="USD"
        )
        terms = {"discount_percent": D("10"), "included_allowance": D("0.05")}
        contract_create(
            customer=customer,
            starts_at=NOVEMBER,
            rate_card=rate_card,
            anchor_day=1,
            **(terms if number % 4 == 0 else {}),
        )
        credit_grant(customer=customer, amount="100", source=CreditGrant.Source.PURCHASED)
        customers.append(customer)
    ingest(
        *[
            event(
                f"e{i:05}",
                NOW - timedelta(minutes=i),
                customer=f"c{i % CUSTOMERS:03}",
                metrics={**CALL, "output_tokens": 500 + 50 * (i % 10)},
            )
            for i in range(EVENTS)
        ]
    )
    terms_changes_apply()

    # when three raters and two passes of their own race over them
    answers = race(
        lambda role: _rate_in_small_batches() if role == "rate" else _draw_while_there_is_rating(),
        [("rate",)] * 3 + [("draw",)] * 2,
    )
    usage_draw_down_pending()  # what is still queued once they stop

    # then every event was rated once, the queues are empty, and each wallet was drawn
    # exactly its period's billable usage (after discount, beyond the allowance) as the
    # usage endpoint shows it
    assert sum(answers[:3]) == EVENTS
    assert not UnratedEvent.objects.exists() and not DrawDownDue.objects.exists()
    records = {r.customer_id: r for r in UsageDrawDown.objects.all()}
    wrong = {}
    for customer in customers:
        usage = usage_of(api, customer.external_id)
        billable = D(usage["usage"]) - D(usage["discount"]) - D(usage["allowance"]["used"])
        record = records[customer.pk]
        wallet = Wallet.objects.get(customer=customer)
        if (record.drawn, record.short, wallet.balance) != (billable, 0, 100 - billable):
            wrong[customer.external_id] = (billable, record.drawn, record.short, wallet.balance)
        assert_consistent(wallet)
    assert wrong == {}
