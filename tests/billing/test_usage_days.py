"""The per-day rated money (UsageDay): moved by the rater as it rates and re-rates, read
less the events that wait (billing.selectors.usage_days)."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

from billing.models import UsageDay
from billing.rating.rerating import period_rerate
from billing.selectors import usage_days
from metering.services import events_queue_for_rating

from .conftest import NOVEMBER, NOW, event, ingest, rate
from .test_rerating import CALL, _correct_rate_out

#: 1,000 output tokens at 10.00 per 1M: 0.01
TEN_MILLIS = {"output_tokens": 1000}


def days() -> list[tuple]:
    return list(
        UsageDay.objects.order_by("day", "model", "feature").values_list(
            "day", "model", "feature", "event_count", "amount"
        )
    )


def test_rating_adds_each_events_amount_to_its_utc_day_model_and_feature(contract):
    ingest(
        event("e1", datetime(2026, 11, 3, 23, 59, tzinfo=UTC), feature="chat"),
        event("e2", datetime(2026, 11, 3, 1, tzinfo=UTC), feature="chat"),
        event("e3", datetime(2026, 11, 4, 0, 0, tzinfo=UTC), feature="chat"),
        event("e4", datetime(2026, 11, 4, 9, tzinfo=UTC), metrics=TEN_MILLIS),
        event("e5", datetime(2026, 11, 4, 9, tzinfo=UTC), model="gpt-9"),  # no price
    )

    rate()

    # CALL costs 0.01 exactly; unpriced usage has no amount and no row
    assert days() == [
        (date(2026, 11, 3), "gpt-4o", "chat", 2, D("0.02")),
        (date(2026, 11, 4), "gpt-4o", "", 1, D("0.01")),
        (date(2026, 11, 4), "gpt-4o", "chat", 1, D("0.01")),
    ]


def test_re_rating_moves_the_days_money_and_never_counts_an_event_twice(contract, rate_card):
    ingest(event("e1", NOW.replace(hour=1)), event("e2", NOW.replace(hour=2)))
    rate()
    _correct_rate_out(rate_card, "12.00")

    period_rerate(customer=contract.customer, at=NOW, apply=True)
    rate()

    # Each call is now 0.0025 + 500 x 12.00/1M + 0.0025 = 0.011: two are 0.022
    assert days() == [(date(2026, 11, 15), "gpt-4o", "", 2, D("0.022"))]


def test_events_waiting_to_be_rated_again_are_left_out_of_the_read(contract):
    ingest(
        event("e1", datetime(2026, 11, 2, 8, tzinfo=UTC), feature="chat"),
        event("e2", datetime(2026, 11, 9, 8, tzinfo=UTC), feature="chat"),
        event("e3", datetime(2026, 11, 9, 9, tzinfo=UTC), feature="chat"),
    )
    rate()
    # e2 and e3 go back in the queue, as a terms change or a re-rate puts them
    events_queue_for_rating(
        customer_id=contract.customer.pk, start=datetime(2026, 11, 9, tzinfo=UTC)
    )

    read = usage_days(customer=contract.customer, first=date(2026, 11, 1), last=date(2026, 11, 30))

    assert [(row.day, row.events, row.amount) for row in read] == [
        (date(2026, 11, 2), 1, D("0.01"))
    ]
    # The stored rows keep them until they are rated again
    assert [row[3] for row in days()] == [1, 2]


def test_the_read_keeps_to_its_days(contract):
    ingest(
        event("e1", NOVEMBER, feature="chat"),
        event("e2", datetime(2026, 11, 5, 12, tzinfo=UTC), metrics=CALL),
        event("e3", datetime(2026, 11, 6, 0, tzinfo=UTC)),
    )
    rate()

    read = usage_days(customer=contract.customer, first=date(2026, 11, 2), last=date(2026, 11, 5))

    assert [(row.day, row.amount) for row in read] == [(date(2026, 11, 5), D("0.01"))]
