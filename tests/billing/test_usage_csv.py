"""A customer's usage as CSV (billing.exports) and GET /api/v1/customers/{id}/usage.csv.

NOW is 2026-11-15 12:00 UTC (tests/billing/conftest.py); acme's contract bills calendar
months from November 1, gpt-4o at 2.50 / 10.00 / 1.25 per 1M tokens.
"""

import csv
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.exports import usage_csv
from contracts.services import customer_api_key_create

from .conftest import NOVEMBER, event, ingest, rate, usage_of

URL = "/api/v1/customers/acme/usage.csv"
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
HEADER = (
    "event_id,timestamp,model,feature,input_tokens,output_tokens,cached_input_tokens,"
    "cache_creation_input_tokens,reasoning_tokens,status,price,rate_card,version,amount,"
    "quantity\r\n"
)


def nov(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def hand_case() -> None:
    """Two rated calls at one instant, an unpriced one, one before the period and one that
    is not rated yet."""
    ingest(
        event("b-first", nov(5, 10), feature="=HYPERLINK(1)"),
        event("a-second", nov(5, 10), metrics={"output_tokens": 1_000_000}),
        event("mystery", nov(6), model="mystery-model"),
        event("october", datetime(2026, 10, 31, 23, 59, tzinfo=UTC)),
    )
    rate()
    ingest(event("late", nov(14), feature="chat, beta"))


def text_of(lines) -> str:
    return "".join(lines)


def test_the_csv_lists_each_event_of_the_range_exactly(contract):
    hand_case()

    text = text_of(usage_csv(customer=contract.customer, start=NOVEMBER, end=DECEMBER))

    assert text == HEADER + (
        "b-first,2026-11-05T10:00:00Z,gpt-4o,'=HYPERLINK(1),1000,500,2000,0,0,"
        "rated,gpt-4o,Standard,1,0.010000000000,\r\n"
        "a-second,2026-11-05T10:00:00Z,gpt-4o,,0,1000000,0,0,0,"
        "rated,gpt-4o,Standard,1,10.000000000000,\r\n"
        "mystery,2026-11-06T12:00:00Z,mystery-model,,1000,500,2000,0,0,unpriced,,,,,\r\n"
        'late,2026-11-14T12:00:00Z,gpt-4o,"chat, beta",1000,500,2000,0,0,pending,,,,,\r\n'
    )


def test_the_range_is_half_open(contract):
    hand_case()

    text = text_of(usage_csv(customer=contract.customer, start=nov(5, 10), end=nov(6)))

    assert [row[0] for row in csv.reader(text.splitlines()[1:])] == ["b-first", "a-second"]


def test_events_are_read_in_chunks_and_come_out_the_same(contract):
    hand_case()
    whole = text_of(usage_csv(customer=contract.customer, start=NOVEMBER, end=DECEMBER))

    with CaptureQueriesContext(connection) as queries:
        chunked = text_of(
            usage_csv(customer=contract.customer, start=NOVEMBER, end=DECEMBER, chunk_size=1)
        )

    assert chunked == whole
    # the terms changes not applied yet (none), 4 chunks of one event, one that finds none
    assert len(queries) == 6


def test_the_csv_amounts_add_up_to_the_usage_apis_money_for_the_period(api, contract):
    ingest(*(event(f"e{n}", nov(1 + n % 14), metrics={"input_tokens": 7 * n}) for n in range(40)))
    ingest(event("big", nov(9), metrics={"output_tokens": 123_457, "cached_input_tokens": 3}))
    rate()

    response = api.get(URL)
    rows = list(csv.DictReader(b"".join(response.streaming_content).decode().splitlines()))

    assert len(rows) == 41
    assert sum(Decimal(row["amount"]) for row in rows) == Decimal(usage_of(api)["usage"])


def test_the_download_defaults_to_the_current_period_as_an_attachment(api, contract):
    hand_case()

    response = api.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="usage-acme-20261101T000000Z-20261201T000000Z.csv"'
    )
    assert b"".join(response.streaming_content).decode() == text_of(
        usage_csv(customer=contract.customer, start=NOVEMBER, end=DECEMBER)
    )


def test_the_download_takes_a_range(api, contract):
    hand_case()

    response = api.get(URL, {"start": "2026-11-06T00:00:00Z", "end": "2026-11-15T00:00:00Z"})

    rows = list(csv.reader(b"".join(response.streaming_content).decode().splitlines()))
    assert [row[0] for row in rows[1:]] == ["mystery", "late"]


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        (
            {"start": "2026-11-06"},
            {"start": ["Give an ISO 8601 instant with a timezone, e.g. 2026-10-15T00:00Z."]},
        ),
        (
            {"start": "2026-11-06T00:00Z"},
            {"end": ["Give start and end together, or neither for the current period."]},
        ),
        (
            {"end": "2026-11-06T00:00Z"},
            {"start": ["Give start and end together, or neither for the current period."]},
        ),
        (
            {"start": "2026-11-06T00:00Z", "end": "2026-11-06T00:00Z"},
            {"end": ["Give an instant after start."]},
        ),
        (
            {"start": "2026-11-06T00:00Z", "end": "yesterday"},
            {"end": ["Give an ISO 8601 instant with a timezone, e.g. 2026-10-15T00:00Z."]},
        ),
    ],
)
def test_a_bad_range_is_a_400_naming_the_parameter(api, contract, params, errors):
    response = api.get(URL, params)

    assert response.status_code == 400
    assert response.json() == errors


def test_the_customers_own_key_downloads_it(api, contract):
    hand_case()
    _, key = customer_api_key_create(customer=contract.customer, name="k", created_by="a")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    response = api.get(URL)

    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 5
