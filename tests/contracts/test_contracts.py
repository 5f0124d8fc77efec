"""Contracts and amendments: the services that write them and the selectors that read them."""

import multiprocessing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from contracts.models import Contract, ContractTerms, TermsChange
from contracts.rate_cards import price_create, rate_card_create, rate_card_version_schedule
from contracts.selectors import (
    contract_get,
    contract_list,
    contract_terms_at,
    contract_terms_current,
    rate_card_customers,
)
from contracts.services import contract_amend, contract_create, contract_end, customer_create

from .contract_support import (
    CARDS_START,
    PER_1M,
    card_create,
    changes,
    contracts_snapshot,
    utc,
)

FEB = utc(2025, 2, 1)
MAR = utc(2025, 3, 1)
APR = utc(2025, 4, 1)
MAY = utc(2025, 5, 1)
JUN = utc(2025, 6, 1)
JUL = utc(2025, 7, 1)
MICROSECOND = timedelta(microseconds=1)
OVERRIDE = {"gpt-4o": {"rate_in": {"amount": "2.00", "per": PER_1M}}}
TERMS_COLUMNS = (
    "number",
    "effective_from",
    "rate_card__name",
    "fixed_fee",
    "included_allowance",
    "overage_policy",
    "minimum_commitment",
    "discount_percent",
    "price_overrides",
    "note",
    "created_by",
)


def terms_rows(contract: Contract) -> list[tuple]:
    return list(contract.terms.order_by("number").values_list(*TERMS_COLUMNS))


@pytest.fixture
def euro(db):
    return card_create("Euro", "EUR")


@pytest.fixture
def signed(acme, standard):
    """Acme's contract from 1 February 2025, open-ended, with every term set."""
    return contract_create(
        customer=acme,
        starts_at=FEB,
        rate_card=standard,
        fixed_fee=Decimal("500.00"),
        included_allowance=Decimal("200"),
        overage_policy="block",
        minimum_commitment=Decimal("1000"),
        discount_percent=Decimal("12.5"),
        price_overrides=OVERRIDE,
        note="Signed on 28 January",
        created_by="ops",
    )


SIGNED_TERMS = (
    1,
    FEB,
    "Standard",
    Decimal("500"),
    Decimal("200"),
    "block",
    Decimal("1000"),
    Decimal("12.5"),
    OVERRIDE,
    "Signed on 28 January",
    "ops",
)


# --- contract_create --------------------------------------------------------------------


def test_a_new_contract_holds_its_first_terms_from_its_start(clock, signed):
    contract = Contract.objects.get()

    assert (
        contract.customer.external_id,
        contract.starts_at,
        contract.ends_at,
        contract.billing_cycle,
        contract.anchor_day,
        contract.anchor_month,
        contract.created_at,
    ) == ("acme", FEB, None, "monthly", 1, 2, clock.current)
    assert terms_rows(contract) == [SIGNED_TERMS]
    assert contract.terms.get().created_at == clock.current


def test_a_new_contract_is_a_terms_change_from_its_start(signed):
    assert changes() == [("acme", FEB)]
    assert TermsChange.objects.get().applied_at is None


def test_unset_terms_take_their_defaults(acme, standard):
    contract = contract_create(customer=acme, starts_at=FEB, rate_card=standard)

    assert terms_rows(contract) == [
        (1, FEB, "Standard", Decimal(0), Decimal(0), "arrears", Decimal(0), Decimal(0), {}, "", "")
    ]


@pytest.mark.parametrize(
    ("starts_at", "anchor_day", "anchor_month"),
    [
        (utc(2025, 3, 15, 9, 30), 15, 3),
        (utc(2025, 1, 31), 31, 1),
        # 01:00 on 1 March at UTC+2 is 23:00 on 28 February in UTC: periods are cut in UTC.
        (datetime(2025, 3, 1, 1, tzinfo=timezone(timedelta(hours=2))), 28, 2),
    ],
)
def test_the_anchor_defaults_to_the_start_in_utc(
    acme, standard, starts_at, anchor_day, anchor_month
):
    contract = contract_create(
        customer=acme, starts_at=starts_at, rate_card=standard, billing_cycle="yearly"
    )

    contract.refresh_from_db()
    assert (contract.anchor_day, contract.anchor_month) == (anchor_day, anchor_month)


def test_the_anchor_given_cuts_the_periods(acme, standard):
    contract = contract_create(
        customer=acme,
        starts_at=utc(2025, 2, 10, 14),
        rate_card=standard,
        billing_cycle="quarterly",
        anchor_day=31,
        anchor_month=3,
    )

    contract.refresh_from_db()
    assert (contract.billing_cycle, contract.anchor_day, contract.anchor_month) == (
        "quarterly",
        31,
        3,
    )
    # The first period is cut by the start: the contract covers only its tail.
    assert contract.period_bounds(contract.starts_at) == (utc(2024, 12, 31), utc(2025, 3, 31))
    assert contract.period_bounds(utc(2025, 3, 31)) == (utc(2025, 3, 31), utc(2025, 6, 30))


def test_an_end_may_be_given_at_creation(acme, standard):
    contract = contract_create(customer=acme, starts_at=FEB, ends_at=JUL, rate_card=standard)

    contract.refresh_from_db()
    assert (contract.starts_at, contract.ends_at) == (FEB, JUL)
    assert changes() == [("acme", FEB)]


OVERLAP = (
    "acme already has a contract from 2025-02-01 00:00 UTC (until 2025-06-01 00:00 UTC): "
    "contracts of a customer cannot overlap; end that one first."
)


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        (MAR, None),
        (MAR, APR),
        (utc(2025, 1, 1), FEB + MICROSECOND),
        (utc(2025, 1, 1), None),
        (utc(2025, 1, 1), JUL),
        (JUN - MICROSECOND, JUL),
        (FEB, JUN),
    ],
)
def test_a_contract_overlapping_another_is_refused(acme, standard, starts_at, ends_at):
    contract_create(customer=acme, starts_at=FEB, ends_at=JUN, rate_card=standard)
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_create(customer=acme, starts_at=starts_at, ends_at=ends_at, rate_card=standard)

    assert refused.value.messages == [OVERLAP]
    assert contracts_snapshot() == before


def test_an_open_ended_contract_blocks_any_later_one(signed, standard):
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_create(customer=signed.customer, starts_at=utc(2030, 1, 1), rate_card=standard)

    assert refused.value.messages == [
        "acme already has a contract from 2025-02-01 00:00 UTC (open-ended): contracts of a "
        "customer cannot overlap; end that one first."
    ]
    assert contracts_snapshot() == before


@pytest.mark.parametrize(("starts_at", "ends_at"), [(utc(2025, 1, 1), FEB), (JUN, None)])
def test_contracts_may_meet_end_to_start(acme, standard, starts_at, ends_at):
    contract_create(customer=acme, starts_at=FEB, ends_at=JUN, rate_card=standard)

    contract_create(customer=acme, starts_at=starts_at, ends_at=ends_at, rate_card=standard)

    assert list(Contract.objects.order_by("starts_at").values_list("starts_at", "ends_at")) == (
        sorted([(FEB, JUN), (starts_at, ends_at)])
    )


def test_another_customers_contract_is_no_overlap(signed, globex, standard):
    contract_create(customer=globex, starts_at=FEB, rate_card=standard)

    assert sorted(Contract.objects.values_list("customer__external_id", flat=True)) == [
        "acme",
        "globex",
    ]


def test_a_rate_card_in_another_currency_is_refused(acme, euro):
    with pytest.raises(ValidationError) as refused:
        contract_create(customer=acme, starts_at=FEB, rate_card=euro)

    assert refused.value.message_dict == {
        "rate_card": ["Euro (EUR) is priced in EUR; acme is billed in USD."]
    }
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_a_contract_may_start_before_its_rate_card_has_prices(acme, standard):
    """The usage it covers had no contract, so none that was priced is left unpriced: it
    starts where it was agreed, and what comes before the card's prices stays unpriced."""
    contract = contract_create(customer=acme, starts_at=utc(2024, 12, 1), rate_card=standard)

    assert (contract.starts_at, contract.terms.get().effective_from) == (
        utc(2024, 12, 1),
        utc(2024, 12, 1),
    )
    assert changes() == [("acme", utc(2024, 12, 1))]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gpt-5": {"rate_in": {"amount": "1", "per": 1}}}, "Standard has no price named 'gpt-5'."),
        (
            {"gpt-4o": {"rate_image": {"amount": "1", "per": 1}}},
            "gpt-4o: no rate named rate_image (it has rate_cached, rate_in, rate_out).",
        ),
        (
            {"embeddings": {"rate_out": {"amount": "1", "per": 1}}},
            "embeddings: no rate named rate_out (it has rate_in).",
        ),
        (
            {"gpt-4o": {"rate_in": {"amount": 2.0, "per": PER_1M}}},
            "gpt-4o: 'rate_in': write the amount as text, e.g. \"2.50\" (money is never a float).",
        ),
        (
            {"gpt-4o": {"rate_in": {"amount": "2", "per": 7}}},
            "gpt-4o: 'rate_in': the unit must be per 1, 1000 or 1000000 units.",
        ),
        (
            {"gpt-4o": {"rate_in": {"amount": "-2", "per": 1}}},
            "gpt-4o: 'rate_in': the amount must be a number of at least 0.",
        ),
        ({"gpt-4o": {}}, "gpt-4o: name at least one rate."),
        (["gpt-4o"], 'Use {"price name": {"rate_in": {"amount": "2.00", "per": 1000000}}}.'),
        (
            {"gpt-4o": "2.00"},
            'Use {"price name": {"rate_in": {"amount": "2.00", "per": 1000000}}}.',
        ),
    ],
)
def test_overrides_must_name_prices_and_rates_of_the_rate_card(acme, standard, overrides, message):
    with pytest.raises(ValidationError) as refused:
        contract_create(customer=acme, starts_at=FEB, rate_card=standard, price_overrides=overrides)

    assert refused.value.message_dict == {"price_overrides": [message]}
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_an_override_may_name_a_price_of_any_version_of_the_rate_card(acme, standard):
    later = rate_card_version_schedule(rate_card=standard, effective_from=JUN)
    price_create(
        version=later,
        name="o3",
        model_pattern="o3",
        rates={"rate_in": {"amount": "2", "per": PER_1M}},
        formula="input_tokens * rate_in",
    )
    overrides = {"o3": {"rate_in": {"amount": "1.50", "per": PER_1M}}}

    contract = contract_create(
        customer=acme, starts_at=FEB, rate_card=standard, price_overrides=overrides
    )

    assert contract.terms.get().price_overrides == overrides


def test_every_wrong_field_of_the_contract_and_its_terms_is_named_at_once(acme, standard):
    with pytest.raises(ValidationError) as refused:
        contract_create(
            customer=acme,
            starts_at=FEB,
            rate_card=standard,
            billing_cycle="weekly",
            anchor_day=32,
            anchor_month=13,
            fixed_fee="-1",
            included_allowance="abc",
            minimum_commitment="1.12345",
            discount_percent="150",
            overage_policy="later",
            note="x" * 201,
        )

    assert refused.value.message_dict == {
        "billing_cycle": ["Value 'weekly' is not a valid choice."],
        "anchor_day": ["Use a day from 1 to 31."],
        "anchor_month": ["Use a month from 1 to 12."],
        "fixed_fee": ["Must not be negative."],
        "included_allowance": ["“abc” value must be a decimal number."],
        "minimum_commitment": ["Ensure that there are no more than 4 decimal places."],
        "discount_percent": ["Use a percentage from 0 to 100."],
        "overage_policy": ["Value 'later' is not a valid choice."],
        "note": ["Ensure this value has at most 200 characters (it has 201)."],
    }
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_an_anchor_of_zero_is_refused_not_replaced(acme, standard):
    with pytest.raises(ValidationError) as refused:
        contract_create(
            customer=acme, starts_at=FEB, rate_card=standard, anchor_day=0, anchor_month=0
        )

    assert refused.value.message_dict == {
        "anchor_day": ["Use a day from 1 to 31."],
        "anchor_month": ["Use a month from 1 to 12."],
    }
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_money_as_a_float_is_refused(acme, standard):
    with pytest.raises(ValidationError) as refused:
        contract_create(
            customer=acme, starts_at=FEB, rate_card=standard, fixed_fee=0.1, discount_percent=5.0
        )

    message = 'Write the amount as text or a Decimal, e.g. "10.00": money is never a float.'
    assert refused.value.message_dict == {"fixed_fee": [message], "discount_percent": [message]}
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_money_as_text_is_stored_exactly(acme, standard):
    contract = contract_create(
        customer=acme,
        starts_at=FEB,
        rate_card=standard,
        fixed_fee="0.0001",
        included_allowance="99999999999.9999",
        minimum_commitment="12345678901.2345",
        discount_percent="33.3333",
    )

    # 15 digits: SQLite too keeps them exactly (it rounds NUMERIC beyond 15 digits).
    terms = ContractTerms.objects.get(contract=contract)
    assert (
        terms.fixed_fee,
        terms.included_allowance,
        terms.minimum_commitment,
        terms.discount_percent,
    ) == (
        Decimal("0.0001"),
        Decimal("99999999999.9999"),
        Decimal("12345678901.2345"),
        Decimal("33.3333"),
    )
    assert terms.discount == Decimal("0.333333")


def test_money_beyond_what_is_kept_exactly_is_refused(acme, standard):
    with pytest.raises(ValidationError) as refused:
        contract_create(
            customer=acme,
            starts_at=FEB,
            rate_card=standard,
            fixed_fee="100000000000",
            included_allowance="12.123456",
        )

    assert refused.value.message_dict == {
        "fixed_fee": ["Ensure that there are no more than 11 digits before the decimal point."],
        "included_allowance": ["Ensure that there are no more than 4 decimal places."],
    }
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


INSTANT = "Give a date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z."


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "errors"),
    [
        (datetime(2025, 2, 1), None, {"starts_at": [INSTANT]}),
        ("2025-02-01T00:00:00Z", None, {"starts_at": [INSTANT]}),
        (None, None, {"starts_at": ["This field is required."]}),
        (FEB, datetime(2025, 6, 1), {"ends_at": [INSTANT]}),
        (FEB, FEB, {"ends_at": ["A contract must end after it starts."]}),
        (FEB, FEB - MICROSECOND, {"ends_at": ["A contract must end after it starts."]}),
    ],
)
def test_instants_must_be_aware_and_in_order(acme, standard, starts_at, ends_at, errors):
    with pytest.raises(ValidationError) as refused:
        contract_create(customer=acme, starts_at=starts_at, ends_at=ends_at, rate_card=standard)

    assert refused.value.message_dict == errors
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_a_missing_rate_card_is_refused(acme):
    with pytest.raises(ValidationError) as refused:
        contract_create(customer=acme, starts_at=FEB, rate_card=None)

    assert refused.value.message_dict == {"rate_card": ["This field cannot be null."]}
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_a_field_that_is_not_a_term_is_a_programming_error(acme, standard):
    with pytest.raises(TypeError) as refused:
        contract_create(customer=acme, starts_at=FEB, rate_card=standard, currency="EUR")

    assert str(refused.value) == "not terms of a contract: currency"
    assert contracts_snapshot() == {"contracts": [], "terms": [], "changes": []}


def test_instants_are_stored_in_utc(acme, standard):
    starts_at = datetime(2025, 2, 1, 9, tzinfo=timezone(timedelta(hours=9)))

    contract_create(customer=acme, starts_at=starts_at, rate_card=standard)

    contract = Contract.objects.get()
    assert contract.starts_at == utc(2025, 2, 1, 0)
    assert contract.starts_at.tzinfo == UTC


# --- contract_amend ---------------------------------------------------------------------


def test_an_amendment_copies_the_terms_before_it_with_the_changes(clock, signed):
    clock.advance(days=40)

    terms = contract_amend(
        contract=signed,
        effective_from=utc(2025, 3, 10, 12),
        fixed_fee=Decimal("650"),
        discount_percent=Decimal("15"),
        note="Upsell",
        created_by="ops2",
    )

    assert terms_rows(signed) == [
        SIGNED_TERMS,
        (
            2,
            utc(2025, 3, 10, 12),
            "Standard",
            Decimal("650"),
            Decimal("200"),
            "block",
            Decimal("1000"),
            Decimal("15"),
            OVERRIDE,
            "Upsell",
            "ops2",
        ),
    ]
    assert terms == ContractTerms.objects.get(number=2)
    assert terms.created_at == clock.current
    assert ContractTerms.objects.get(number=1).created_at == clock.current - timedelta(days=40)


def test_an_amendment_is_a_terms_change_from_its_instant(signed):
    contract_amend(contract=signed, effective_from=utc(2025, 3, 10, 12), fixed_fee="650")

    assert changes() == [("acme", FEB), ("acme", utc(2025, 3, 10, 12))]


def test_each_amendment_starts_from_the_latest_terms(signed, premium):
    contract_amend(contract=signed, effective_from=MAR, rate_card=premium, price_overrides={})
    contract_amend(contract=signed, effective_from=APR, overage_policy="arrears")

    assert [row[:3] + row[5:6] + row[8:9] for row in terms_rows(signed)] == [
        (1, FEB, "Standard", "block", OVERRIDE),
        (2, MAR, "Premium", "block", {}),
        (3, APR, "Premium", "arrears", {}),
    ]


def test_an_amendment_does_not_share_the_overrides_it_copies(signed):
    terms = contract_amend(contract=signed, effective_from=MAR)
    terms.price_overrides["gpt-4o"]["rate_in"]["amount"] = "0.01"

    assert ContractTerms.objects.get(number=1).price_overrides == OVERRIDE


def test_an_amendment_may_change_every_term(signed, premium):
    contract_amend(
        contract=signed,
        effective_from=MAR,
        rate_card=premium,
        fixed_fee="0",
        included_allowance="50.50",
        overage_policy="arrears",
        minimum_commitment="0",
        discount_percent="0",
        price_overrides={"embeddings": {"rate_in": {"amount": "0.01", "per": PER_1M}}},
    )

    assert terms_rows(signed)[1] == (
        2,
        MAR,
        "Premium",
        Decimal("0"),
        Decimal("50.5"),
        "arrears",
        Decimal("0"),
        Decimal("0"),
        {"embeddings": {"rate_in": {"amount": "0.01", "per": PER_1M}}},
        "",
        "",
    )


def contract_with_amendment_and_end(acme, standard) -> Contract:
    """Acme's contract over [1 February, 1 July) with an amendment from 1 April."""
    contract = contract_create(customer=acme, starts_at=FEB, ends_at=JUL, rate_card=standard)
    contract_amend(contract=contract, effective_from=APR, fixed_fee="100")
    return contract


AFTER_LATEST = "Must be after the latest terms start (2025-04-01 00:00 UTC)."
BEFORE_END = "Must be before the contract ends (2025-07-01 00:00 UTC)."


@pytest.mark.parametrize(
    ("effective_from", "message"),
    [
        (APR, AFTER_LATEST),
        (utc(2025, 3, 15), AFTER_LATEST),
        (FEB, AFTER_LATEST),
        (utc(2025, 1, 1), AFTER_LATEST),
        (JUL, BEFORE_END),
        (utc(2025, 8, 1), BEFORE_END),
    ],
)
def test_an_amendment_must_come_after_the_latest_and_inside_the_contract(
    acme, standard, effective_from, message
):
    contract = contract_with_amendment_and_end(acme, standard)
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_amend(contract=contract, effective_from=effective_from, fixed_fee="200")

    assert refused.value.message_dict == {"effective_from": [message]}
    assert contracts_snapshot() == before


@pytest.mark.parametrize("effective_from", [APR + MICROSECOND, JUL - MICROSECOND])
def test_an_amendment_may_start_just_after_the_latest_or_just_before_the_end(
    acme, standard, effective_from
):
    contract = contract_with_amendment_and_end(acme, standard)

    contract_amend(contract=contract, effective_from=effective_from, fixed_fee="200")

    assert [row[:2] for row in terms_rows(contract)] == [(1, FEB), (2, APR), (3, effective_from)]


def test_an_amendment_refuses_a_naive_or_missing_instant(signed):
    before = contracts_snapshot()

    for effective_from, message in [
        (datetime(2025, 3, 1), INSTANT),
        (None, "This field is required."),
    ]:
        with pytest.raises(ValidationError) as refused:
            contract_amend(contract=signed, effective_from=effective_from, fixed_fee="1")
        assert refused.value.message_dict == {"effective_from": [message]}

    assert contracts_snapshot() == before


def test_an_amendment_names_every_wrong_field_at_once(signed, euro):
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_amend(
            contract=signed,
            effective_from=FEB,
            included_allowance="-5",
            overage_policy="never",
            note="y" * 201,
        )

    assert refused.value.message_dict == {
        "effective_from": ["Must be after the latest terms start (2025-02-01 00:00 UTC)."],
        "included_allowance": ["Must not be negative."],
        "overage_policy": ["Value 'never' is not a valid choice."],
        "note": ["Ensure this value has at most 200 characters (it has 201)."],
    }
    assert contracts_snapshot() == before


@pytest.mark.parametrize(
    ("terms_changes", "errors"),
    [
        (
            {"rate_card": "euro"},
            {"rate_card": ["Euro (EUR) is priced in EUR; acme is billed in USD."]},
        ),
        (
            {"fixed_fee": 9.99},
            {
                "fixed_fee": [
                    'Write the amount as text or a Decimal, e.g. "10.00": money is never a float.'
                ]
            },
        ),
        (
            {"price_overrides": {"gpt-4o": {"rate_out": {"amount": "9", "per": 1}}, "o1": {}}},
            {"price_overrides": ["o1: name at least one rate."]},
        ),
        (
            {"price_overrides": {"o1": {"rate_in": {"amount": "9", "per": 1}}}},
            {"price_overrides": ["Standard has no price named 'o1'."]},
        ),
    ],
)
def test_an_amendments_terms_are_checked_like_a_contracts(signed, euro, terms_changes, errors):
    if terms_changes.get("rate_card") == "euro":
        terms_changes = {**terms_changes, "rate_card": euro}
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_amend(contract=signed, effective_from=MAR, **terms_changes)

    assert refused.value.message_dict == errors
    assert contracts_snapshot() == before


def test_a_new_rate_card_must_have_the_prices_the_copied_overrides_name(signed):
    other = rate_card_create(name="Bare", currency="USD", effective_from=CARDS_START)
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_amend(contract=signed, effective_from=MAR, rate_card=other)

    assert refused.value.message_dict == {"price_overrides": ["Bare has no price named 'gpt-4o'."]}
    assert contracts_snapshot() == before


def test_a_new_rate_card_must_have_prices_when_the_amendment_starts(signed):
    late = card_create("Late", effective_from=JUN)
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_amend(contract=signed, effective_from=MAR, rate_card=late, price_overrides={})

    assert refused.value.message_dict == {
        "rate_card": [
            "Late has no prices at 2025-03-01 00:00 UTC (from 2025-06-01 00:00 UTC): "
            "the terms would leave usage unpriced."
        ]
    }
    assert contracts_snapshot() == before


def test_a_mid_period_amendment_splits_the_period_at_its_instant(acme, standard):
    contract = contract_create(customer=acme, starts_at=FEB, rate_card=standard, anchor_day=1)
    instant = utc(2025, 3, 10, 12)

    contract_amend(contract=contract, effective_from=instant, fixed_fee="300")

    assert contract.period_bounds(instant) == (MAR, APR)
    assert contract_terms_at(customer_id=acme.pk, at=instant - MICROSECOND).number == 1
    assert contract_terms_at(customer_id=acme.pk, at=instant).number == 2


# --- contract_end -----------------------------------------------------------------------


def test_ending_a_contract_is_a_terms_change_from_the_end(signed):
    contract = contract_end(contract=signed, ends_at=JUN)

    assert contract.ends_at == JUN
    assert Contract.objects.get().ends_at == JUN
    assert changes() == [("acme", FEB), ("acme", JUN)]


@pytest.mark.parametrize(
    ("ends_at", "new_end", "changed_from"),
    [
        (JUN, JUL, JUN),  # later: usage from the old end on is now under the contract
        (JUN, APR, APR),  # earlier: usage from the new end on is no longer
        (JUN, None, JUN),  # re-opened
    ],
)
def test_moving_the_end_is_a_terms_change_from_the_earlier_end(
    acme, standard, ends_at, new_end, changed_from
):
    contract = contract_create(customer=acme, starts_at=FEB, ends_at=ends_at, rate_card=standard)

    contract_end(contract=contract, ends_at=new_end)

    assert Contract.objects.get().ends_at == new_end
    assert changes() == [("acme", FEB), ("acme", changed_from)]


@pytest.mark.parametrize("ends_at", [JUN, None])
def test_ending_a_contract_where_it_ends_changes_nothing(acme, standard, ends_at):
    contract = contract_create(customer=acme, starts_at=FEB, ends_at=ends_at, rate_card=standard)
    before = contracts_snapshot()

    assert contract_end(contract=contract, ends_at=ends_at) == contract
    assert contracts_snapshot() == before


@pytest.mark.parametrize(
    ("ends_at", "message"),
    [
        (APR, "Must be after the latest terms start (2025-04-01 00:00 UTC)."),
        (MAR, "Must be after the latest terms start (2025-04-01 00:00 UTC)."),
        (utc(2025, 1, 1), "Must be after the latest terms start (2025-04-01 00:00 UTC)."),
        (datetime(2025, 5, 1), INSTANT),
        ("2025-05-01", INSTANT),
    ],
)
def test_a_contract_ends_after_its_latest_terms_start(acme, standard, ends_at, message):
    contract = contract_with_amendment_and_end(acme, standard)
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_end(contract=contract, ends_at=ends_at)

    assert refused.value.message_dict == {"ends_at": [message]}
    assert contracts_snapshot() == before


@pytest.mark.parametrize("ends_at", [JUL, None])
def test_an_end_cannot_move_into_the_next_contract(acme, standard, ends_at):
    first = contract_create(customer=acme, starts_at=FEB, ends_at=JUN, rate_card=standard)
    contract_create(customer=acme, starts_at=JUN, rate_card=standard)
    before = contracts_snapshot()

    with pytest.raises(ValidationError) as refused:
        contract_end(contract=first, ends_at=ends_at)

    assert refused.value.messages == [
        "acme already has a contract from 2025-06-01 00:00 UTC (open-ended): contracts of a "
        "customer cannot overlap; end that one first."
    ]
    assert contracts_snapshot() == before


def test_to_change_the_cycle_end_the_contract_and_start_another(signed, standard):
    # Given a monthly contract, to be billed quarterly from 1 July
    contract_end(contract=signed, ends_at=JUL)

    # When a quarterly contract starts where it ends
    quarterly = contract_create(
        customer=signed.customer, starts_at=JUL, rate_card=standard, billing_cycle="quarterly"
    )

    # Then each instant has one contract, and the cycle changes at the boundary
    assert contract_terms_at(customer_id=signed.customer_id, at=JUL - MICROSECOND).contract == (
        signed
    )
    assert contract_terms_at(customer_id=signed.customer_id, at=JUL).contract == quarterly
    assert quarterly.period_bounds(JUL) == (JUL, utc(2025, 10, 1))
    assert changes() == [("acme", FEB), ("acme", JUL), ("acme", JUL)]


# --- selectors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "number"),
    [
        (FEB - MICROSECOND, None),
        (FEB, 1),
        (APR - MICROSECOND, 1),
        (APR, 2),
        (JUL - MICROSECOND, 2),
        (JUL, None),
        (utc(2026, 1, 1), None),
    ],
)
def test_the_terms_in_force_at_an_instant(acme, standard, globex, at, number):
    contract_with_amendment_and_end(acme, standard)
    contract_create(customer=globex, starts_at=utc(2025, 1, 1), rate_card=standard)

    terms = contract_terms_at(customer_id=acme.pk, at=at)

    assert (terms and terms.number) == number
    if terms is not None:
        assert terms.contract.customer_id == acme.pk


def test_the_terms_in_force_follow_consecutive_contracts(acme, standard, premium):
    contract_create(customer=acme, starts_at=FEB, ends_at=APR, rate_card=standard)
    contract_create(customer=acme, starts_at=APR, rate_card=premium)

    names = [
        contract_terms_at(customer_id=acme.pk, at=at).rate_card.name
        for at in (APR - MICROSECOND, APR)
    ]

    assert names == ["Standard", "Premium"]


def test_the_contract_list_is_oldest_first_with_the_whole_history(
    acme, standard, premium, globex, django_assert_num_queries
):
    later = contract_create(customer=acme, starts_at=JUN, rate_card=premium)
    earlier = contract_create(customer=acme, starts_at=FEB, ends_at=JUN, rate_card=standard)
    contract_amend(contract=earlier, effective_from=APR, fixed_fee="10")
    contract_create(customer=globex, starts_at=FEB, rate_card=standard)

    with django_assert_num_queries(2):
        listed = [
            (contract, [(t.number, t.rate_card.name) for t in contract.terms.all()])
            for contract in contract_list(customer=acme)
        ]

    assert listed == [
        (earlier, [(1, "Standard"), (2, "Standard")]),
        (later, [(1, "Premium")]),
    ]


def test_a_contract_is_found_only_under_its_customer(signed, globex):
    assert contract_get(customer=signed.customer, contract_id=signed.pk) == signed
    assert contract_get(customer=signed.customer, contract_id=str(signed.pk)) == signed
    assert contract_get(customer=globex, contract_id=signed.pk) is None
    assert contract_get(customer=signed.customer, contract_id=signed.pk + 1) is None
    assert contract_get(customer=signed.customer, contract_id="one") is None
    assert contract_get(customer=signed.customer, contract_id=2**70) is None


@pytest.mark.parametrize(
    ("at", "number"),
    [
        (utc(2025, 1, 1), 1),
        (FEB, 1),
        (APR - MICROSECOND, 1),
        (APR, 2),
        (JUL, 2),
        (utc(2030, 1, 1), 2),
    ],
)
def test_the_current_terms_shown_for_a_contract(acme, standard, at, number):
    contract = contract_with_amendment_and_end(acme, standard)

    assert contract_terms_current(contract=contract, at=at).number == number


def test_the_current_terms_default_to_now(clock, acme, standard):
    contract = contract_with_amendment_and_end(acme, standard)
    clock.current = utc(2025, 4, 15)

    assert contract_terms_current(contract=contract).number == 2


def test_the_customers_of_a_rate_card_are_those_whose_terms_in_force_use_it(
    acme, globex, standard, premium
):
    initech = customer_create(external_id="initech", name="Initech", currency="USD")
    umbrella = customer_create(external_id="umbrella", name="Umbrella", currency="USD")
    contract_create(customer=acme, starts_at=FEB, rate_card=standard)
    moved = contract_create(customer=globex, starts_at=FEB, rate_card=standard)
    contract_amend(contract=moved, effective_from=APR, rate_card=premium)
    contract_create(customer=initech, starts_at=FEB, ends_at=APR, rate_card=standard)
    contract_create(customer=umbrella, starts_at=JUN, rate_card=standard)

    assert [c.external_id for c in rate_card_customers(rate_card=standard, at=MAR)] == [
        "acme",
        "globex",
        "initech",
    ]
    assert [c.external_id for c in rate_card_customers(rate_card=standard, at=MAY)] == ["acme"]
    assert [c.external_id for c in rate_card_customers(rate_card=premium, at=MAY)] == ["globex"]
    assert [c.external_id for c in rate_card_customers(rate_card=standard, at=JUN)] == [
        "acme",
        "umbrella",
    ]


# --- races (PostgreSQL: real processes, each with its own connection) -------------------

PROCESSES = 6


def _in_child(number, barrier, answers, action):
    connections.close_all()  # the inherited connection belongs to the parent
    barrier.wait(timeout=30)
    try:
        action(number)
        answers.put((number, "stored"))
    except ValidationError as error:
        answers.put((number, " ".join(error.messages)))
    finally:
        connections.close_all()


def race(action) -> list[str]:
    """Run `action(number)` in PROCESSES processes released at once; their answers in order."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    answers = context.Queue()
    connections.close_all()
    children = [
        context.Process(target=_in_child, args=(number, barrier, answers, action))
        for number in range(PROCESSES)
    ]
    for child in children:
        child.start()
    results = dict(answers.get(timeout=60) for _ in children)
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    return [results[number] for number in range(PROCESSES)]


@pytest.fixture
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("races between processes are tested on PostgreSQL")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_postgres_only")
def test_overlapping_contracts_racing_in_leave_exactly_one(acme, standard):
    answers = race(
        lambda n: contract_create(
            customer=acme, starts_at=FEB + timedelta(days=n), rate_card=standard
        )
    )

    assert answers.count("stored") == 1
    winner = answers.index("stored")
    start = f"2025-02-0{winner + 1} 00:00 UTC"
    assert [answer for answer in answers if answer != "stored"] == [
        f"acme already has a contract from {start} (open-ended): contracts of a customer "
        "cannot overlap; end that one first."
    ] * (PROCESSES - 1)
    assert list(Contract.objects.values_list("starts_at", flat=True)) == [
        FEB + timedelta(days=winner)
    ]
    assert ContractTerms.objects.count() == 1
    assert changes() == [("acme", FEB + timedelta(days=winner))]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_postgres_only")
def test_amendments_racing_for_one_instant_leave_exactly_one(acme, standard):
    contract = contract_create(customer=acme, starts_at=FEB, rate_card=standard)

    answers = race(
        lambda n: contract_amend(contract=contract, effective_from=MAR, fixed_fee=str(n))
    )

    assert answers.count("stored") == 1
    assert sorted(answers) == ["Must be after the latest terms start (2025-03-01 00:00 UTC)."] * (
        PROCESSES - 1
    ) + ["stored"]
    assert terms_rows(contract)[1][:4] == (2, MAR, "Standard", Decimal(answers.index("stored")))
    assert ContractTerms.objects.count() == 2
    assert changes() == [("acme", FEB), ("acme", MAR)]
