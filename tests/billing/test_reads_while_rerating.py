"""Reads while a period waits to be re-rated (issue 12): every read answers, an event that
waits to be rated (or rated again) counts only in `pending_events`, and once the raters
have caught up the figures are those of the period rated from scratch.

The rule is docs/guide/usage.md's "Reads while events wait". NOW is 2026-11-15 12:00 UTC.
A call of 1,000 input, 500 output and 2,000 cached tokens costs 0.0025 + 0.005 + 0.0025 =
0.01 at the Standard card's gpt-4o (2.50 / 10.00 / 1.25 per 1M), and 0.0025 + 0.01 +
0.0025 = 0.015 with output at 20.00 per 1M.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.rating.rater import terms_changes_apply
from contracts.models import RateCard, TermsChange
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import contract_amend, contract_create
from tests.portal.conftest import logged_in, portal_user, table, text_of

from .conftest import GPT_4O_FORMULA, GPT_4O_RATES, NOW, event, ingest, queued, rate, usage_of

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
ZERO = "0.000000000000"
TOKENS = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "cached_input_tokens": 2000,
    "cache_creation_input_tokens": 0,
    "reasoning_tokens": 0,
}
#: The amendment: output at 20.00 per 1M (a call: 0.015), 10 % off, a fee of 45.00 a month
#: and an allowance of 0.03.
AMENDMENT = {
    "price_overrides": {"gpt-4o": {"rate_out": {"amount": "20.00", "per": 1_000_000}}},
    "discount_percent": D("10"),
    "fixed_fee": D("45.00"),
    "included_allowance": D("0.03"),
}
#: An authorization's worst case under the amendment: 1,200 x 2.50/1M + 800 x 20.00/1M =
#: 0.003 + 0.016 = 0.019, less 10 % = 0.0171.
ESTIMATE = {"input_tokens": 1200, "output_tokens": 800}


def tokens(times: int) -> dict:
    return {name: value * times for name, value in TOKENS.items()}


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def since_october(customer):
    """On the Standard card (gpt-4o, from October 1) from October 1: a fee of 30.00 a
    month, list prices."""
    card = RateCard.objects.filter(name="Standard").first()
    if card is None:
        card = rate_card_create(name="Standard", currency="USD", effective_from=OCTOBER)
        price_create(
            version=card.versions.get(),
            name="gpt-4o",
            model_pattern="gpt-4o",
            rates=GPT_4O_RATES,
            formula=GPT_4O_FORMULA,
        )
    return contract_create(
        customer=customer, starts_at=OCTOBER, rate_card=card, anchor_day=1, fixed_fee=D("30")
    )


def events_of(customer: str = "acme") -> list[dict]:
    """One call in October, three in November before NOW."""
    return [
        event("oct", at(10, 20), feature="chat", customer=customer),
        event("n1", at(11, 3), feature="chat", customer=customer),
        event("n2", at(11, 10), feature="search", customer=customer),
        event("n3", at(11, 14), feature="chat", customer=customer),
    ]


@pytest.fixture
def amended_at_the_start(acme, now):
    """acme's October and November calls rated at list prices, then an amendment from
    November 1 (the period's start), which replaces the terms of the whole period; and a
    November call sent after it. The raters have not run since."""
    contract = since_october(acme)
    ingest(*events_of())
    assert rate() == 4
    contract_amend(contract=contract, effective_from=NOVEMBER, **AMENDMENT)
    ingest(event("n4", at(11, 15, 11), feature="search"))
    return contract


def preview_of(api) -> dict:
    response = api.get("/api/v1/customers/acme/invoice-preview")
    assert response.status_code == 200, response.content
    return response.json()


def authorize(api) -> dict:
    body = {"customer_id": "acme", "model": "gpt-4o", "estimate": ESTIMATE}
    response = api.post("/api/v1/authorizations", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


NOVEMBER_TERMS = [
    {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "terms": 2,
     "rate_card": "Standard"}
]  # fmt: skip


def test_the_usage_endpoint_answers_while_an_amendment_at_the_periods_start_waits(
    api, amended_at_the_start
):
    # when: read before the raters have run
    usage = usage_of(api)

    # then: the period is on the new terms, and its four calls all wait (three rated under
    # the terms replaced, one never rated): none is counted in money, events or tokens
    assert usage == {
        "customer_id": "acme",
        "currency": "USD",
        "period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        "usage": ZERO,
        "discount": ZERO,
        "allowance": {"included": "0.030000000000", "used": ZERO, "remaining": "0.030000000000"},
        "fixed_fees": "45.000000000000",
        "minimum_true_up": ZERO,
        "total": "45.000000000000",
        "terms": NOVEMBER_TERMS,
        "by_price": [],
        "by_model": [],
        "by_feature": [],
        "unpriced": [],
        "failed": [],
        "pending_events": 4,
    }
    # October is not touched by the amendment, and nothing of it waits
    october = usage_of(api, at="2026-10-31T00:00:00Z")
    assert (october["usage"], october["total"], october["pending_events"]) == (
        "0.010000000000", "30.010000000000", 0,
    )  # fmt: skip


def test_the_guides_example(api, acme, now):
    # docs/guide/usage.md, "Reads while events wait"
    contract = since_october(acme)
    ingest(*events_of())
    rate()
    contract_amend(
        contract=contract,
        effective_from=NOVEMBER,
        price_overrides=AMENDMENT["price_overrides"],
        discount_percent=D("10"),
        fixed_fee=D("45.00"),
    )

    usage = usage_of(api)

    assert (usage["usage"], usage["fixed_fees"], usage["total"], usage["pending_events"]) == (
        ZERO, "45.000000000000", "45.000000000000", 3,
    )  # fmt: skip
    assert (usage["by_price"], usage["by_model"], usage["by_feature"]) == ([], [], [])
    assert usage_of(api, at="2026-10-31T00:00:00Z")["total"] == "30.010000000000"

    rate()

    usage = usage_of(api)
    # 3 x 0.015 = 0.045; 10 % off: 0.0045; 0.045 - 0.0045 + 45 = 45.0405
    assert (usage["usage"], usage["discount"], usage["total"], usage["pending_events"]) == (
        "0.045000000000", "0.004500000000", "45.040500000000", 0,
    )  # fmt: skip


def test_the_waiting_calls_are_back_in_the_queue_once_the_change_is_applied(
    api, amended_at_the_start
):
    before = usage_of(api)
    # the amendment queues nothing itself: the rater applies it first thing
    assert (queued(), TermsChange.objects.filter(applied_at__isnull=True).count()) == (1, 1)

    assert terms_changes_apply() == 1

    # n1, n2 and n3 back in the queue beside n4; October's call is not; the reads unchanged
    assert queued() == 4
    assert usage_of(api) == before


def test_after_the_raters_the_period_is_as_if_rated_under_the_new_terms_alone(
    api, amended_at_the_start
):
    rate()

    usage = usage_of(api)

    # 4 calls x 0.015 = 0.06; 10 % off: 0.006; 0.054 against an allowance of 0.03: all used;
    # total 0.054 - 0.03 + 45 = 45.024
    assert (usage["usage"], usage["discount"], usage["total"], usage["pending_events"]) == (
        "0.060000000000", "0.006000000000", "45.024000000000", 0,
    )  # fmt: skip
    assert usage["allowance"] == {
        "included": "0.030000000000", "used": "0.030000000000", "remaining": ZERO,
    }  # fmt: skip
    assert usage["by_price"] == [
        {"name": "gpt-4o", "rate_card": "Standard", "version": 1, "kind": "per_event",
         "terms": 2, "events": 4, "quantity": ZERO, "amount": "0.060000000000",
         "tokens": tokens(4)}
    ]  # fmt: skip
    assert [(g["name"], g["events"], g["amount"], g["tokens"]) for g in usage["by_feature"]] == [
        ("chat", 2, "0.030000000000", tokens(2)),
        ("search", 2, "0.030000000000", tokens(2)),
    ]


def test_after_the_raters_the_figures_are_those_of_a_period_rated_from_scratch(
    api, amended_at_the_start
):
    # given globex on the same contract, amended the same way before any of its calls
    from contracts.services import customer_create

    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_amend(contract=since_october(globex), effective_from=NOVEMBER, **AMENDMENT)
    ingest(*events_of("globex"), event("n4", at(11, 15, 11), feature="search", customer="globex"))

    rate()

    acme, fresh = usage_of(api), usage_of(api, "globex")
    assert {**acme, "customer_id": "globex"} == fresh


def test_the_invoice_preview_shows_what_is_rated_and_leaves_out_what_waits(
    api, amended_at_the_start
):
    preview = preview_of(api)

    assert [(line["kind"], line["description"], line["amount"]) for line in preview["lines"]] == [
        ("fixed_fee", "Monthly fee, 2026-11-01 to 2026-11-30", "45.00"),
    ]
    assert preview["total"] == "45.00"

    rate()

    # 45.00 + 0.06 - 0.006 (0.01 rounded half up) - 0.03 = 45.02
    assert [(line["kind"], line["amount"]) for line in preview_of(api)["lines"]] == [
        ("fixed_fee", "45.00"),
        ("usage", "0.06"),
        ("discount", "-0.01"),
        ("allowance", "-0.03"),
    ]
    assert preview_of(api)["total"] == "45.02"


def test_the_admin_preview_page_answers_while_calls_wait(admin_client, amended_at_the_start):
    from django.urls import reverse

    url = reverse("admin:billing_invoice_preview", args=[amended_at_the_start.customer_id])

    response = admin_client.get(url)

    assert response.status_code == 200
    assert [(line.kind, line.amount) for line in response.context["lines"]] == [
        ("fixed_fee", D("45.00"))
    ]


def test_the_portal_dashboard_shows_the_waiting_calls_as_not_rated_yet(
    client, acme, amended_at_the_start
):
    viewer = portal_user(acme, "vic@acme.example")

    page = logged_in(client, viewer).get("/portal/")

    assert page.status_code == 200
    assert (text_of(page, "spend"), text_of(page, "allowance-left")) == ("0.00 USD", "0.03 USD")
    assert "4 events not rated yet:" in page.content.decode()
    rows = table(page, "events")[1:]
    assert [(row[0], row[5]) for row in rows] == [
        ("2026-11-15 11:00:00", "not rated yet"),
        ("2026-11-14 09:00:00", "not rated yet"),
        ("2026-11-10 09:00:00", "not rated yet"),
        ("2026-11-03 09:00:00", "not rated yet"),
        ("2026-10-20 09:00:00", "0.01"),
    ]
    chart = logged_in(client, viewer).get("/portal/dashboard/fragment").content.decode()
    # Every day of November so far has its column, each with nothing on it
    assert re.findall(r"<title>2026-11-\d\d: ([\d.]+)</title>", chart) == ["0.00"] * 15

    rate()

    page = logged_in(client, viewer).get("/portal/")
    # 0.06 less 10 % = 0.054; the allowance of 0.03 used up
    assert (text_of(page, "spend"), text_of(page, "allowance-left")) == ("0.05 USD", "0.00 USD")
    assert "not rated yet" not in page.content.decode()
    chart = logged_in(client, viewer).get("/portal/dashboard/fragment").content.decode()
    assert "<title>2026-11-03: 0.02</title>" in chart  # 0.015 before discount, as the chart is


def test_an_authorization_spends_the_allowance_left_by_what_is_rated(api, amended_at_the_start):
    # acme has no credits and no budget, so the allowance left is read from the period:
    # nothing of it is used while every call waits
    answer = authorize(api)

    assert (answer["allowed"], answer["estimate"], answer["allowance"], answer["overage"]) == (
        True, "0.017100000000", "0.017100000000", ZERO,
    )  # fmt: skip
    assert answer["hold"] is None

    rate()

    # 0.054 of usage after discount has used the whole allowance of 0.03
    answer = authorize(api)
    assert (answer["allowed"], answer["allowance"], answer["overage"]) == (
        True, ZERO, "0.017100000000",
    )  # fmt: skip


# -- part of a period waits -------------------------------------------------------------------

AMENDED = datetime(2026, 11, 11, tzinfo=UTC)
#: 4,000 input tokens: 0.01 at any of these output rates; 7 reasoning tokens, not priced.
INPUT_ONLY = {"input_tokens": 4000, "reasoning_tokens": 7}


def figures(groups: list[dict]) -> list[tuple]:
    return [(g["name"], g.get("terms"), g["events"], g["amount"], g["tokens"]) for g in groups]


def test_an_amendment_mid_period_leaves_the_calls_before_it_counted_and_the_rest_waiting(
    api, contract
):
    # given three calls rated under the first terms, one of them before the 11th
    ingest(
        event("n1", at(11, 3), feature="chat"),
        event("n2", at(11, 12), feature="chat"),
        event("n3", at(11, 14), feature="search", metrics=INPUT_ONLY),
    )
    rate()
    # when output goes to 20.00 per 1M from the 11th, and before the raters run
    contract_amend(
        contract=contract, effective_from=AMENDED, price_overrides=AMENDMENT["price_overrides"]
    )
    usage = usage_of(api)

    # then only n1 is counted, under the terms it is still under; n2 and n3 wait, though
    # n2 is still rated in the same rollup as n1 (its tokens are taken out too)
    assert [(t["terms"], t["start"]) for t in usage["terms"]] == [
        (1, "2026-11-01T00:00:00Z"), (2, "2026-11-11T00:00:00Z"),
    ]  # fmt: skip
    assert figures(usage["by_price"]) == [("gpt-4o", 1, 1, "0.010000000000", TOKENS)]
    assert figures(usage["by_model"]) == [("gpt-4o", None, 1, "0.010000000000", TOKENS)]
    assert figures(usage["by_feature"]) == [("chat", None, 1, "0.010000000000", TOKENS)]
    assert (usage["usage"], usage["total"], usage["pending_events"]) == (
        "0.010000000000", "0.010000000000", 2,
    )  # fmt: skip

    rate()

    # n2 costs 0.015 under the amendment, n3 0.01 under both
    usage = usage_of(api)
    input_only = {**dict.fromkeys(TOKENS, 0), **INPUT_ONLY}
    assert figures(usage["by_price"]) == [
        ("gpt-4o", 1, 1, "0.010000000000", TOKENS),
        ("gpt-4o", 2, 2, "0.025000000000", {
            name: TOKENS[name] + input_only[name] for name in TOKENS
        }),
    ]  # fmt: skip
    assert figures(usage["by_feature"]) == [
        ("chat", None, 2, "0.025000000000", tokens(2)),
        ("search", None, 1, "0.010000000000", input_only),
    ]
    assert (usage["usage"], usage["pending_events"]) == ("0.035000000000", 0)


def test_failed_calls_that_wait_are_taken_out_of_their_rollup_too(api, contract):
    # given two calls whose input is not a whole number of tokens: they fail, in one rollup
    # that counts 2 x 500 output tokens and no input tokens
    broken = {"input_tokens": "12.5", "output_tokens": 500}
    ingest(event("f1", at(11, 3), metrics=broken), event("f2", at(11, 12), metrics=broken))
    rate()
    assert [(g["events"], g["tokens"]["output_tokens"]) for g in usage_of(api)["failed"]] == [
        (2, 1000)
    ]

    contract_amend(contract=contract, effective_from=AMENDED, discount_percent=D("10"))

    usage = usage_of(api)
    failed = usage["failed"]
    assert [(g["events"], g["tokens"]) for g in failed] == [
        (1, {**dict.fromkeys(TOKENS, 0), "output_tokens": 500})
    ]
    assert failed[0]["reason"] == "input_tokens is 12.5: token counts are whole numbers"
    assert usage["pending_events"] == 1


def test_a_contract_started_in_the_past_moves_waiting_calls_to_its_period_counted_once(
    api, acme, rate_card
):
    # given two calls under no contract, in November's calendar month
    ingest(event("n1", at(11, 3)), event("n2", at(11, 12)))
    rate()
    # when a contract starts on the 10th (periods from the 10th), before the raters run
    contract_create(customer=acme, starts_at=at(11, 10, 0), rate_card=rate_card, anchor_day=10)

    # then November is cut on the 10th: n1 is in [1st, 10th) as it was; n2 belongs to the
    # contract's first period and waits there, and is in neither period's figures
    before, since = usage_of(api, at="2026-11-05T00:00:00Z"), usage_of(api)
    assert before["period"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-11-10T00:00:00Z"}
    assert [(g["events"], g["reason"]) for g in before["unpriced"]] == [(1, "no contract in force")]
    assert before["pending_events"] == 0
    assert since["period"] == {"start": "2026-11-10T00:00:00Z", "end": "2026-12-10T00:00:00Z"}
    assert (since["by_price"], since["unpriced"], since["pending_events"]) == ([], [], 1)

    rate()

    assert [g["events"] for g in usage_of(api, at="2026-11-05T00:00:00Z")["unpriced"]] == [1]
    since = usage_of(api)
    assert (since["usage"], since["pending_events"]) == ("0.010000000000", 0)


# -- a re-rate after a price correction -----------------------------------------------------


def test_a_rerate_after_a_correction_mid_period_counts_each_call_once_as_it_goes(
    api, contract, rate_card
):
    from billing.rating.draw_down import usage_draw_down_pending
    from billing.rating.rater import _rate_batch
    from billing.rating.rerating import period_rerate
    from contracts.rate_cards import price_update, rate_card_version_schedule
    from wallets.models import CreditGrant, LedgerEntry, Wallet
    from wallets.services import credit_grant

    # given 10.00 of credits and three calls of 0.01, drawn: 9.97 left
    acme = contract.customer
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    ingest(
        event("n1", at(11, 3), feature="chat"),
        event("n2", at(11, 12), feature="chat"),
        event("n3", at(11, 14), feature="chat"),
    )
    rate()
    # and a correction from the 10th: output at 12.00 per 1M, so a call costs 0.011
    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=at(11, 10, 0), correction=True
    )
    price = version.prices.get()
    price_update(price=price, rates={**price.rates, "rate_out": {"amount": "12.00", "per": 10**6}})

    def balance() -> D:
        return Wallet.objects.get(customer=acme).balance

    def read() -> tuple:
        usage = usage_of(api)
        by_price = [(g["version"], g["events"], g["amount"]) for g in usage["by_price"]]
        return by_price, usage["usage"], usage["pending_events"]

    # when the period is re-rated: its three calls are back in the queue
    period_rerate(customer=acme, at=NOW, apply=True)
    assert queued() == 3
    assert read() == ([], ZERO, 3)

    # then as the raters go, each call is counted once: waiting, or as rated again
    assert _rate_batch(1) == 1  # n1, before the correction: v1 again
    assert read() == ([(1, 1, "0.010000000000")], "0.010000000000", 2)
    # (the re-rating preview's "now" is what the reads show)
    assert period_rerate(customer=acme, at=NOW).old_total == D("0.01")
    assert _rate_batch(1) == 1  # n2: v2
    assert read() == (
        [(1, 1, "0.010000000000"), (2, 1, "0.011000000000")], "0.021000000000", 1,
    )  # fmt: skip
    # and the credits are not moved while calls wait: nothing given back to be drawn again
    usage_draw_down_pending()
    assert balance() == D("9.97")

    rate()

    assert read() == (
        [(1, 1, "0.010000000000"), (2, 2, "0.022000000000")], "0.032000000000", 0,
    )  # fmt: skip
    # 0.01 + 2 x 0.011 drawn in all, in two draw-downs; no refund
    assert balance() == D("9.968")
    kinds = LedgerEntry.objects.filter(wallet__customer=acme).values_list("kind", "amount")
    assert sorted(kinds) == [
        ("draw_down", D("-0.03")), ("draw_down", D("-0.002")), ("grant", D("10")),
    ]  # fmt: skip
    # the figures are those of the period rated from scratch: re-rating changes nothing
    again = period_rerate(customer=acme, at=NOW)
    assert again.old_total == again.new_total == D("0.032")
    assert not again.changed


# -- closing ----------------------------------------------------------------------------------

DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)


def test_closing_rates_what_waits_first_so_its_invoice_is_under_the_new_terms(
    monkeypatch, amended_at_the_start
):
    from billing.invoicing.closing import periods_close_due
    from billing.models import Invoice

    from .invoice_support import clock_set

    clock_set(monkeypatch, datetime(2026, 12, 2, 1, tzinfo=UTC))

    assert periods_close_due() == 2  # October and November

    november = Invoice.objects.get(period_start=NOVEMBER)
    lines = november.lines.values_list("kind", "description", "event_count", "amount")
    assert list(lines) == [
        ("fixed_fee", "Monthly fee, 2026-11-01 to 2026-11-30", 0, D("45.00")),
        ("usage", "gpt-4o", 4, D("0.06")),
        ("discount", "Discount 10 % on usage, 2026-11-01 to 2026-11-30", 0, D("-0.01")),
        (
            "allowance",
            "Included usage allowance: 0.03 USD of 0.03 USD used, 2026-11-01 to 2026-11-30",
            0,
            D("-0.03"),
        ),
    ]
    assert november.total == D("45.02")


def test_a_period_closed_while_its_calls_wait_bills_them_later_never_stale(
    api, monkeypatch, amended_at_the_start
):
    from billing.invoicing.closing import period_close
    from billing.models import BillingPeriod

    from .invoice_support import clock_set

    # given the period closed by itself, the raters not having run (the race closing's own
    # rating first leaves: a change committed after it)
    clock_set(monkeypatch, datetime(2026, 12, 2, 1, tzinfo=UTC))
    invoice = period_close(contract=amended_at_the_start, start=NOVEMBER, end=DECEMBER)

    # then what waits is not on it: not the calls as rated under the terms replaced
    assert list(invoice.lines.values_list("kind", "amount")) == [("fixed_fee", D("45.00"))]
    billed = BillingPeriod.objects.get(start=NOVEMBER)
    assert (billed.billed_total, billed.billed_events) == (D("45"), 0)

    # and once rated, December's invoice bills them as November's late usage:
    # 45.024 - 45.00 billed = 0.024, rounded 0.02
    rate()
    lines = preview_of(api)["lines"]
    assert [(line["kind"], line["description"], line["amount"]) for line in lines][1:] == [
        (
            "late_usage",
            "Correction of invoice INV-000001, 2026-11-01 to 2026-11-30: 4 calls received late",
            "0.02",
        ),
    ]


def test_the_usage_csv_lists_the_waiting_calls_as_pending(api, amended_at_the_start):
    import csv

    response = api.get("/api/v1/customers/acme/usage.csv")
    rows = list(csv.DictReader(b"".join(response.streaming_content).decode().splitlines()))

    assert [(row["event_id"], row["status"], row["amount"]) for row in rows] == [
        ("n1", "pending", ""), ("n2", "pending", ""), ("n3", "pending", ""), ("n4", "pending", ""),
    ]  # fmt: skip

    rate()

    response = api.get("/api/v1/customers/acme/usage.csv")
    rows = list(csv.DictReader(b"".join(response.streaming_content).decode().splitlines()))
    assert {(row["status"], row["amount"]) for row in rows} == {("rated", "0.015000000000")}


def test_a_grant_covering_a_shortfall_while_the_terms_are_replaced_does_not_stop_the_raters(
    api, acme, now
):
    from billing.models import UsageDrawDown
    from wallets.models import CreditGrant, Wallet
    from wallets.services import credit_grant

    # given 0.02 of credits: October's call draws 0.01, November's three calls (0.03) the
    # other 0.01, and 0.02 of November is short (credits cover arrears, by default)
    contract = since_october(acme)
    credit_grant(customer=acme, amount="0.02", source=CreditGrant.Source.PURCHASED)
    ingest(*events_of())
    rate()
    november = UsageDrawDown.objects.get(period_start=NOVEMBER)
    assert (november.drawn, november.short) == (D("0.01"), D("0.02"))
    # when the terms are replaced from November 1, and credits granted, before a rater runs
    contract_amend(contract=contract, effective_from=NOVEMBER, **AMENDMENT)
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)

    # then the rater's run (which first offers the shortfall to the new credits) rates
    rate()

    # November under the amendment: 3 x 0.015 = 0.045, less 10 % = 0.0405, of which the
    # allowance pays 0.03: 0.0105 billable, all of it paid by the credits now that the
    # draw of the re-rated period asks them for what is short: 10.02 - 0.01 - 0.0105
    assert usage_of(api)["total"] == "45.010500000000"
    november.refresh_from_db()
    assert (november.drawn, november.short) == (D("0.0105"), D(0))
    assert Wallet.objects.get(customer=acme).balance == D("9.9995")
    # and the next run changes nothing
    rate()
    november.refresh_from_db()
    assert (november.drawn, november.short) == (D("0.0105"), D(0))
