"""GET /api/v1/customers/{external_id}/usage: a period's rated usage, exactly, as text.

NOW is 2026-11-15 12:00 UTC (tests/billing/conftest.py).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_create

from .conftest import GPT_4O_FORMULA, GPT_4O_RATES, event, ingest, rate, rollups, usage_of

URL = "/api/v1/customers/acme/usage"
TOKENS = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "cached_input_tokens": 2000,
    "cache_creation_input_tokens": 0,
    "reasoning_tokens": 0,
}
NO_TOKENS = dict.fromkeys(TOKENS, 0)
ZERO = "0.000000000000"


def nov(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def group(name: str, *, events=1, amount="0.010000000000", tokens=TOKENS, **details) -> dict:
    return {
        "name": name,
        **details,
        "events": events,
        "quantity": ZERO,
        "amount": amount,
        "tokens": tokens,
    }


def test_one_call_shows_as_one_cent_everywhere(api, contract):
    ingest(event("e1", nov(14), feature="chat"))
    rate()

    usage = usage_of(api)

    price = group("gpt-4o", rate_card="Standard", version=1, kind="per_event", terms=1)
    assert usage == {
        "customer_id": "acme",
        "currency": "USD",
        "period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        "usage": "0.010000000000",
        "discount": ZERO,
        "allowance": {"included": ZERO, "used": ZERO, "remaining": ZERO},
        "fixed_fees": ZERO,
        "minimum_true_up": ZERO,
        "total": "0.010000000000",
        "terms": [
            {
                "start": "2026-11-01T00:00:00Z",
                "end": "2026-12-01T00:00:00Z",
                "terms": 1,
                "rate_card": "Standard",
            }
        ],
        "by_price": [price],
        "by_model": [group("gpt-4o")],
        "by_feature": [group("chat")],
        "unpriced": [],
        "failed": [],
        "pending_events": 0,
    }


def test_many_calls_sum_exactly_by_price_model_and_feature(api, contract):
    # 250 calls of 0.01 on gpt-4o ("chat" and "search" alternately) and 250 calls on
    # gpt-4o-mini, which the Standard card does not price.
    ingest(
        *(
            event(f"a{i}", nov(2) + timedelta(minutes=i), feature=["chat", "search"][i % 2])
            for i in range(250)
        ),
        *(event(f"b{i}", nov(3) + timedelta(minutes=i), model="gpt-4o-mini") for i in range(250)),
    )
    rate()

    usage = usage_of(api)

    assert usage["usage"] == "2.500000000000"
    assert usage["total"] == "2.500000000000"
    times = {name: value * 250 for name, value in TOKENS.items()}
    half = {name: value * 125 for name, value in TOKENS.items()}
    assert [(g["name"], g["events"], g["amount"], g["tokens"]) for g in usage["by_price"]] == [
        ("gpt-4o", 250, "2.500000000000", times)
    ]
    assert [(g["name"], g["events"], g["amount"], g["tokens"]) for g in usage["by_model"]] == [
        ("gpt-4o", 250, "2.500000000000", times),
        ("gpt-4o-mini", 250, ZERO, times),
    ]
    assert [(g["name"], g["events"], g["amount"], g["tokens"]) for g in usage["by_feature"]] == [
        ("", 250, ZERO, times),
        ("chat", 125, "1.250000000000", half),
        ("search", 125, "1.250000000000", half),
    ]
    assert usage["unpriced"] == [
        group(
            "gpt-4o-mini",
            events=250,
            amount=ZERO,
            tokens=times,
            feature="",
            reason="no price of Standard v1 matches 'gpt-4o-mini'",
        )
    ]


def test_usage_without_a_contract_is_listed_unpriced_and_never_in_the_total(api, acme, now):
    ingest(event("e1", nov(3)), event("e2", nov(4)), event("e3", nov(5), model="o3"))
    rate()

    usage = usage_of(api)

    # Outside a contract the period is the calendar month, with no terms in it.
    assert usage["period"] == {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-12-01T00:00:00Z",
    }
    assert usage["terms"] == [
        {
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-12-01T00:00:00Z",
            "terms": None,
            "rate_card": None,
        }
    ]
    doubled = {name: value * 2 for name, value in TOKENS.items()}
    assert usage["unpriced"] == [
        group(
            "gpt-4o",
            events=2,
            amount=ZERO,
            tokens=doubled,
            feature="",
            reason="no contract in force",
        ),
        group("o3", amount=ZERO, feature="", reason="no contract in force"),
    ]
    assert (usage["usage"], usage["total"], usage["by_price"]) == (ZERO, ZERO, [])


def test_failed_usage_is_listed_with_the_rating_error_and_never_in_the_total(api, acme, now):
    card = rate_card_create(
        name="Odd", currency="USD", effective_from=datetime(2026, 11, 1, tzinfo=UTC)
    )
    price = price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula="input_tokens * rate_in - output_tokens * rate_out",
    )
    contract_create(customer=acme, starts_at=datetime(2026, 11, 1, tzinfo=UTC), rate_card=card)
    # -0.0025 each (1,000 x 0.0000025 - 500 x 0.00001); 0.01 - 0.005 = 0.005 for the other.
    ingest(
        event("bad1", nov(3)),
        event("bad2", nov(4)),
        event("good", nov(5), metrics={"input_tokens": 4000, "output_tokens": 500}),
    )
    rate()

    usage = usage_of(api)

    assert usage["failed"] == [
        group(
            "gpt-4o",
            events=2,
            amount=ZERO,
            tokens={name: value * 2 for name, value in TOKENS.items()},
            feature="",
            reason=(
                f"price {price.pk}: the formula gives -0.0025 for this event, and a charge "
                "must not be negative (a credit is an adjustment, not a price)"
            ),
        )
    ]
    assert (usage["usage"], usage["total"]) == ("0.005000000000", "0.005000000000")
    assert usage["unpriced"] == []


def test_events_not_rated_yet_are_counted_as_pending(api, contract):
    ingest(event("e1", nov(3)), event("e2", nov(4)))

    usage = usage_of(api)

    assert (usage["pending_events"], usage["total"]) == (2, ZERO)
    rate()
    assert usage_of(api)["pending_events"] == 0


# -- periods ----------------------------------------------------------------------------------


@pytest.fixture
def quarterly(acme, now):
    """From 2026-09-01, quarters anchored on the 15th of February: ... Aug 15, Nov 15, ...;
    300.00 a quarter. The rate card has prices from August 1."""
    card = rate_card_create(
        name="Quarterly", currency="USD", effective_from=datetime(2026, 8, 1, tzinfo=UTC)
    )
    price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    return contract_create(
        customer=acme,
        starts_at=datetime(2026, 9, 1, tzinfo=UTC),
        rate_card=card,
        billing_cycle="quarterly",
        anchor_day=15,
        anchor_month=2,
        fixed_fee=D("300.00"),
    )


def test_a_quarterly_contract_answers_for_the_quarter_holding_now(api, quarterly):
    ingest(event("this", nov(15, 0)), event("last", nov(15, 0) - timedelta(microseconds=1)))
    rate()

    usage = usage_of(api)

    assert usage["period"] == {
        "start": "2026-11-15T00:00:00Z",
        "end": "2027-02-15T00:00:00Z",
    }
    assert (usage["usage"], usage["fixed_fees"], usage["total"]) == (
        "0.010000000000",
        "300.000000000000",
        "300.010000000000",
    )
    assert sorted((r["period_start"], r["period_end"], r["event_count"]) for r in rollups()) == [
        (datetime(2026, 8, 15, tzinfo=UTC), nov(15, 0), 1),
        (nov(15, 0), datetime(2027, 2, 15, tzinfo=UTC), 1),
    ]


def test_at_asks_for_a_previous_period_whose_fee_is_prorated_from_the_contract_start(
    api, quarterly
):
    ingest(event("last", nov(1)), event("this", nov(15, 0)))
    rate()

    usage = usage_of(api, at="2026-11-14T23:59:59.999999Z")

    # Aug 15 to Nov 15 is 92 days; the contract covers Sep 1 to Nov 15, 75 of them:
    # 300.00 x 75 / 92 = 244.5652173913043478... = 244.565217391304 at 12 places.
    assert usage["period"] == {
        "start": "2026-08-15T00:00:00Z",
        "end": "2026-11-15T00:00:00Z",
    }
    assert usage["terms"] == [
        {
            "start": "2026-08-15T00:00:00Z",
            "end": "2026-09-01T00:00:00Z",
            "terms": None,
            "rate_card": None,
        },
        {
            "start": "2026-09-01T00:00:00Z",
            "end": "2026-11-15T00:00:00Z",
            "terms": 1,
            "rate_card": "Quarterly",
        },
    ]
    assert usage["fixed_fees"] == "244.565217391304"
    assert (usage["usage"], usage["total"]) == ("0.010000000000", "244.575217391304")
    # Any instant of the period gives the same answer; its end belongs to the next one.
    assert usage_of(api, at="2026-08-15T00:00:00Z") == usage
    assert usage_of(api, at="2026-10-01T05:00:00-04:00") == usage
    assert usage_of(api, at="2026-11-15T00:00:00Z")["period"]["start"] == ("2026-11-15T00:00:00Z")


# -- refusals ---------------------------------------------------------------------------------

AT_MESSAGE = {"at": ["Give an ISO 8601 instant with a timezone, e.g. 2026-10-15T00:00Z."]}


@pytest.mark.parametrize(
    "at",
    [
        pytest.param("yesterday", id="words"),
        pytest.param("", id="empty"),
        pytest.param("2026-11-31T00:00:00Z", id="no-such-day"),
        pytest.param("2026-11-15T00:00:00", id="no-timezone"),
        pytest.param("2026-11-15", id="a-date"),
    ],
)
def test_a_bad_at_is_400_with_a_message(api, contract, at):
    response = api.get(URL, {"at": at})

    assert response.status_code == 400
    assert response.json() == AT_MESSAGE


@pytest.mark.parametrize(
    "at",
    [
        pytest.param("9999-12-15T00:00:00Z", id="last-month-of-the-calendar"),
        pytest.param("9999-12-31T23:00:00-05:00", id="past-the-calendar-in-utc"),
    ],
)
def test_an_at_beyond_the_calendar_is_400_not_a_crash(api, contract, at):
    response = api.get(URL, {"at": at})

    assert response.status_code == 400
    assert response.json() == {"at": ["Give an instant before 9000-01-01T00:00Z."]}


def test_an_unknown_customer_is_404(api, contract):
    response = api.get("/api/v1/customers/nobody/usage")

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer with external_id 'nobody'."}


def test_no_key_is_401_and_a_bad_key_is_401(contract):
    client = APIClient()

    missing = client.get(URL)
    client.credentials(HTTP_AUTHORIZATION="Bearer tt_zzzzzzzz_" + "a" * 43)
    wrong = client.get(URL)

    assert (missing.status_code, missing["WWW-Authenticate"]) == (401, "Bearer")
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid or revoked API key."})
