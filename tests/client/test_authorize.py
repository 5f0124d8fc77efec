"""`authorize` against a live tokentill: credits held before the call, settled at the
call's real cost by its usage, released when the call fails; counting tokens."""

from decimal import Decimal

import pytest

from billing.rating.rater import usage_rate_pending
from wallets.models import CreditGrant, Hold, LedgerEntry, Wallet
from wallets.services import credit_grant

from . import shapes

pytestmark = pytest.mark.django_db(transaction=True)

TEN = {"output_tokens": 1_000_000}  # 10.00 at gpt-4o's 10.00 per 1M output tokens


@pytest.fixture
def funded(on_contract):
    """acme, blocked past its credits, with 100.00 of them."""
    credit_grant(customer=on_contract, amount="100", source=CreditGrant.Source.PURCHASED)
    return on_contract


def wallet() -> tuple[Decimal, Decimal]:
    row = Wallet.objects.get()
    return row.balance, row.held


def ledger() -> list[tuple[str, Decimal]]:
    return list(LedgerEntry.objects.order_by("id").values_list("kind", "amount"))


def test_the_hold_is_settled_at_the_real_cost_of_the_usage_recorded_through_it(make_client, funded):
    client = make_client()

    with client.authorize(customer_id="acme", model="gpt-4o", estimate=TEN) as auth:
        assert wallet() == (Decimal("100"), Decimal("10"))
        event_id = auth.record_response(shapes.OPENAI_CHAT)
    assert client.flush(timeout=10)
    usage_rate_pending()

    # 93 uncached input at 2.50, 846 output at 10.00 and 1,024 cached at 1.25 per 1M:
    # 0.0002325 + 0.00846 + 0.00128 = 0.0099725
    hold = Hold.objects.get()
    assert (str(hold.pk), hold.status, hold.settled_cost) == (
        auth.hold_id,
        "settled",
        Decimal("0.0099725"),
    )
    assert wallet() == (Decimal("99.9900275"), Decimal(0))
    assert ledger() == [
        ("grant", Decimal("100")),
        ("hold", Decimal("-10")),
        ("draw_down", Decimal("-0.0099725")),
        ("release", Decimal("10")),
    ]
    assert auth.recorded == [event_id]
    answer = client.hold(auth.hold_id)
    assert (answer["status"], answer["settled_cost"]) == ("settled", "0.009972500000")


def test_a_block_that_raises_releases_the_hold_at_once(make_client, funded):
    client = make_client()

    with (
        pytest.raises(RuntimeError, match="the model call failed"),
        client.authorize(customer_id="acme", model="gpt-4o", estimate=TEN),
    ):
        assert wallet() == (Decimal("100"), Decimal("10"))
        raise RuntimeError("the model call failed")

    assert Hold.objects.get().status == "released"
    assert wallet() == (Decimal("100"), Decimal(0))
    assert ledger() == [
        ("grant", Decimal("100")),
        ("hold", Decimal("-10")),
        ("release", Decimal("10")),
    ]


def test_a_refused_call_raises_with_the_reason_and_holds_nothing(make_client, funded):
    from tokentill_client import AuthorizationRefused

    client = make_client()

    with pytest.raises(AuthorizationRefused) as refused:
        client.authorize(customer_id="acme", model="gpt-4o", estimate={"output_tokens": 20**7})

    assert refused.value.reason == "insufficient_credits"
    assert not Hold.objects.exists()
    assert wallet() == (Decimal("100"), Decimal(0))
    answer = client.authorize(
        customer_id="acme",
        model="gpt-4o",
        estimate={"output_tokens": 20**7},
        raise_on_refusal=False,
    )
    assert (answer.allowed, answer.reason, answer.hold_id) == (False, "insufficient_credits", None)


def test_an_authorization_whose_answer_was_lost_is_retried_and_holds_once(
    make_client, proxy, funded
):
    proxy.faults = ["lost"]  # tokentill holds the credits; the answer never arrives
    client = make_client()

    auth = client.authorize(customer_id="acme", model="gpt-4o", estimate=TEN)

    assert [request.fault for request in proxy.seen] == ["lost", None]
    assert proxy.seen[0].body == proxy.seen[1].body
    assert (auth.allowed, auth.hold_id) == (True, str(Hold.objects.get().pk))
    assert wallet() == (Decimal("100"), Decimal("10"))


def test_tokens_are_counted_as_tokentill_counts_them(make_client, acme, o200k):
    client = make_client()

    assert client.count_tokens(model="gpt-4o", text="Hello, world") == 3
    # 3 a message + 1 ("user") + 2 ("Say hello") + 3 priming the reply
    assert client.count_tokens(model="gpt-4o", messages=shapes.SAY_HELLO) == 9
