"""Rated usage in the admin: read-only lists where unpriced and failed usage shows its reason,
money exact where it explains a line, and the draw-down records of what credits paid."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.models import RatedEvent, UsageDrawDown, UsageRollup
from contracts.services import customer_create
from tests.admin_pages import shown
from wallets.services import credit_grant

from .conftest import event, ingest, rate, rollups

ROLLUPS_URL = "/admin/billing/usagerollup/"
RATED_URL = "/admin/billing/ratedevent/"
DRAW_DOWNS_URL = "/admin/billing/usagedrawdown/"


def nov(day: int) -> datetime:
    return datetime(2026, 11, day, 12, tzinfo=UTC)


@pytest.fixture
def usage(contract):
    """acme: two priced calls and one of a model the card does not price; globex: one call
    and no contract."""
    customer_create(external_id="globex", name="Globex", currency="USD")
    ingest(
        event("a1", nov(3)),
        event("a2", nov(4), feature="chat"),
        event("a3", nov(5), model="llama-3-70b"),
        event("g1", nov(6), customer="globex"),
    )
    rate()


def listed(response) -> list[tuple]:
    """(customer, status, model, events, reason) of each row the changelist shows."""
    return sorted(
        (r.customer.external_id, r.status, r.model, r.event_count, r.reason)
        for r in response.context["cl"].result_list
    )


def test_the_rollup_list_shows_unpriced_usage_with_its_reason(admin_client, usage):
    response = admin_client.get(ROLLUPS_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Unpriced: no price of Standard v1 matches &#x27;llama-3-70b&#x27;" in page
    assert "Unpriced: no contract in force" in page
    assert "gpt-4o<br><small>Standard v1</small>" in page  # the price it was rated by
    assert "gpt-4o<br><small>chat · Standard v1</small>" in page  # the feature, then the price
    assert '<span style="white-space: nowrap">0.010000000000 USD</span>' in page  # exact
    assert listed(response) == [
        ("acme", "rated", "gpt-4o", 1, ""),
        ("acme", "rated", "gpt-4o", 1, ""),
        ("acme", "unpriced", "llama-3-70b", 1, "no price of Standard v1 matches 'llama-3-70b'"),
        ("globex", "unpriced", "gpt-4o", 1, "no contract in force"),
    ]


def test_unpriced_usage_is_one_filter_away(admin_client, usage):
    response = admin_client.get(ROLLUPS_URL, {"status__exact": "unpriced"})

    assert response.status_code == 200
    assert listed(response) == [
        ("acme", "unpriced", "llama-3-70b", 1, "no price of Standard v1 matches 'llama-3-70b'"),
        ("globex", "unpriced", "gpt-4o", 1, "no contract in force"),
    ]
    assert (
        admin_client.get(ROLLUPS_URL, {"status__exact": "failed"}).context["cl"].result_count == 0
    )


def test_rollups_are_searched_by_customer_and_model_and_filtered_by_period(admin_client, usage):
    by_customer = admin_client.get(ROLLUPS_URL, {"q": "globex"})
    by_model = admin_client.get(ROLLUPS_URL, {"q": "llama"})
    november = admin_client.get(ROLLUPS_URL, {"period": "2026-11-01T00:00:00+00:00"})
    october = admin_client.get(ROLLUPS_URL, {"period": "2026-10-01T00:00:00+00:00"})

    assert [row[0] for row in listed(by_customer)] == ["globex"]
    assert [row[2] for row in listed(by_model)] == ["llama-3-70b"]
    assert len(listed(november)) == 4
    assert listed(october) == []
    assert "from 2026-11-01 00:00 UTC" in november.content.decode()


def test_a_rollup_can_be_looked_at_but_not_added_changed_or_deleted(admin_client, usage):
    rollup = UsageRollup.objects.get(status="unpriced", customer__external_id="globex")
    before = rollups()

    page = admin_client.get(f"{ROLLUPS_URL}{rollup.pk}/change/")
    add = admin_client.get(f"{ROLLUPS_URL}add/")
    change = admin_client.post(f"{ROLLUPS_URL}{rollup.pk}/change/", {"event_count": "0"})
    delete = admin_client.post(f"{ROLLUPS_URL}{rollup.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        ROLLUPS_URL, {"action": "delete_selected", "_selected_action": [rollup.pk], "post": "yes"}
    )

    assert page.status_code == 200
    assert "no contract in force" in page.content.decode()
    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert bulk.status_code in (200, 302)
    assert rollups() == before


def test_rated_events_show_their_amount_rollup_and_reason(admin_client, usage):
    response = admin_client.get(RATED_URL)
    found = admin_client.get(RATED_URL, {"q": "a3"})

    assert response.status_code == 200
    rows = {
        (rated.event.event_id, rated.amount, rated.reason)
        for rated in response.context["cl"].result_list
    }
    assert rows == {
        ("a1", D("0.010000000000"), ""),
        ("a2", D("0.010000000000"), ""),
        ("a3", None, "no price of Standard v1 matches 'llama-3-70b'"),
        ("g1", None, "no contract in force"),
    }
    assert [rated.event.event_id for rated in found.context["cl"].result_list] == ["a3"]
    rated = RatedEvent.objects.get(event__event_id="a3")
    assert admin_client.get(f"{RATED_URL}{rated.pk}/change/").status_code == 200
    assert admin_client.get(f"{RATED_URL}add/").status_code == 403
    assert admin_client.post(f"{RATED_URL}{rated.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RatedEvent.objects.count() == 4


def test_staff_without_permission_cannot_see_rated_usage(client, django_user_model, usage):
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)

    assert client.get(ROLLUPS_URL).status_code == 403
    assert client.get(RATED_URL).status_code == 403


# --- money on screen: rated usage is exact, what credits paid is billed money ---------------

MINOR_MONEY = re.compile(r"\d\.\d{2} (USD|EUR|JPY)\b")


def test_rated_usage_shows_its_exact_money_with_the_currency(admin_client, usage):
    rollup = UsageRollup.objects.filter(status="rated").first()

    rollups_page = admin_client.get(ROLLUPS_URL)
    rated_page = admin_client.get(RATED_URL)
    rollup_page = admin_client.get(f"{ROLLUPS_URL}{rollup.pk}/change/")

    # each call: 1,000 output tokens at 10.00 per 1M = 0.01, written with its 12 places
    assert sorted(shown(rollups_page, "money")) == [
        "0.010000000000 USD",
        "0.010000000000 USD",
        "Unpriced: no contract in force",
        "Unpriced: no price of Standard v1 matches 'llama-3-70b'",
    ]
    assert sorted(shown(rollups_page, "events")) == ["1", "1", "1", "1"]
    assert sorted(shown(rated_page, "amount_shown")) == [
        "-", "-", "0.010000000000 USD", "0.010000000000 USD",
    ]  # fmt: skip
    assert shown(rollup_page, "amount_shown") == ["0.010000000000 USD"]
    for page in (rollups_page, rated_page, rollup_page):
        assert MINOR_MONEY.search(page.content.decode()) is None  # never both on one page


def test_draw_down_records_show_what_credits_paid_to_the_cent(admin_client, contract, acme):
    credit_grant(customer=acme, amount="0.015", source="purchased")
    ingest(event("a1", nov(3)), event("a2", nov(4)))
    rate()
    record = UsageDrawDown.objects.get()

    listed = admin_client.get(DRAW_DOWNS_URL)
    page = admin_client.get(f"{DRAW_DOWNS_URL}{record.pk}/change/")

    # two calls of 0.01: the credits paid 0.015 (0.02, half up), 0.005 was short (0.01)
    assert (record.drawn, record.short) == (D("0.015"), D("0.005"))
    assert shown(listed, "customer_shown") == ["acme"]
    assert shown(listed, "period") == ["2026-11-01"]
    assert shown(listed, "drawn_shown") == ["0.02 USD"]
    assert shown(listed, "short_shown") == ["0.01 USD"]
    assert shown(listed, "allowance_left_shown") == ["0.00 USD"]
    assert shown(page, "settled_shown") == ["0.00 USD"]
    assert admin_client.get(f"{DRAW_DOWNS_URL}add/").status_code == 403
    assert admin_client.post(f"{DRAW_DOWNS_URL}{record.pk}/delete/").status_code == 403
