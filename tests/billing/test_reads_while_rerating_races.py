"""Reads racing the raters that re-rate a period (issue 12), on PostgreSQL: each read sees
the raters' batches whole or not at all, so it counts every event of the period exactly
once, in its figures or as pending, and never under the terms replaced.

PostgreSQL only: real processes, as in test_rating_races.py. NOW is 2026-11-15 12:00 UTC.
"""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection

from billing.invoicing.preview import invoice_preview
from billing.rating.rater import usage_rate_pending
from billing.rating.rerating import period_rerate
from billing.selectors import usage_for_period
from contracts.models import Customer
from contracts.services import contract_amend, contract_create

from .conftest import NOW, event, ingest, tiered_card
from .test_rating_races import _no_rating_on_commit, race  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
EVENTS = 600


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between processes are tested on PostgreSQL")


@pytest.fixture
def amended(acme, now):
    """acme on a card with gpt-4o (per event) and embeddings (graduated) since October, 600
    November calls rated (gpt-4o, embeddings and an unpriced model in turn), then amended
    from November 1: 10 % off and gpt-4o's output at 20.00 per 1M. Nothing re-rated yet."""
    version = tiered_card("Race", OCTOBER)
    card = version.rate_card
    contract = contract_create(customer=acme, starts_at=OCTOBER, rate_card=card, anchor_day=1)
    models = ["gpt-4o", "embed-small", "llama"]
    ingest(
        *(
            event(
                f"e{i:04}",
                NOVEMBER + timedelta(minutes=31 * i),
                model=models[i % 3],
                feature=["chat", "search"][i % 2],
                metrics={"input_tokens": 1 + (i * 37) % 5000, "output_tokens": (i * 11) % 900},
            )
            for i in range(EVENTS)
        )
    )
    assert usage_rate_pending() == EVENTS
    contract_amend(
        contract=contract,
        effective_from=NOVEMBER,
        discount_percent=D("10"),
        price_overrides={"gpt-4o": {"rate_out": {"amount": "20.00", "per": 1_000_000}}},
    )
    return contract


def _rate_in_small_batches() -> int:
    return usage_rate_pending(batch_size=13)


def _read_until_rated(customer_pk: int) -> tuple[int, list[str]]:
    """Read the usage and the invoice preview until nothing waits; return how many reads
    and what was wrong in any of them."""
    customer = Customer.objects.get(pk=customer_pk)
    reads, wrong = 0, []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        usage = usage_for_period(customer=customer, at=NOW)
        counted = sum(group.events for group in usage.by_model)
        if counted + usage.pending_events != EVENTS:
            wrong.append(f"read {reads}: {counted} counted + {usage.pending_events} pending")
        if any(group.details["terms"] != 2 for group in usage.by_price):
            wrong.append(f"read {reads}: usage under the terms replaced")
        if usage.usage != sum((group.amount for group in usage.by_model), D(0)):
            wrong.append(f"read {reads}: by_model does not add up to the usage")
        preview = invoice_preview(customer=customer, at=NOW)
        if any(line.terms and line.terms.number != 2 for line in preview.lines):
            wrong.append(f"read {reads}: a preview line under the terms replaced")
        reads += 1
        if usage.pending_events == 0:
            break
    return reads, wrong


def _run(what: str, *args):
    """A rater's run, or a reader's, in a process of its own."""
    if what == "rate":
        return _rate_in_small_batches()
    return _read_until_rated(*args)


def test_reads_racing_two_raters_count_each_event_once_and_never_under_old_terms(amended):
    customer_pk = amended.customer_id

    rated_a, rated_b, (reads, wrong) = race(_run, [("rate",), ("rate",), ("read", customer_pk)])

    assert rated_a + rated_b == EVENTS  # every event rated again, once
    assert wrong == []
    assert reads >= 2
    # and the period is now as rated from scratch: re-rating it would change nothing
    again = period_rerate(customer=amended.customer, at=NOW)
    assert not again.changed
    assert again.old_total == again.new_total
