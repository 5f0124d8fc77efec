"""Re-rating a period from the event log: a diff first, then the same path as rating."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.models import RatedEvent, UsageRollup
from billing.rating.rerating import period_rerate
from contracts.rate_cards import price_update, rate_card_version_schedule

from .conftest import NOVEMBER, NOW, rate, send

CALL = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}


def _rollups() -> list[dict]:
    return list(UsageRollup.objects.order_by("pk").values())


def _correct_rate_out(rate_card, amount: str):
    """A correction from the period's start: rate_out becomes `amount` per 1M."""
    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=NOVEMBER, correction=True
    )
    price = version.prices.get()
    price_update(price=price, rates={**price.rates, "rate_out": {"amount": amount, "per": 10**6}})
    return version


def test_a_line_only_moved_to_a_new_version_is_not_marked_changed(contract, rate_card):
    # given two calls rated, then a correction version that leaves their price as it was
    send(("e1", 10, "gpt-4o", CALL), ("e2", 5, "gpt-4o", CALL))
    rate()
    _correct_rate_out(rate_card, "10.00")

    diff = period_rerate(customer=contract.customer, at=NOW)

    # then the line is rated by v2 now, for the same events and money: nothing billed moves
    (line,) = diff.lines
    assert (line.old_source, line.new_source) == ("Standard v1, terms 1", "Standard v2, terms 1")
    assert (line.old_amount, line.new_amount) == (Decimal("0.02"), Decimal("0.02"))
    assert (line.changed, diff.changed) == (False, [])


def test_the_preview_shows_each_line_now_and_after_and_stores_nothing(contract, rate_card):
    # given two calls rated at 10.00 per 1M output tokens, then a correction to 12.00
    send(("e1", 10, "gpt-4o", CALL), ("e2", 5, "gpt-4o", CALL), ("e3", 4, "gpt-9", CALL))
    rate()
    _correct_rate_out(rate_card, "12.00")
    before = _rollups()

    # when
    diff = period_rerate(customer=contract.customer, at=NOW)

    # then: per line, the money now and after; the total; and nothing changed
    priced, unpriced = diff.lines
    assert (priced.label, priced.old_events, priced.new_events) == ("gpt-4o · gpt-4o", 2, 2)
    assert (priced.old_amount, priced.new_amount) == (Decimal("0.02"), Decimal("0.022"))
    assert (priced.old_source, priced.new_source) == (
        "Standard v1, terms 1",
        "Standard v2, terms 1",
    )
    assert unpriced.label == "unpriced · gpt-9"
    assert unpriced.new_source == "no price of Standard v2 matches 'gpt-9'"
    assert (diff.old_total, diff.new_total, diff.events) == (Decimal("0.02"), Decimal("0.022"), 3)
    assert diff.applied is False
    assert _rollups() == before
    assert set(RatedEvent.objects.values_list("rollup__price__version__number", flat=True)) == {
        1,
        None,
    }


def test_applying_rerates_through_the_queue_and_then_nothing_differs(contract, rate_card):
    send(("e1", 10, "gpt-4o", CALL), ("e2", 5, "gpt-4o", CALL))
    rate()
    _correct_rate_out(rate_card, "12.00")

    diff = period_rerate(customer=contract.customer, at=NOW, apply=True)
    assert diff.applied is True
    assert rate() == 2

    rated = UsageRollup.objects.filter(event_count__gt=0).get()
    assert (rated.amount, rated.price.version.number, rated.event_count) == (
        Decimal("0.022"),
        2,
        2,
    )
    emptied = UsageRollup.objects.get(price__version__number=1)
    assert (emptied.event_count, emptied.amount, emptied.output_tokens) == (0, Decimal(0), 0)
    again = period_rerate(customer=contract.customer, at=NOW)
    assert [line.changed for line in again.lines] == [False]
    assert again.old_total == again.new_total == Decimal("0.022")


def test_the_api_previews_on_get_and_applies_on_post(contract, rate_card, api):
    send(("e1", 10, "gpt-4o", CALL))
    rate()
    _correct_rate_out(rate_card, "12.00")

    preview = api.get("/api/v1/customers/acme/usage/rerate").json()
    assert preview["total"] == {"now": "0.010000000000", "after": "0.011000000000"}
    assert preview["lines"][0]["now"]["source"] == "Standard v1, terms 1"
    assert preview["applied"] is False
    assert rate() == 0

    bad = api.post("/api/v1/customers/acme/usage/rerate", {"at": "yesterday"}, format="json")
    assert bad.status_code == 400 and "at" in bad.json()
    assert rate() == 0

    applied = api.post(
        "/api/v1/customers/acme/usage/rerate", {"at": "2026-11-10T00:00:00Z"}, format="json"
    )
    assert applied.status_code == 202 and applied.json()["applied"] is True
    assert rate() == 1
    usage = api.get("/api/v1/customers/acme/usage").json()
    assert usage["total"] == "0.011000000000"


@pytest.mark.parametrize("body", [{}, {"at": None}, ["2026-11-10T00:00:00Z"]])
def test_a_post_without_an_instant_is_a_400_that_queues_nothing(contract, rate_card, api, body):
    send(("e1", 10, "gpt-4o", CALL))
    rate()
    _correct_rate_out(rate_card, "12.00")

    response = api.post("/api/v1/customers/acme/usage/rerate", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"at": ["Required: an instant inside the period to re-rate."]}
    assert rate() == 0


def test_the_command_prints_the_diff(contract, rate_card, capsys):
    send(("e1", 10, "gpt-4o", CALL))
    rate()
    _correct_rate_out(rate_card, "12.00")

    call_command("rerate_period", "acme", "--at", datetime(2026, 11, 3, tzinfo=UTC).isoformat())

    out = capsys.readouterr().out.splitlines()
    assert out == [
        "acme, period 2026-11-01 to 2026-12-01: 1 events",
        "* gpt-4o · gpt-4o: 1 events 0.010000000000 -> 1 events 0.011000000000"
        "  [Standard v1, terms 1 -> Standard v2, terms 1]",
        "Total 0.010000000000 -> 0.011000000000 USD",
        "Nothing changed yet: run again with --apply to re-rate.",
    ]
    assert rate() == 0
