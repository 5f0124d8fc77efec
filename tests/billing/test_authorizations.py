"""Authorizations: a call's worst case priced with the customer's terms and held before it is
made, refused when the contract would not let it spend; the usage that follows settles it."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from billing.models import HoldSettlement, UsageDrawDown
from contracts.models import ContractTerms
from contracts.rate_cards import price_create
from contracts.services import contract_create, customer_create
from wallets.models import CreditGrant, Hold, LedgerEntry, Wallet
from wallets.services import credit_grant

from ..wallets.test_wallets import assert_consistent
from .conftest import (
    GPT_4O_FORMULA,
    GPT_4O_RATES,
    NOVEMBER,
    NOW,
    event,
    ingest,
    rate,
    tiered_card,
)

BLOCK, ARREARS = ContractTerms.Overage.BLOCK, ContractTerms.Overage.ARREARS
URL = "/api/v1/authorizations"
#: 1,200 x 2.50/1M + 800 x 10.00/1M = 0.003 + 0.008 = 0.011
ESTIMATE = {"input_tokens": 1200, "output_tokens": 800}
TEN = {"output_tokens": 1_000_000}  # 10.00


def authorize(api, **body) -> dict:
    body = {"customer_id": "acme", "model": "gpt-4o", "estimate": ESTIMATE, **body}
    body = {name: value for name, value in body.items() if value is not None}
    response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def wallet_figures(customer) -> tuple[Decimal, Decimal]:
    wallet = Wallet.objects.get(customer=customer)
    return wallet.balance, wallet.held


def ledger(customer) -> list[tuple]:
    return list(LedgerEntry.objects.filter(wallet__customer=customer).values_list("kind", "amount"))


@pytest.fixture
def blocked(acme, rate_card):
    """acme on gpt-4o with overage blocked, and 100.00 of credits."""
    contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, overage_policy=BLOCK
    )
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    return acme


def test_an_allowed_call_holds_its_worst_case_and_the_wallet_shows_it(api, blocked, settings):
    settings.TOKENTILL_HOLD_SECONDS = 300

    answer = authorize(api, reference="chat 42")

    hold = Hold.objects.get()
    assert answer == {
        "allowed": True,
        "reason": None,
        "message": "",
        "customer_id": "acme",
        "currency": "USD",
        "tokens": ESTIMATE,
        "estimate": "0.011000000000",
        "allowance": "0.000000000000",
        "overage": "0.000000000000",
        "hold": {
            "id": str(hold.pk),
            "amount": "0.011000000000",
            "estimate": "0.011000000000",
            "status": "active",
            "created_at": "2026-11-15T12:00:00Z",
            "expires_at": "2026-11-15T12:05:00Z",
            "closed_at": None,
            "settled_cost": None,
        },
        "available": "99.989000000000",
    }
    assert hold.reference == "chat 42"
    wallet = api.get("/api/v1/customers/acme/wallet").json()
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (
        "100.000000000000", "0.011000000000", "99.989000000000",
    )  # fmt: skip
    assert wallet["holds"] == [
        {
            "id": str(hold.pk),
            "amount": "0.011000000000",
            "reference": "chat 42",
            "created_at": "2026-11-15T12:00:00Z",
            "expires_at": "2026-11-15T12:05:00Z",
        }
    ]


def test_the_prompt_is_counted_with_tiktoken_all_as_uncached_input(api, blocked):
    pytest.importorskip("tiktoken")
    from ..conftest import _encoding_or_skip

    encoding = _encoding_or_skip("o200k_base")
    messages = [{"role": "user", "content": "Summarise the attached contract in French."}]
    text = "Summarise the attached contract in French."

    by_text = authorize(api, estimate=None, prompt=text, max_output_tokens=1000)
    by_messages = authorize(api, estimate=None, messages=messages, max_output_tokens=1000)

    tokens = len(encoding.encode(text))
    assert by_text["tokens"] == {"input_tokens": tokens, "output_tokens": 1000}
    # the chat format adds 3 per message, the role, and 3 to prime the reply
    chat_tokens = 3 + len(encoding.encode("user")) + tokens + 3
    assert by_messages["tokens"] == {"input_tokens": chat_tokens, "output_tokens": 1000}
    cost = Decimal(tokens) * Decimal("0.0000025") + Decimal("0.01")
    assert Decimal(by_text["estimate"]) == cost


@pytest.mark.parametrize(
    ("factor", "claude_tokens", "claude_estimate"),
    [
        # 9 x 1.25 = 11.25 -> 12; 12 x 2.50/1M + 1,000 x 10.00/1M = 0.00003 + 0.01
        ("1.25", 12, "0.010030000000"),
        # 9 x 1.5 = 13.5 -> 14; 14 x 2.50/1M + 0.01 = 0.000035 + 0.01
        ("1.5", 14, "0.010035000000"),
        # a factor of 1 prices the estimate as counted: 9 x 2.50/1M + 0.01
        ("1", 9, "0.010022500000"),
    ],
)
def test_an_estimated_prompt_is_raised_by_the_safety_factor(
    api, blocked, rate_card, settings, o200k, factor, claude_tokens, claude_estimate
):
    # given a price for Claude, whose text only the fallback counts (an estimate)
    price_create(
        version=rate_card.versions.get(),
        name="claude",
        model_pattern="claude-*",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    settings.TOKENTILL_ESTIMATE_SAFETY_FACTOR = Decimal(factor)
    text = "Summarise the attached contract in French."  # Summ|ar|ise| the| attached|...: 9
    assert len(o200k.encode(text)) == 9

    # when the same prompt is authorized for Claude and for gpt-4o
    claude = authorize(
        api, model="claude-sonnet-4-5", estimate=None, prompt=text, max_output_tokens=1000
    )
    gpt = authorize(api, model="gpt-4o", estimate=None, prompt=text, max_output_tokens=1000)

    # then only Claude's count, an estimate, is raised, rounded up to a whole token
    assert claude["tokens"] == {"input_tokens": claude_tokens, "output_tokens": 1000}
    assert claude["estimate"] == claude_estimate
    assert gpt["tokens"] == {"input_tokens": 9, "output_tokens": 1000}
    assert gpt["estimate"] == "0.010022500000"


def test_a_call_that_would_overspend_is_refused_and_nothing_is_held(api, blocked):
    authorize(api, estimate={"output_tokens": 9_000_000})  # 90.00 held
    before = ledger(blocked), wallet_figures(blocked), Hold.objects.count()

    answer = authorize(api, estimate={"output_tokens": 1_000_001})  # 10.00001

    assert answer == {
        "allowed": False,
        "reason": "insufficient_credits",
        "message": "acme USD wallet has 10 available; 10.00001 was asked for.",
        "customer_id": "acme",
        "currency": "USD",
        "tokens": {"output_tokens": 1_000_001},
        "estimate": "10.000010000000",
        "allowance": "0.000000000000",
        "overage": "0.000000000000",
        "hold": None,
        "available": None,
    }
    assert (ledger(blocked), wallet_figures(blocked), Hold.objects.count()) == before
    # exactly what is left is still allowed
    assert authorize(api, estimate=TEN)["allowed"] is True
    assert wallet_figures(blocked) == (Decimal("100"), Decimal("100"))


def test_the_discount_and_the_allowance_left_come_off_the_worst_case(api, acme, rate_card, now):
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        overage_policy=BLOCK,
        discount_percent=Decimal("20"),
        included_allowance=Decimal("30"),
    )
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    # 2 x 10.00 less 20 % = 16.00 of the allowance of 30.00 used
    ingest(event("u1", NOW - timedelta(hours=1), metrics=TEN))
    ingest(event("u2", NOW - timedelta(hours=1), metrics=TEN))
    rate()

    answer = authorize(api, estimate={"output_tokens": 2_000_000})  # 20.00 less 20 % = 16.00

    assert (answer["estimate"], answer["allowance"]) == ("16.000000000000", "14.000000000000")
    assert answer["hold"]["amount"] == "2.000000000000"
    # a call the allowance covers in full holds nothing
    covered = authorize(api, estimate={"output_tokens": 1_000_000})
    assert (covered["allowed"], covered["allowance"], covered["hold"]) == (
        True, "8.000000000000", None,
    )  # fmt: skip


def test_under_arrears_a_call_is_allowed_and_holds_what_the_credits_cover(api, contract):
    credit_grant(customer=contract.customer, amount="4", source=CreditGrant.Source.PURCHASED)

    answer = authorize(api, estimate=TEN)

    assert (answer["allowed"], answer["overage"]) == (True, "6.000000000000")
    assert (answer["hold"]["amount"], answer["hold"]["estimate"]) == (
        "4.000000000000", "10.000000000000",
    )  # fmt: skip


def test_an_arrears_customer_without_credits_is_allowed_and_nothing_is_held(api, contract):
    answer = authorize(api, estimate=TEN)

    assert (answer["allowed"], answer["hold"], answer["overage"]) == (
        True, None, "10.000000000000",
    )  # fmt: skip
    assert not Wallet.objects.exists()


@pytest.mark.parametrize(
    ("customer_id", "model", "reason", "message"),
    [
        ("nobody", "gpt-4o", "unknown_customer", "No customer 'nobody'."),
        ("globex", "gpt-4o", "no_contract", "globex has no contract in force."),
        ("acme", "claude-3", "no_price", "No price of Standard matches 'claude-3'."),
    ],
)
def test_refusals_say_why(api, blocked, customer_id, model, reason, message):
    customer_create(external_id="globex", name="Globex", currency="USD")

    answer = authorize(api, customer_id=customer_id, model=model)

    assert (answer["allowed"], answer["reason"], answer["message"]) == (False, reason, message)
    assert not Hold.objects.exists()


ONE_OF = {"non_field_errors": ["Send exactly one of prompt, messages or estimate."]}
AT_LEAST_0 = ["Ensure this value is greater than or equal to 0."]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"estimate": None}, ONE_OF),
        ({"prompt": "hi"}, ONE_OF),
        (
            {"estimate": None, "prompt": "hi"},
            {"max_output_tokens": ["Required with a prompt or messages."]},
        ),
        ({"estimate": {"output_tokens": -1}}, {"estimate": {"output_tokens": AT_LEAST_0}}),
        ({"estimate": {}}, {"estimate": ["Give at least one token count."]}),
        (
            {"estimate": {"Output Tokens": 5}},
            {"estimate": ["'Output Tokens' is not a metric name."]},
        ),
        (
            {"estimate": TEN, "max_output_tokens": 5},
            {"max_output_tokens": ["Give output_tokens in the estimate instead."]},
        ),
        ({"budget": 5}, {"budget": ["Unknown field."]}),
    ],
)
def test_bad_requests_are_refused_with_where_and_nothing_is_held(api, blocked, body, errors):
    request = {"customer_id": "acme", "model": "gpt-4o", "estimate": ESTIMATE, **body}
    request = {name: value for name, value in request.items() if value is not None}

    response = api.post(URL, request, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert not Hold.objects.exists()
    assert wallet_figures(blocked) == (Decimal("100"), Decimal(0))


def test_the_usage_event_carrying_the_hold_settles_it_at_its_real_cost(api, blocked):
    hold_id = authorize(api, estimate=TEN)["hold"]["id"]
    assert wallet_figures(blocked) == (Decimal("100"), Decimal("10"))

    # the call used less than its worst case: 0.01
    ingest(event("call-1", NOW - timedelta(seconds=1), properties={"hold_id": hold_id}))
    rate()

    hold = Hold.objects.get()
    assert (hold.status, hold.settled_cost, hold.closed_at) == ("settled", Decimal("0.01"), NOW)
    assert wallet_figures(blocked) == (Decimal("99.99"), Decimal(0))
    assert ledger(blocked) == [
        ("grant", Decimal("100")),
        ("hold", Decimal("-10")),
        ("draw_down", Decimal("-0.01")),
        ("release", Decimal("10")),
    ]
    assert_consistent(Wallet.objects.get())
    answer = api.get(f"/api/v1/holds/{hold_id}").json()
    assert (answer["status"], answer["settled_cost"]) == ("settled", "0.010000000000")


def test_a_hold_carried_by_another_customers_event_is_not_settled(api, blocked, rate_card):
    other = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_create(customer=other, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    hold_id = authorize(api)["hold"]["id"]

    ingest(event("g1", NOW, customer="globex", properties={"hold_id": hold_id}))
    ingest(event("g2", NOW, customer="globex", properties={"hold_id": "not-a-hold"}))
    assert rate() == 2

    assert Hold.objects.get().status == "active"
    assert not HoldSettlement.objects.exists()  # nor kept to be settled later


def test_releasing_a_hold_gives_its_credits_back(api, blocked):
    hold_id = authorize(api, estimate=TEN)["hold"]["id"]

    response = api.post(f"/api/v1/holds/{hold_id}/release")
    again = api.post(f"/api/v1/holds/{hold_id}/release")

    assert (response.status_code, response.json()["status"]) == (200, "released")
    assert (again.status_code, again.json()["status"]) == (200, "released")
    assert wallet_figures(blocked) == (Decimal("100"), Decimal(0))
    assert api.post("/api/v1/holds/00000000-0000-0000-0000-000000000000/release").status_code == 404


def test_spend_is_blocked_once_usage_has_run_past_the_credits_until_credits_cover_it(
    api, acme, rate_card, now
):
    contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, overage_policy=BLOCK
    )
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)
    ingest(event("big", NOW - timedelta(hours=1), metrics=TEN))  # usage arrives anyway
    rate()
    assert (UsageDrawDown.objects.get().drawn, UsageDrawDown.objects.get().short) == (
        Decimal("5"), Decimal("5"),
    )  # fmt: skip

    refused = authorize(api)

    assert (refused["allowed"], refused["reason"]) == (False, "contract_blocked")
    # credits granted later cover the shortfall at once (credits cover arrears by default)
    credit_grant(customer=acme, amount="8", source=CreditGrant.Source.PURCHASED)
    rate()
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("10"), Decimal(0))
    assert wallet_figures(acme) == (Decimal("3"), Decimal(0))
    assert authorize(api)["allowed"] is True


def test_credits_do_not_cover_arrears_when_the_terms_say_so(acme, rate_card, now):
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        credits_cover_arrears=False,
    )
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)
    ingest(event("big", NOW - timedelta(hours=1), metrics=TEN))
    rate()

    credit_grant(customer=acme, amount="8", source=CreditGrant.Source.PURCHASED)
    rate()
    ingest(event("small", NOW - timedelta(minutes=1)))  # 0.01: new usage draws, the old stays
    rate()

    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("5.01"), Decimal("5"))
    assert wallet_figures(acme) == (Decimal("7.99"), Decimal(0))


@pytest.mark.django_db(transaction=True)
def test_authorizations_racing_for_the_last_credits_cannot_both_win(operator_key, rate_card):
    if connection.vendor != "postgresql":
        pytest.skip("races between threads are tested on PostgreSQL")
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    contract_create(
        customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1, overage_policy=BLOCK
    )
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    threads_count, each = 16, 2  # 32 calls of 10.00 at once for 100.00: exactly 10 win
    outcomes, barrier = [], threading.Barrier(threads_count)

    def call() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_key}")
        try:
            barrier.wait(timeout=30)
            for _ in range(each):
                outcomes.append(authorize(client, estimate=TEN)["reason"] or "allowed")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(set(outcomes)) == ["allowed", "insufficient_credits"]
    assert (outcomes.count("allowed"), outcomes.count("insufficient_credits")) == (10, 22)
    assert wallet_figures(acme) == (Decimal("100"), Decimal("100"))
    assert Hold.objects.filter(status="active").count() == 10
    assert_consistent(Wallet.objects.get())


def test_a_customer_without_credits_spends_the_allowance_left_and_no_more(
    api, acme, rate_card, now
):
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        overage_policy=BLOCK,
        included_allowance=Decimal("30"),
    )
    ingest(event("u1", NOW - timedelta(hours=1), metrics={"output_tokens": 1_600_000}))  # 16.00
    rate()

    covered = authorize(api, estimate=TEN)
    beyond = authorize(api, estimate={"output_tokens": 1_500_000})  # 15.00 > 14.00 left

    assert (covered["allowed"], covered["allowance"], covered["hold"]) == (
        True, "10.000000000000", None,
    )  # fmt: skip
    assert (beyond["allowed"], beyond["reason"], beyond["message"]) == (
        False, "insufficient_credits", "acme has no credits.",
    )  # fmt: skip
    assert not Wallet.objects.exists()


# --- What a hold settles at: what its call added to the billable usage ------------------


def settle(api, hold_id: str, event_id: str, minutes: int, **fields) -> dict:
    """Rate the call that carries the hold, `minutes` before NOW; the hold as the API shows it."""
    properties = {"hold_id": hold_id}
    ingest(event(event_id, NOW - timedelta(minutes=minutes), properties=properties, **fields))
    rate()
    return api.get(f"/api/v1/holds/{hold_id}").json()


@pytest.fixture
def discounted(acme, rate_card):
    """acme on gpt-4o at 10 % off, overage blocked, with 100.00 of credits and an allowance
    of 0.015 for the whole of November (the contract starts with the period)."""
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=rate_card,
        anchor_day=1,
        overage_policy=BLOCK,
        discount_percent=Decimal("10"),
        included_allowance=Decimal("0.015"),
    )
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    return acme


def test_a_hold_settles_at_its_calls_cost_after_discount_once_the_allowance_is_used(
    api, discounted
):
    # given the allowance used up: 2 calls of 0.01, less 10 % = 0.018, past 0.015 by 0.003
    ingest(event("e1", NOW - timedelta(minutes=9)), event("e2", NOW - timedelta(minutes=8)))
    rate()
    # and a call held for at 0.011 less 10 % = 0.0099
    hold = authorize(api)["hold"]
    assert hold["amount"] == "0.009900000000"

    # when it costs 0.01: 0.009 after discount
    settled = settle(api, hold["id"], "e3", 1)

    # then the hold settles at 0.009, what the credits paid for it: 0.003 + 0.009 in all
    assert (settled["status"], settled["settled_cost"]) == ("settled", "0.009000000000")
    assert wallet_figures(discounted) == (Decimal("99.988"), Decimal(0))
    assert UsageDrawDown.objects.get().drawn == Decimal("0.012")
    assert_consistent(Wallet.objects.get())


def test_the_allowance_left_pays_first_and_the_hold_settles_at_the_rest(api, discounted):
    # given 0.01 of usage, 0.009 after discount: 0.006 of the allowance of 0.015 left
    ingest(event("e1", NOW - timedelta(minutes=9)))
    rate()
    assert UsageDrawDown.objects.get().allowance_left == Decimal("0.006")
    # and a call authorized at 0.0099 after discount: 0.006 of it on the allowance, 0.0039
    # held
    answer = authorize(api)
    assert (answer["allowance"], answer["hold"]["amount"]) == (
        "0.006000000000", "0.003900000000",
    )  # fmt: skip

    # when it costs 0.01: 0.009 after discount, 0.006 of it on the allowance
    settled = settle(api, answer["hold"]["id"], "e2", 1)

    # then it settles at the 0.003 the credits paid: usage after discount 0.018, less the
    # allowance of 0.015, less the 0 billable without the call
    assert settled["settled_cost"] == "0.003000000000"
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short, record.allowance_left) == (
        Decimal("0.003"), Decimal(0), Decimal(0),
    )  # fmt: skip
    assert wallet_figures(discounted) == (Decimal("99.997"), Decimal(0))


def test_calls_drawn_together_take_the_allowance_in_the_order_they_happened(api, discounted):
    # given two calls held (at 10.00 less 10 % each, less the 0.015 of allowance left), the
    # later one rated with the earlier in one batch
    first, second = (authorize(api, estimate=TEN)["hold"]["id"] for _ in range(2))
    ingest(
        event("later", NOW - timedelta(minutes=1), properties={"hold_id": second}),
        event("earlier", NOW - timedelta(minutes=2), properties={"hold_id": first}),
    )

    rate()

    # then the earlier, 0.009 after discount, is all on the allowance of 0.015; the later
    # finds 0.006 of it left and settles at 0.003: together what the credits paid
    assert Hold.objects.get(pk=first).settled_cost == Decimal(0)
    assert Hold.objects.get(pk=second).settled_cost == Decimal("0.003")
    assert UsageDrawDown.objects.get().drawn == Decimal("0.003")
    assert wallet_figures(discounted) == (Decimal("99.997"), Decimal(0))


@pytest.fixture
def embeddings(acme, now):
    """acme at 10 % off, overage blocked, 100.00 of credits, on a card with gpt-4o and a
    graduated embeddings price: a unit per 1,000 input tokens, the first 100 units of a
    period at 0.02, the rest at 0.01."""
    version = tiered_card("Tiered", NOVEMBER)
    card = version.rate_card
    contract_create(
        customer=acme,
        starts_at=NOVEMBER,
        rate_card=card,
        anchor_day=1,
        overage_policy=BLOCK,
        discount_percent=Decimal("10"),
    )
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    return acme


def units(count: int) -> dict[str, int]:
    """The metrics of a call of `count` embeddings units."""
    return {"input_tokens": count * 1000}


def test_a_tiered_call_settles_at_its_units_priced_where_they_fall_in_the_period(api, embeddings):
    # given 95 units used this period: 95 x 0.02 = 1.90, 1.71 after discount
    ingest(event("e1", NOW - timedelta(minutes=9), model="embed-small", metrics=units(95)))
    rate()
    # and a call of 10 units held at its worst case: 10 x 0.02 = 0.20, 0.18 after discount
    hold = authorize(api, model="embed-small", estimate=units(10))["hold"]
    assert hold["amount"] == "0.180000000000"

    # when it is rated
    settled = settle(api, hold["id"], "e2", 1, model="embed-small", metrics=units(10))

    # then its units are the period's 96th to 105th: 5 x 0.02 + 5 x 0.01 = 0.15, 0.135
    # after discount (the period's 2.05 less 10 %, 1.845, less the 1.71 without it)
    assert settled["settled_cost"] == "0.135000000000"
    assert UsageDrawDown.objects.get().drawn == Decimal("1.845")
    assert wallet_figures(embeddings) == (Decimal("98.155"), Decimal(0))


def test_a_call_that_cannot_be_priced_settles_with_no_cost_and_draws_nothing(api, blocked):
    hold_id = authorize(api)["hold"]["id"]

    settled = settle(api, hold_id, "e1", 1, model="llama")  # no price matches it

    assert (settled["status"], settled["settled_cost"]) == ("settled", None)
    assert wallet_figures(blocked) == (Decimal("100"), Decimal(0))
