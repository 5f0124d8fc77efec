"""The rating engine against the database: queue, batches, rollups, terms and re-rating.

Every expected amount is worked out by hand beside it. NOW is 2026-11-15 12:00 UTC and
the contract runs monthly from 2026-11-01 (tests/billing/conftest.py), so the period is
November: 30 days.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import RatedEvent, UsageRollup
from billing.rating import rater
from billing.rating.rater import usage_rate_pending
from contracts.models import Contract, Price, RateCardVersion, TermsChange
from contracts.rate_cards import price_create, price_update, rate_card_create
from contracts.services import contract_amend, contract_create, contract_end
from metering.models import UnratedEvent
from metering.services import events_ingest
from pricing.cycles import period_holding

from .conftest import (
    GPT_4O_FORMULA,
    GPT_4O_RATES,
    NOVEMBER,
    NOW,
    event,
    ingest,
    queued,
    rate,
    ratings,
    rollups,
    usage_of,
)

DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
AMENDED = datetime(2026, 11, 11, tzinfo=UTC)  # 10 of November's 30 days before, 20 after
MICROSECOND = timedelta(microseconds=1)
CENT = D("0.010000000000")


def day(number: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, number, hour, tzinfo=UTC)


def card_with(card_name: str, **price) -> Price:
    """A rate card (from November 1) holding one price; gpt-4o's price unless told."""
    card = rate_card_create(name=card_name, currency="USD", effective_from=NOVEMBER)
    fields = {
        "name": "gpt-4o",
        "model_pattern": "gpt-4o",
        "rates": GPT_4O_RATES,
        "formula": GPT_4O_FORMULA,
        **price,
    }
    return price_create(version=card.versions.get(), **fields)


def doubled_rates() -> dict:
    """gpt-4o at 5.00 / 20.00 / 2.50 per 1M: CALL costs 0.02."""
    return {
        "rate_in": {"amount": "5.00", "per": 1_000_000},
        "rate_out": {"amount": "20.00", "per": 1_000_000},
        "rate_cached": {"amount": "2.50", "per": 1_000_000},
    }


# -- one event, many events -----------------------------------------------------------------


def test_one_call_costs_exactly_one_cent(contract):
    ingest(event("e1", day(14)))

    assert rate() == 1

    assert ratings() == {"e1": (CENT, None, "", "rated", "gpt-4o", 1)}
    [rollup] = rollups()
    assert rollup == {
        "customer__external_id": "acme",
        "period_start": NOVEMBER,
        "period_end": DECEMBER,
        "status": "rated",
        "terms__number": 1,
        "price__name": "gpt-4o",
        "line": "gpt-4o",
        "model": "gpt-4o",
        "feature": "",
        "reason": "",
        "event_count": 1,
        "amount": CENT,
        "quantity": D(0),
        "input_tokens": 1000,
        "output_tokens": 500,
        "cached_input_tokens": 2000,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 0,
        "first_event_at": day(14),
        "last_event_at": day(14),
    }
    assert queued() == 0


def test_many_events_sum_exactly(contract):
    # Event i has i input and 2i output tokens: i x 0.0000025 + 2i x 0.00001 = i x 0.0000225.
    # Over i = 1..600: 0.0000225 x 600 x 601 / 2 = 0.0000225 x 180,300 = 4.056750.
    ingest(
        *(
            event(
                f"e{i}",
                day(2) + timedelta(minutes=i),
                metrics={"input_tokens": i, "output_tokens": 2 * i},
            )
            for i in range(1, 601)
        )
    )

    assert usage_rate_pending(batch_size=64) == 600

    [rollup] = rollups()
    assert rollup["event_count"] == 600
    assert rollup["amount"] == D("4.056750000000")
    assert (rollup["input_tokens"], rollup["output_tokens"]) == (180_300, 360_600)
    assert rollup["first_event_at"] == day(2) + timedelta(minutes=1)
    assert rollup["last_event_at"] == day(2) + timedelta(minutes=600)
    assert sum(RatedEvent.objects.values_list("amount", flat=True)) == D("4.056750000000")
    assert RatedEvent.objects.get(event__event_id="e7").amount == D("0.000157500000")


def test_amounts_keep_twelve_places_and_round_half_to_even(acme, now):
    # 0.0000005 per 1M tokens is 0.0000000000005 per token: half of the 12th place.
    # 1 token x 0.0000000000005 per token = 0.0000000000005 -> 0.000000000000 (half to even),
    # 3 tokens -> 0.0000000000015 -> 0.000000000002 (half to even, up).
    price = card_with(
        "Tiny",
        name="tiny",
        model_pattern="tiny",
        rates={"rate_in": {"amount": "0.0000005", "per": 1_000_000}},
        formula="input_tokens * rate_in",
    )
    contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=price.version.rate_card, anchor_day=1
    )
    ingest(
        event("one", day(3), model="tiny", metrics={"input_tokens": 1}),
        event("three", day(3), model="tiny", metrics={"input_tokens": 3}),
    )

    rate()

    assert {key: value[0] for key, value in ratings().items()} == {
        "one": D("0.000000000000"),
        "three": D("0.000000000002"),
    }
    assert rollups()[0]["amount"] == D("0.000000000002")


# -- unpriced and failed usage --------------------------------------------------------------


def test_usage_without_a_contract_is_unpriced_with_its_reason(acme, now):
    ingest(event("e1", day(3)), event("e2", day(4), feature="chat"))

    assert rate() == 2

    assert ratings() == {
        "e1": (None, None, "no contract in force", "unpriced", None, None),
        "e2": (None, None, "no contract in force", "unpriced", None, None),
    }
    # Outside a contract, usage falls in the calendar month; one rollup per feature.
    assert sorted(
        (
            r["period_start"],
            r["period_end"],
            r["feature"],
            r["event_count"],
            r["reason"],
            r["amount"],
        )
        for r in rollups()
    ) == [
        (NOVEMBER, DECEMBER, "", 1, "no contract in force", D(0)),
        (NOVEMBER, DECEMBER, "chat", 1, "no contract in force", D(0)),
    ]


def test_a_model_no_price_matches_is_unpriced_and_names_the_rate_card(contract):
    ingest(
        event("e1", day(3), model="llama-3-70b"),
        event("e2", day(3), model="llama-3-70b", feature="search"),
        event("e3", day(3)),
    )

    rate()

    assert ratings() == {
        "e1": (None, None, "no price of Standard v1 matches 'llama-3-70b'", "unpriced", None, 1),
        "e2": (
            None,
            None,
            "no price of Standard v1 matches 'llama-3-70b' and feature 'search'",
            "unpriced",
            None,
            1,
        ),
        "e3": (CENT, None, "", "rated", "gpt-4o", 1),
    }


NEGATIVE = "input_tokens * rate_in - output_tokens * rate_out"


def test_a_formula_that_goes_negative_keeps_the_event_as_failed_with_the_reason(acme, now):
    price = card_with("Odd", formula=NEGATIVE)
    contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=price.version.rate_card, anchor_day=1
    )
    # 1,000 x 0.0000025 - 500 x 0.00001 = 0.0025 - 0.005 = -0.0025
    ingest(
        event("bad", day(3)),
        event("good", day(3), metrics={"input_tokens": 4000, "output_tokens": 500}),
    )

    assert rate() == 2

    reason = (
        f"price {price.pk}: the formula gives -0.0025 for this event, and a charge must not "
        "be negative (a credit is an adjustment, not a price)"
    )
    assert ratings() == {
        "bad": (None, None, reason, "failed", "gpt-4o", 1),
        # 4,000 x 0.0000025 - 500 x 0.00001 = 0.01 - 0.005 = 0.005
        "good": (D("0.005000000000"), None, "", "rated", "gpt-4o", 1),
    }
    failed = UsageRollup.objects.get(status="failed")
    assert (failed.reason, failed.event_count, failed.amount) == (reason, 1, D(0))
    assert queued() == 0


def test_a_fractional_token_count_fails_the_event_and_does_not_stop_the_queue(contract):
    # Ingestion takes decimal strings for any metric; a token count must be whole to be
    # summed, and one such event must not block the events queued after it.
    ingest(
        event("half", day(3), metrics={"input_tokens": "1000.5", "output_tokens": 500}),
        event("whole", day(3)),
    )

    assert rate() == 2

    assert ratings() == {
        "half": (
            None,
            None,
            "input_tokens is 1000.5: token counts are whole numbers",
            "failed",
            "gpt-4o",
            1,
        ),
        "whole": (CENT, None, "", "rated", "gpt-4o", 1),
    }
    failed = UsageRollup.objects.get(status="failed")
    # The whole counts are summed; the fractional one is left out, as the reason says.
    assert (failed.event_count, failed.input_tokens, failed.output_tokens) == (1, 0, 500)
    assert queued() == 0


def test_an_event_that_fails_leaves_the_others_of_its_kind_rated(contract):
    # Events of one kind (customer, terms, version, period, model, feature, properties)
    # share their price and rollup within a batch: one that fails between two that rate
    # goes to the failed rollup alone.
    ingest(
        event("before", day(3)),
        event("half", day(3, 13), metrics={"input_tokens": "1000.5", "output_tokens": 500}),
        event("after", day(3, 14)),
    )

    assert rate() == 3

    reason = "input_tokens is 1000.5: token counts are whole numbers"
    assert ratings() == {
        "before": (CENT, None, "", "rated", "gpt-4o", 1),
        "half": (None, None, reason, "failed", "gpt-4o", 1),
        "after": (CENT, None, "", "rated", "gpt-4o", 1),
    }
    rated = UsageRollup.objects.get(status="rated")
    assert (rated.event_count, rated.amount) == (2, D("0.020000000000"))
    assert UsageRollup.objects.get(status="failed").event_count == 1


def test_a_rater_keeps_the_prices_of_a_locked_version(contract, django_capture_on_commit_callbacks):
    # A locked version's prices can no longer change: once the batch that locked the
    # version has committed, the rater's later batches read no price rows.
    ingest(event("first", day(3)))
    with django_capture_on_commit_callbacks(execute=True):
        rate()  # locks the version, reads its prices, keeps them once committed
    ingest(event("second", day(4)))

    with CaptureQueriesContext(connection) as queries:
        assert rate() == 1

    assert not [query for query in queries if 'FROM "contracts_price"' in query["sql"]]
    assert ratings()["second"] == (CENT, None, "", "rated", "gpt-4o", 1)


# -- exactly once ---------------------------------------------------------------------------


def test_rating_again_rates_nothing_and_changes_nothing(contract):
    ingest(event("e1", day(3)), event("e2", day(4), model="unknown"))
    rate()
    before_rollups, before_ratings = rollups(), ratings()

    assert rate() == 0

    assert rollups() == before_rollups
    assert ratings() == before_ratings


def test_a_resent_event_is_a_duplicate_and_is_not_rated_twice(contract):
    ingest(event("e1", day(3)))
    rate()
    before = rollups()

    result = events_ingest(items=[event("e1", day(3))])

    assert result.count("duplicate") == 1
    assert queued() == 0
    assert rate() == 0
    assert rollups() == before
    assert RatedEvent.objects.count() == 1


def test_an_event_queued_again_with_the_same_terms_moves_no_money(contract):
    ingest(event("e1", day(3)), event("e2", day(4)))
    rate()
    before = rollups()
    UnratedEvent.objects.bulk_create(
        [
            UnratedEvent(event_id=pk, customer_id=customer)
            for pk, customer in RatedEvent.objects.values_list("event_id", "event__customer_id")
        ]
    )

    assert rate() == 2

    assert rollups() == before
    assert RatedEvent.objects.count() == 2


# -- rate card versions and which price ------------------------------------------------------


def test_rating_locks_the_version_and_its_prices_can_no_longer_change(contract, rate_card):
    version = rate_card.versions.get()
    assert version.locked_at is None
    # Read before rating, as a form opened earlier holds it: the lock must still hold.
    price = Price.objects.select_related("version").get(version=version)
    ingest(event("e1", day(3)))

    rate()

    version.refresh_from_db()
    assert version.locked_at == NOW
    for stale_or_fresh in (price, Price.objects.get(pk=price.pk)):
        with pytest.raises(ValidationError) as refused:
            price_update(price=stale_or_fresh, formula="input_tokens * rate_in")
        assert refused.value.messages == [
            "Standard v1 has rated usage and cannot change: schedule a new version instead."
        ]
    assert Price.objects.get(pk=price.pk).formula == GPT_4O_FORMULA


def test_a_version_nothing_was_rated_with_stays_unlocked(contract, rate_card):
    from contracts.rate_cards import rate_card_version_schedule

    later = rate_card_version_schedule(rate_card=rate_card, effective_from=NOW + timedelta(days=1))
    ingest(event("e1", day(3)))

    rate()

    assert dict(RateCardVersion.objects.values_list("number", "locked_at")) == {1: NOW, 2: None}
    assert later.prices.count() == 1


def test_the_most_specific_price_wins_and_the_rating_names_it(acme, now):
    card = rate_card_create(name="Family", currency="USD", effective_from=NOVEMBER)
    version = card.versions.get()
    # Listed first, so "first listed" would pick it: specificity must decide instead.
    family = price_create(
        version=version,
        name="gpt-4o family",
        model_pattern="gpt-4o*",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    mini = price_create(
        version=version,
        name="gpt-4o-mini",
        model_pattern="gpt-4o-mini",
        rates={
            "rate_in": {"amount": "0.15", "per": 1_000_000},
            "rate_out": {"amount": "0.60", "per": 1_000_000},
            "rate_cached": {"amount": "0.075", "per": 1_000_000},
        },
        formula=GPT_4O_FORMULA,
    )
    contract_create(customer=acme, starts_at=NOVEMBER, rate_card=card, anchor_day=1)
    ingest(
        event("mini", day(3), model="gpt-4o-mini"),
        event("dated", day(3), model="gpt-4o-2024-08-06"),
    )

    rate()

    # mini: 1,000 x 0.00000015 + 500 x 0.0000006 + 2,000 x 0.000000075 = 0.00015 + 0.0003 + 0.00015
    assert ratings() == {
        "dated": (CENT, None, "", "rated", "gpt-4o family", 1),
        "mini": (D("0.000600000000"), None, "", "rated", "gpt-4o-mini", 1),
    }
    assert RatedEvent.objects.get(event__event_id="mini").rollup.price_id == mini.pk
    assert RatedEvent.objects.get(event__event_id="dated").rollup.price_id == family.pk


# -- amendments inside a period -------------------------------------------------------------


def test_an_amendment_rates_events_before_its_instant_old_and_at_or_after_it_new(contract):
    premium = card_with("Premium", rates=doubled_rates())
    contract_amend(contract=contract, effective_from=AMENDED, rate_card=premium.version.rate_card)
    ingest(
        event("before", AMENDED - MICROSECOND),
        event("at", AMENDED),
        event("after", AMENDED + MICROSECOND),
    )

    rate()

    assert ratings() == {
        "before": (CENT, None, "", "rated", "gpt-4o", 1),
        "at": (D("0.020000000000"), None, "", "rated", "gpt-4o", 2),
        "after": (D("0.020000000000"), None, "", "rated", "gpt-4o", 2),
    }
    assert sorted((r["terms__number"], r["event_count"], r["amount"]) for r in rollups()) == [
        (1, 1, CENT),
        (2, 2, D("0.020000000000") * 2),
    ]


def test_fixed_fee_is_prorated_by_the_share_of_the_period_each_terms_cover(acme, api, rate_card):
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, fixed_fee=D("30.00")
    )
    contract_amend(contract=contract, effective_from=AMENDED, fixed_fee=D("45.00"))

    usage = usage_of(api)

    # 10 of 30 days at 30.00 = 10.00; 20 of 30 days at 45.00 = 30.00.
    assert usage["fixed_fees"] == "40.000000000000"
    assert usage["total"] == "40.000000000000"
    assert usage["terms"] == [
        {
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-11-11T00:00:00Z",
            "terms": 1,
            "rate_card": "Standard",
        },
        {
            "start": "2026-11-11T00:00:00Z",
            "end": "2026-12-01T00:00:00Z",
            "terms": 2,
            "rate_card": "Standard",
        },
    ]


def test_an_amendment_at_an_odd_instant_prorates_to_the_microsecond(acme, api, rate_card):
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, fixed_fee=D("30.00")
    )
    contract_amend(contract=contract, effective_from=day(11, 6), fixed_fee=D("0"))

    usage = usage_of(api)

    # 10 days 6 hours of 30 days at 30.00 = 10.25; the rest at 0.
    assert usage["fixed_fees"] == "10.250000000000"


def test_the_allowance_is_prorated_and_pooled_over_the_period(acme, api, rate_card):
    contract = contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        included_allowance=D("0.03"),
    )
    contract_amend(contract=contract, effective_from=AMENDED, included_allowance=D("0.06"))
    # Six calls (0.06), all before the amendment: more than the first terms' share (0.01).
    ingest(*(event(f"e{i}", day(5) + timedelta(minutes=i)) for i in range(6)))
    rate()

    usage = usage_of(api)

    # Shares: 0.03 x 10/30 = 0.01 and 0.06 x 20/30 = 0.04; pooled 0.05, all of it used.
    assert usage["usage"] == "0.060000000000"
    assert usage["allowance"] == {
        "included": "0.050000000000",
        "used": "0.050000000000",
        "remaining": "0.000000000000",
    }
    assert usage["total"] == "0.010000000000"


def test_the_minimum_commitment_is_trued_up_over_the_period(acme, api, rate_card):
    contract = contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        minimum_commitment=D("3.00"),
        included_allowance=D("0.03"),
    )
    contract_amend(contract=contract, effective_from=AMENDED, minimum_commitment=D("6.00"))
    ingest(*(event(f"e{i}", day(12) + timedelta(minutes=i)) for i in range(4)))
    rate()

    usage = usage_of(api)

    # Minimum: 3.00 x 10/30 + 6.00 x 20/30 = 1.00 + 4.00 = 5.00. Usage 0.04 (allowance
    # 0.03 covers 0.03 of it, and still counts toward the minimum): true-up 5.00 - 0.04.
    assert usage["minimum_true_up"] == "4.960000000000"
    assert usage["allowance"]["used"] == "0.030000000000"
    # 0.04 - 0.03 + 4.96
    assert usage["total"] == "4.970000000000"


def test_a_price_override_for_the_customer_is_used_from_its_instant(contract, api):
    cheaper = {"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1_000_000}}}
    contract_amend(contract=contract, effective_from=AMENDED, price_overrides=cheaper)
    ingest(event("old", AMENDED - MICROSECOND), event("new", AMENDED))

    rate()

    # new: 1,000 x 0.000002 + 500 x 0.00001 + 2,000 x 0.00000125 = 0.002 + 0.005 + 0.0025
    assert ratings() == {
        "new": (D("0.009500000000"), None, "", "rated", "gpt-4o", 2),
        "old": (CENT, None, "", "rated", "gpt-4o", 1),
    }
    assert usage_of(api)["total"] == "0.019500000000"


def test_the_discount_of_each_terms_comes_off_its_own_usage(contract, api):
    contract_amend(contract=contract, effective_from=AMENDED, discount_percent=D("12.5"))
    ingest(
        event("old", AMENDED - MICROSECOND),
        *(event(f"new{i}", AMENDED + timedelta(hours=i)) for i in range(2)),
    )
    rate()

    usage = usage_of(api)

    # 0.01 before (no discount); 0.02 after, 12.5 % off = 0.0025.
    assert usage["usage"] == "0.030000000000"
    assert usage["discount"] == "0.002500000000"
    assert usage["total"] == "0.027500000000"


# -- tiered prices across an amendment ------------------------------------------------------


def tiered_card(name: str, low: str, high: str) -> Price:
    """A graduated price on input tokens: up to 1,000 at `low` each, above at `high`."""
    return card_with(
        name,
        name="tokens",
        model_pattern="*",
        rates={"rate_unit": {"amount": "1", "per": 1}},
        formula="input_tokens * rate_unit",
        kind="graduated",
        tiers=[{"up_to": "1000", "unit_price": low}, {"up_to": None, "unit_price": high}],
    )


def test_graduated_tier_positions_run_on_over_an_amendment(acme, api, now):
    # pricing/tiers.py's example: 800 units at the old table, then 500 at the new one
    # occupy positions 800..1300: 200 at 2 + 300 at 1 = 700.
    old = tiered_card("Tiered", "1", "0.5")
    new = tiered_card("Tiered B", "2", "1")
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=old.version.rate_card, anchor_day=1
    )
    contract_amend(contract=contract, effective_from=AMENDED, rate_card=new.version.rate_card)
    ingest(
        event("a1", day(5), metrics={"input_tokens": 300}),
        event("a2", AMENDED - MICROSECOND, metrics={"input_tokens": 500}),
        event("b1", AMENDED, metrics={"input_tokens": 500}),
    )

    rate()

    assert ratings() == {
        "a1": (None, D("300.000000000000"), "", "rated", "tokens", 1),
        "a2": (None, D("500.000000000000"), "", "rated", "tokens", 1),
        "b1": (None, D("500.000000000000"), "", "rated", "tokens", 2),
    }
    usage = usage_of(api)
    assert [
        (g["rate_card"], g["terms"], g["events"], g["quantity"], g["amount"])
        for g in usage["by_price"]
    ] == [
        ("Tiered", 1, 2, "800.000000000000", "800.000000000000"),
        ("Tiered B", 2, 1, "500.000000000000", "700.000000000000"),
    ]
    assert usage["usage"] == "1500.000000000000"
    assert usage["total"] == "1500.000000000000"


def test_an_amendment_that_keeps_the_table_charges_what_one_period_would(acme, api, now):
    old = tiered_card("Tiered", "1", "0.5")
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=old.version.rate_card, anchor_day=1
    )
    contract_amend(contract=contract, effective_from=AMENDED, fixed_fee=D("0"))
    ingest(
        event("a", day(5), metrics={"input_tokens": 800}),
        event("b", day(12), metrics={"input_tokens": 500}),
    )
    rate()

    usage = usage_of(api)

    # 1,000 x 1 + 300 x 0.5 = 1,150 in all: 800 before, 200 x 1 + 300 x 0.5 = 350 after.
    assert [g["amount"] for g in usage["by_price"]] == ["800.000000000000", "350.000000000000"]
    assert usage["total"] == "1150.000000000000"


# -- terms changes re-rate ------------------------------------------------------------------


def test_a_contract_created_after_events_arrived_rates_them(acme, rate_card, api):
    ingest(event("early", day(3)), event("late", day(12)))
    rate()
    assert {key: value[3] for key, value in ratings().items()} == {
        "early": "unpriced",
        "late": "unpriced",
    }

    contract_create(customer=acme, starts_at=day(10, 0), rate_card=rate_card, anchor_day=1)

    # Its first period, from November 1, is rated again: the early event stays unpriced.
    assert rate() == 2
    assert ratings() == {
        "early": (None, None, "no contract in force", "unpriced", None, None),
        "late": (CENT, None, "", "rated", "gpt-4o", 1),
    }
    assert TermsChange.objects.filter(applied_at__isnull=True).count() == 0
    usage = usage_of(api)
    assert usage["total"] == "0.010000000000"
    assert [(g["name"], g["events"], g["reason"]) for g in usage["unpriced"]] == [
        ("gpt-4o", 1, "no contract in force")
    ]


def test_a_contract_takes_in_the_usage_of_its_first_period_from_before_it_started(
    acme, rate_card, api
):
    # Periods start on the 5th and the contract on the 10th: the usage from the 5th on
    # belongs to its first period (unpriced until the 10th); the usage before the 5th to
    # what is left of the calendar month, so no instant is in two periods.
    ingest(event("nov3", day(3)), event("nov7", day(7)), event("nov12", day(12)))
    rate()

    contract_create(customer=acme, starts_at=day(10, 0), rate_card=rate_card, anchor_day=5)

    assert rate() == 2  # re-rated from the start of the contract's first period
    periods = {
        rated.event.event_id: (rated.rollup.period_start, rated.rollup.status)
        for rated in RatedEvent.objects.select_related("event", "rollup")
    }
    assert periods == {
        "nov3": (NOVEMBER, "unpriced"),
        "nov7": (day(5, 0), "unpriced"),
        "nov12": (day(5, 0), "rated"),
    }
    before = usage_of(api, at="2026-11-03T00:00:00Z")
    assert before["period"] == {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-05T00:00:00Z",
    }
    assert [(g["events"], g["reason"]) for g in before["unpriced"]] == [(1, "no contract in force")]
    first = usage_of(api, at="2026-11-07T00:00:00Z")
    assert first == usage_of(api)
    assert first["period"] == {
        "start": "2026-11-05T00:00:00Z",
        "end": "2026-12-05T00:00:00Z",
    }
    assert [(t["start"], t["terms"]) for t in first["terms"]] == [
        ("2026-11-05T00:00:00Z", None),
        ("2026-11-10T00:00:00Z", 1),
    ]
    assert [(g["events"], g["reason"]) for g in first["unpriced"]] == [(1, "no contract in force")]
    assert first["total"] == "0.010000000000"


def test_ending_a_contract_rates_the_events_after_its_end_as_unpriced(contract, api):
    ingest(event("inside", day(5)), event("after", day(12)))
    rate()

    contract_end(contract=contract, ends_at=day(10, 0))
    rate()

    assert ratings() == {
        "after": (None, None, "no contract in force", "unpriced", None, None),
        "inside": (CENT, None, "", "rated", "gpt-4o", 1),
    }
    usage = usage_of(api)
    assert (usage["usage"], usage["total"]) == ("0.010000000000", "0.010000000000")
    assert [(g["events"], g["reason"]) for g in usage["unpriced"]] == [(1, "no contract in force")]

    contract_end(contract=contract, ends_at=None)  # re-opened: rated again
    rate()

    assert ratings()["after"] == (CENT, None, "", "rated", "gpt-4o", 1)
    assert usage_of(api)["unpriced"] == []


def test_an_amendment_in_the_past_rates_again_what_it_covers(contract):
    ingest(event("before", AMENDED - MICROSECOND), event("after", day(12)))
    rate()
    premium = card_with("Premium", rates=doubled_rates())

    contract_amend(contract=contract, effective_from=AMENDED, rate_card=premium.version.rate_card)
    assert rate() == 1

    assert ratings() == {
        "after": (D("0.020000000000"), None, "", "rated", "gpt-4o", 2),
        "before": (CENT, None, "", "rated", "gpt-4o", 1),
    }
    # The event's old contribution is taken out of the rollup it was in.
    assert sorted((r["terms__number"], r["event_count"], r["amount"]) for r in rollups()) == [
        (1, 1, CENT),
        (2, 1, D("0.020000000000")),
    ]


# -- which period ---------------------------------------------------------------------------


def _monthly(starts_at: datetime, ends_at: datetime | None = None, anchor_day: int = 5):
    return Contract(starts_at=starts_at, ends_at=ends_at, anchor_day=anchor_day)


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("contracts", "at", "period"),
    [
        pytest.param([], day(15), (NOVEMBER, DECEMBER), id="no-contract-calendar-month"),
        pytest.param(
            [_monthly(day(10, 0))], day(12), (day(5, 0), _utc(2026, 12, 5)), id="in-force"
        ),
        pytest.param(
            [_monthly(day(10, 0))],
            day(7),
            (day(5, 0), _utc(2026, 12, 5)),
            id="before-the-start-in-its-first-period",
        ),
        pytest.param(
            [_monthly(day(10, 0))],
            day(5, 0) - MICROSECOND,
            (NOVEMBER, day(5, 0)),
            id="before-its-first-period-the-month-is-cut",
        ),
        pytest.param(
            [_monthly(_utc(2026, 9, 5), day(20, 0))],
            day(25),
            (day(5, 0), _utc(2026, 12, 5)),
            id="after-the-end-in-its-last-period",
        ),
        pytest.param(
            [_monthly(_utc(2026, 9, 5), day(20, 0))],
            _utc(2026, 12, 10),
            (_utc(2026, 12, 5), _utc(2027, 1, 1)),
            id="after-its-last-period-the-month-is-cut",
        ),
        pytest.param(
            [_monthly(_utc(2026, 9, 5), day(20, 0))],
            _utc(2027, 1, 3),
            (_utc(2027, 1, 1), _utc(2027, 2, 1)),
            id="long-after-calendar-months",
        ),
        pytest.param(
            [_monthly(_utc(2026, 9, 1), day(10, 0), 1), _monthly(day(20, 0), None, 1)],
            day(15),
            (NOVEMBER, DECEMBER),
            id="between-two-contracts-in-their-shared-period",
        ),
    ],
)
def test_the_period_holding_an_instant(contracts, at, period):
    assert period_holding(contracts, at) == period


# -- a crash mid-batch ----------------------------------------------------------------------


def test_a_batch_that_fails_after_storing_leaves_everything_as_it_was(
    contract, monkeypatch, rate_card
):
    ingest(event("e1", day(3)), event("e2", day(4)))
    store = rater._ratings_store

    def store_then_crash(*args, **kwargs):
        store(*args, **kwargs)
        raise RuntimeError("the worker died")

    monkeypatch.setattr(rater, "_ratings_store", store_then_crash)

    with pytest.raises(RuntimeError):
        rate()

    assert queued() == 2
    assert rollups() == []
    assert RatedEvent.objects.count() == 0
    assert rate_card.versions.get().locked_at is None
    monkeypatch.setattr(rater, "_ratings_store", store)
    assert rate() == 2
    assert [r["event_count"] for r in rollups()] == [2]


# -- batches do not matter ------------------------------------------------------------------


@pytest.fixture
def mixed_usage(acme, now):
    """Events of every kind across an amendment: priced, tiered, unpriced and failed."""
    standard = card_with("Mixed", name="gpt-4o", model_pattern="gpt-4o")
    version = standard.version
    price_create(
        version=version, name="odd", model_pattern="odd", rates=GPT_4O_RATES, formula=NEGATIVE
    )
    contract = contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=version.rate_card, anchor_day=1
    )
    contract_amend(contract=contract, effective_from=AMENDED, discount_percent=D("10"))
    models = ["gpt-4o", "gpt-4o", "odd", "llama"]
    ingest(
        *(
            event(
                f"e{i:03}",
                day(2) + timedelta(hours=7 * i),
                model=models[i % 4],
                metrics={
                    "input_tokens": 37 * i + 1,
                    "output_tokens": (11 * i) % 200,
                    "cached_input_tokens": i,
                },
                feature=["", "chat", "search"][i % 3],
            )
            for i in range(40)
        )
    )
    return contract


def _rated_in(sizes: list[int]) -> list[dict]:
    for size in sizes:
        rater._rate_batch(size)
    usage_rate_pending()
    return rollups()


@pytest.mark.django_db
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=45), max_size=8),
    again=st.sets(st.integers(0, 39), max_size=10),
)
def test_any_split_into_batches_gives_the_same_rollups(mixed_usage, sizes, again):
    from django.db import transaction

    with transaction.atomic():
        expected = _rated_in([])
        transaction.set_rollback(True)
    with transaction.atomic():
        first = _rated_in(sizes)
        # Some events queued again (a re-rate with unchanged terms), rated in other batches.
        pks = RatedEvent.objects.filter(
            event__event_id__in=[f"e{i:03}" for i in again]
        ).values_list("event_id", "event__customer_id")
        UnratedEvent.objects.bulk_create(
            [UnratedEvent(event_id=pk, customer_id=customer) for pk, customer in pks]
        )
        second = _rated_in(list(reversed(sizes)))
        transaction.set_rollback(True)

    assert first == expected
    assert second == expected
