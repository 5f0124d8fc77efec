"""Rated usage draws prepaid credits down in the rating transaction, beyond the allowance."""

from datetime import timedelta
from decimal import Decimal

from billing.models import UsageDrawDown
from billing.rating.rerating import period_rerate
from contracts.rate_cards import price_update, rate_card_version_schedule
from contracts.services import contract_amend
from wallets.models import CreditGrant, Wallet
from wallets.services import credit_grant

from .conftest import NOVEMBER, NOW, event, ingest, rate, send

CALL = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}  # 0.01
BIG = {"output_tokens": 1_000_000}  # 10.00


def balance(customer) -> Decimal:
    return Wallet.objects.get(customer=customer).balance


def test_usage_draws_the_wallet_down_as_it_is_rated(contract):
    acme = contract.customer
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)

    send(("e1", 10, "gpt-4o", CALL), ("e2", 9, "gpt-4o", CALL))
    rate()

    assert balance(acme) == Decimal("99.98")
    entry = Wallet.objects.get().entries.get(kind="draw_down")
    assert (entry.amount, entry.reference) == (Decimal("-0.02"), "usage 2026-11-01")
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("0.02"), Decimal(0))

    # rating again draws nothing more
    assert rate() == 0
    assert balance(acme) == Decimal("99.98")


def test_the_allowance_and_discount_come_first_and_the_rest_is_short_when_credits_end(
    contract,
):
    acme = contract.customer
    contract_amend(
        contract=contract,
        effective_from=NOVEMBER + timedelta(seconds=1),
        included_allowance=Decimal("15"),
        discount_percent=Decimal("10"),
    )
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)

    # 3 x 10.00 = 30.00, less 10 % = 27.00, less an allowance of 15 (almost the whole
    # month's worth) = 12.00 billable: 5.00 from credits, 7.00 short
    send(("a", 30, "gpt-4o", BIG), ("b", 20, "gpt-4o", BIG), ("c", 10, "gpt-4o", BIG))
    rate()

    record = UsageDrawDown.objects.get()
    allowance = Decimal("15") * (30 * 86400 - 1) / (30 * 86400)  # prorated from 00:00:01
    billable = Decimal("27") - allowance.quantize(Decimal("1e-12"))
    assert record.drawn == Decimal("5")
    assert record.short == billable - 5
    assert balance(acme) == 0


def test_re_rating_lower_gives_credits_back(contract, rate_card):
    acme = contract.customer
    credit_grant(customer=acme, amount="50", source=CreditGrant.Source.PURCHASED)
    send(("a", 10, "gpt-4o", BIG))
    rate()
    assert balance(acme) == Decimal("40")

    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=NOVEMBER, correction=True
    )
    price = version.prices.get()
    price_update(price=price, rates={**price.rates, "rate_out": {"amount": "4", "per": 10**6}})
    period_rerate(customer=acme, at=NOW, apply=True)
    rate()

    assert balance(acme) == Decimal("46")
    refund = Wallet.objects.get().grants.get(source="refund")
    assert (refund.amount, refund.reason) == (Decimal("6"), "re-rated usage 2026-11-01")
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("4"), Decimal(0))


def test_customers_without_credits_are_not_drawn(contract):
    send(("a", 10, "gpt-4o", CALL))
    rate()

    assert Wallet.objects.count() == 0 and UsageDrawDown.objects.count() == 0


def test_credits_are_drawn_by_the_pass_after_rating_once_however_many_batches(contract):
    from billing.models import DrawDownDue
    from billing.rating.draw_down import usage_draw_down_pending
    from billing.rating.rater import _rate_batch, terms_changes_apply

    acme = contract.customer
    credit_grant(customer=acme, amount="100", source=CreditGrant.Source.PURCHASED)
    terms_changes_apply()  # the contract's, as a rater's run does first
    send(*[(f"e{n}", 10, "gpt-4o", CALL) for n in range(5)])

    # rating alone (as if the process died before its draw-down pass) queues the period,
    # a row for each batch
    assert [_rate_batch(2), _rate_batch(2), _rate_batch(2)] == [2, 2, 1]
    assert balance(acme) == Decimal("100")
    assert (
        list(DrawDownDue.objects.values_list("customer_id", "period_start"))
        == [(acme.pk, NOVEMBER)] * 3
    )

    assert usage_draw_down_pending() == 1
    assert usage_draw_down_pending() == 0
    assert balance(acme) == Decimal("99.95")
    assert Wallet.objects.get().entries.filter(kind="draw_down").count() == 1


def test_a_hold_is_released_only_once_its_call_is_drawn(contract):
    from billing.rating.draw_down import usage_draw_down_pending
    from billing.rating.rater import _rate_batch, terms_changes_apply
    from wallets.models import Hold
    from wallets.services import hold_place

    acme = contract.customer
    terms_changes_apply()  # the contract's, as a rater's run does first
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    hold = hold_place(customer=acme, amount="4")
    ingest(event("held", NOW - timedelta(minutes=1), properties={"hold_id": str(hold.pk)}))

    _rate_batch(10)
    wallet = Wallet.objects.get()
    assert (Hold.objects.get().status, wallet.balance, wallet.held) == (
        "active", Decimal("10"), Decimal("4"),
    )  # fmt: skip

    usage_draw_down_pending()
    wallet.refresh_from_db()
    assert (Hold.objects.get().status, wallet.balance, wallet.held) == (
        "settled", Decimal("9.99"), Decimal(0),
    )  # fmt: skip


def test_a_period_whose_drawing_fails_is_kept_for_later_and_stops_no_other(
    contract, rate_card, monkeypatch, caplog
):
    from billing.models import DrawDownDue
    from billing.rating import draw_down
    from contracts.services import contract_create, customer_create

    acme = contract.customer
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_create(customer=globex, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    for customer in (acme, globex):
        credit_grant(customer=customer, amount="10", source=CreditGrant.Source.PURCHASED)
    ingest(event("a", NOW - timedelta(minutes=2)), event("g", NOW, customer="globex"))
    real = draw_down._usage_draw_down

    def broken_for_acme(periods):
        if any(customer == acme.pk for customer, _ in periods):
            raise RuntimeError("acme's terms cannot be read")
        real(periods)

    monkeypatch.setattr(draw_down, "_usage_draw_down", broken_for_acme)
    rate()

    assert (balance(acme), balance(globex)) == (Decimal("10"), Decimal("9.99"))
    assert list(DrawDownDue.objects.values_list("customer_id", flat=True)) == [acme.pk]
    assert "drawing credits for customer" in caplog.text

    monkeypatch.setattr(draw_down, "_usage_draw_down", real)
    rate()
    assert (balance(acme), balance(globex)) == (Decimal("9.99"), Decimal("9.99"))
    assert not DrawDownDue.objects.exists()


def test_credits_granted_before_re_rating_lowers_a_short_period_pay_what_is_still_short(
    contract, rate_card, monkeypatch
):
    from billing.rating import rerating
    from billing.rating.draw_down import usage_draw_down_pending, usage_shortfalls_cover
    from billing.rating.rater import _rate_batch, terms_changes_apply
    from wallets import services as wallets_services

    from .invoice_support import clock_set

    # given 10.00 of usage past 5.00 of credits: 5.00 drawn, 5.00 short
    acme = contract.customer
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)
    send(("a", 10, "gpt-4o", BIG))
    rate()
    assert (UsageDrawDown.objects.get().drawn, UsageDrawDown.objects.get().short) == (
        Decimal("5"), Decimal("5"),
    )  # fmt: skip
    # and 3.00 of credits granted a minute later, before a rater offered them the shortfall
    monkeypatch.setattr(wallets_services, "rating_nudge", lambda: None)
    monkeypatch.setattr(rerating, "rating_nudge", lambda: None)
    clock = clock_set(monkeypatch, NOW + timedelta(minutes=1))
    credit_grant(customer=acme, amount="3", source=CreditGrant.Source.PURCHASED)

    # when, a minute later, re-rating lowers the call to 8.00 and a pass draws the period
    # before the next rater offers the shortfall to the grant
    clock.now = NOW + timedelta(minutes=2)
    version = rate_card_version_schedule(
        rate_card=rate_card, effective_from=NOVEMBER, correction=True
    )
    price = version.prices.get()
    price_update(price=price, rates={**price.rates, "rate_out": {"amount": "8", "per": 10**6}})
    period_rerate(customer=acme, at=NOW, apply=True)
    terms_changes_apply()
    assert _rate_batch(10) == 1
    assert usage_draw_down_pending() == 1
    usage_shortfalls_cover()

    # then 2.00 came off the shortfall, and the grant paid the 3.00 still short: what the
    # pass drew for the period was offered to it, as the pass saw it under the wallet's lock
    record = UsageDrawDown.objects.get()
    assert (record.drawn, record.short) == (Decimal("8"), Decimal(0))
    assert balance(acme) == Decimal(0)


def test_a_shortfall_whose_drawing_fails_holds_back_no_rating(
    contract, rate_card, monkeypatch, caplog
):
    from billing.models import DrawDownDue
    from billing.rating import draw_down
    from contracts.services import contract_create, customer_create
    from wallets import services as wallets_services

    # given acme's 10.00 of usage 5.00 past its credits, and 8.00 of credits granted since
    acme = contract.customer
    credit_grant(customer=acme, amount="5", source=CreditGrant.Source.PURCHASED)
    send(("a", 10, "gpt-4o", BIG))
    rate()
    monkeypatch.setattr(wallets_services, "rating_nudge", lambda: None)
    credit_grant(customer=acme, amount="8", source=CreditGrant.Source.PURCHASED)
    # and globex, with credits, whose call waits to be rated
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    contract_create(customer=globex, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
    credit_grant(customer=globex, amount="10", source=CreditGrant.Source.PURCHASED)
    ingest(event("g", NOW, customer="globex"))
    real = draw_down._usage_draw_down

    def broken_for_acme(periods):
        if any(customer == acme.pk for customer, _ in periods):
            raise RuntimeError("acme's terms cannot be read")
        real(periods)

    monkeypatch.setattr(draw_down, "_usage_draw_down", broken_for_acme)

    # when the rater runs, and offering acme's shortfall to its credits fails
    assert rate() == 1

    # then globex's call was rated and drawn; acme's period is logged and kept for later
    assert (balance(acme), balance(globex)) == (Decimal("8"), Decimal("9.99"))
    assert "drawing credits for customer" in caplog.text
    assert list(DrawDownDue.objects.values_list("customer_id", flat=True)) == [acme.pk]
    monkeypatch.setattr(draw_down, "_usage_draw_down", real)
    rate()
    record = UsageDrawDown.objects.get(customer=acme)
    assert (record.drawn, record.short, balance(acme)) == (Decimal("10"), Decimal(0), Decimal(3))


def test_a_hold_is_settled_by_the_draw_of_its_calls_period_and_no_other(acme, now):
    from billing.rating import draw_down
    from billing.rating.draw_down import usage_draw_down_pending
    from billing.rating.rater import _rate_batch, terms_changes_apply
    from contracts.rate_cards import price_create, rate_card_create
    from contracts.services import contract_create
    from wallets.models import Hold
    from wallets.services import hold_place

    from .conftest import GPT_4O_FORMULA, GPT_4O_RATES

    # given gpt-4o's list prices from October, a call held in October and another in
    # November, the November one queued for drawing first
    start = NOVEMBER - timedelta(days=31)
    card = rate_card_create(name="Standard", currency="USD", effective_from=start)
    price_create(
        version=card.versions.get(),
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula=GPT_4O_FORMULA,
    )
    contract_create(customer=acme, starts_at=start, rate_card=card, anchor_day=1)
    terms_changes_apply()  # as a rater run does first: no event waits on the new contract
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    hold = hold_place(customer=acme, amount="4")
    ingest(event("november", NOW - timedelta(minutes=1)))
    assert _rate_batch(10) == 1
    october = NOVEMBER - timedelta(days=10)
    ingest(event("october", october, properties={"hold_id": str(hold.pk)}))
    assert _rate_batch(10) == 1
    take = draw_down.draw_downs_take
    takes = []

    def first_chunk_only(chunk):
        takes.append(take(chunk) if not takes else [])
        return takes[-1]

    # when a pass draws November alone
    draw_down.draw_downs_take = first_chunk_only
    try:
        assert usage_draw_down_pending(chunk=1) == 1
    finally:
        draw_down.draw_downs_take = take
    assert takes[0] == [(acme.pk, NOVEMBER)]

    # then the October call's hold still holds: its cost is not drawn yet
    assert Hold.objects.get().status == "active"
    assert balance(acme) == Decimal("9.99")
    # and the pass that draws October settles it
    assert usage_draw_down_pending() == 1
    hold.refresh_from_db()
    assert (hold.status, hold.settled_cost) == ("settled", Decimal("0.01"))
    assert balance(acme) == Decimal("9.98")


def test_usage_that_re_rating_moves_to_another_period_is_given_back_where_it_was(acme, rate_card):
    from datetime import UTC, datetime

    from contracts.services import contract_create, contract_end

    # given a contract billed from the 10th, and a call of 0.01 on November 14 drawn in its
    # period from November 10
    credit_grant(customer=acme, amount="10", source=CreditGrant.Source.PURCHASED)
    first = contract_create(customer=acme, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=10)
    ingest(event("call", datetime(2026, 11, 14, tzinfo=UTC)))
    rate()
    assert balance(acme) == Decimal("9.99")

    # when the contract ends on November 12 and one billed from the 1st starts there
    contract_end(contract=first, ends_at=datetime(2026, 11, 12, tzinfo=UTC))
    contract_create(
        customer=acme, starts_at=datetime(2026, 11, 12, tzinfo=UTC), rate_card=rate_card,
        anchor_day=1,
    )  # fmt: skip
    rate()

    # then the call is drawn in its new period from November 1 and given back in the old
    # one: it is paid once
    drawn = dict(UsageDrawDown.objects.values_list("period_start", "drawn"))
    assert drawn == {datetime(2026, 11, 10, tzinfo=UTC): Decimal(0), NOVEMBER: Decimal("0.01")}
    assert balance(acme) == Decimal("9.99")
