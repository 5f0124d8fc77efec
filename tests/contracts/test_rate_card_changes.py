"""The rate card writes behind the API and the admin's pages: rates merged by name, several
prices at once (all or none), prices removed, versions and clones made of a copy with
changes, and the races between writers of one version (PostgreSQL)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from common.audit import acting_as
from common.models import AuditEntry
from contracts.models import Price, RateCard, RateCardVersion
from contracts.price_corrections import price_correction_create
from contracts.rate_cards import (
    VERSION_LOCKED,
    price_delete,
    prices_create,
    rate_card_clone,
    rate_card_create,
    rate_card_version_lock,
    rate_card_version_schedule,
    rates_merged,
)

from .rate_card_api_support import EMBEDDINGS, GPT_4O_RATES, PER_1M, SEARCHES, rows
from .test_contracts import (
    _postgres_only,  # noqa: F401  (a fixture)
    race,
)

GPT_4O = {
    "name": "gpt-4o",
    "model_pattern": "gpt-4o",
    "rates": GPT_4O_RATES,
    "formula": "input_tokens * rate_in + output_tokens * rate_out + "
    "cached_input_tokens * rate_cached",
}
JANUARY = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def standard(db):
    return rate_card_create(
        name="Standard", currency="USD", effective_from=JANUARY, prices=[GPT_4O, EMBEDDINGS]
    )


def messages(error: pytest.ExceptionInfo) -> dict[str, list[str]]:
    return error.value.message_dict


# --- rates merged by name ----------------------------------------------------------------------


def test_rates_merge_by_name_keeping_units_and_removing_with_none():
    merged = rates_merged(
        GPT_4O_RATES,
        {
            "rate_out": "8.00",  # the amount: the unit stays per 1M
            "rate_in": Decimal("2.4"),
            "rate_cached": None,  # removed
            "rate_image": {"amount": "0.04", "per": 1},  # added with its unit
        },
    )

    assert merged == {
        "rate_in": {"amount": "2.4", "per": PER_1M},
        "rate_out": {"amount": "8.00", "per": PER_1M},
        "rate_image": {"amount": "0.04", "per": 1},
    }
    assert GPT_4O_RATES["rate_cached"] == {"amount": "1.25", "per": PER_1M}  # untouched


def test_a_merge_refuses_naming_each_rate():
    with pytest.raises(ValidationError) as refused:
        rates_merged(GPT_4O_RATES, {"rate_audio": "0.10", "rate_out": 8.0, "rate_x": None})

    errors = refused.value.error_dict["rates"]
    assert [(e.params["rate"], e.messages[0]) for e in errors] == [
        (
            "rate_audio",
            "'rate_audio': the price has no such rate (it has rate_in, rate_out, rate_cached); "
            'give a new rate with its unit, {"amount": "5.00", "per": 1000000}, and a formula '
            "that uses it.",
        ),
        ("rate_out", "'rate_out': write the amount as text, e.g. \"5.00\" (money is never a "
                     "float)."),
        ("rate_x", "'rate_x': the price has no such rate to remove (it has rate_in, rate_out, "
                   "rate_cached)."),
    ]  # fmt: skip


# --- several prices at once ---------------------------------------------------------------------


def test_several_prices_are_added_after_the_last_one(standard):
    version = standard.versions.get()

    added = prices_create(version=version, prices=[SEARCHES, {**GPT_4O, "name": "gpt-4o batch"}])

    assert [(price.name, price.position) for price in added] == [
        ("web search", 2),
        ("gpt-4o batch", 3),
    ]
    assert list(version.prices.values_list("name", flat=True)) == [
        "gpt-4o",
        "embeddings",
        "web search",
        "gpt-4o batch",
    ]


def test_several_prices_are_all_or_none(standard):
    version = standard.versions.get()
    before = rows()

    with pytest.raises(ValidationError) as refused:
        prices_create(
            version=version,
            prices=[
                SEARCHES,
                {**SEARCHES, "name": "searches", "package_price": "-1"},
                GPT_4O,
                {**SEARCHES},
            ],
        )

    assert messages(refused) == {
        "prices[1].package_price": ["Must not be negative."],
        "prices[2].name": ["Standard v1 already has a price named 'gpt-4o'."],
        "prices[3].name": [
            "prices[0] is named 'web search' too: names are unique within a version."
        ],
    }
    assert rows() == before


def test_a_card_refuses_an_instant_without_its_offset_and_a_slash_in_its_name(db):
    with pytest.raises(ValidationError) as refused:
        rate_card_create(name="EU/US", currency="USD", effective_from=datetime(2025, 1, 1))

    assert messages(refused) == {
        "effective_from": ["Give a date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z."],
        "name": ["A rate card's name cannot hold a /: the API finds a card by its name."],
    }  # fmt: skip
    assert RateCard.objects.count() == 0


# --- removing a price ----------------------------------------------------------------------------


def test_a_price_is_removed_with_the_trail_keeping_it(standard):
    price = standard.versions.get().prices.get(name="embeddings")

    with acting_as("command:test"):
        price_delete(price=price)

    assert list(Price.objects.values_list("name", flat=True)) == ["gpt-4o"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_repr, entry.after) == ("price.delete", "embeddings", None)
    assert (entry.before["kind"], entry.before["formula"]) == ("graduated", EMBEDDINGS["formula"])


def test_a_price_of_a_version_that_rated_usage_is_never_removed(standard):
    version = standard.versions.get()
    rate_card_version_lock(version=version)

    with pytest.raises(ValidationError) as refused:
        price_delete(price=version.prices.get(name="gpt-4o"))

    assert refused.value.code == VERSION_LOCKED
    assert Price.objects.count() == 2


# --- copies with changes ----------------------------------------------------------------------


def test_a_version_refused_for_its_changes_is_not_made(standard):
    before = rows()

    with pytest.raises(ValidationError) as refused:
        rate_card_version_schedule(
            rate_card=standard,
            effective_from=datetime(2025, 2, 1, tzinfo=UTC),
            prices=[
                {"name": "gpt-4o", "formula": "input_tokens * rate_inn"},
                {"name": "gpt-4o", "feature": "chat"},
            ],
            remove=["gpt-4o"],
        )

    assert messages(refused) == {
        "prices[0].name": ["'gpt-4o' is also removed: set it or remove it."],
        "prices[1].name": ["prices[0] sets 'gpt-4o' too: set it once."],
    }
    assert rows() == before
    assert RateCardVersion.objects.count() == 1


def test_a_clone_of_a_tiered_price_into_another_currency_needs_its_tiers(standard):
    tiers = [{"up_to": "100", "unit_price": "0.018"}, {"up_to": None, "unit_price": "0.009"}]

    europe = rate_card_clone(
        rate_card=standard,
        name="Europe",
        currency="EUR",
        prices=[
            {"name": "gpt-4o", "rates": {"rate_in": "2.30", "rate_out": "9.20",
                                         "rate_cached": "1.15"}},
            {"name": "embeddings", "tiers": tiers},
        ],
    )  # fmt: skip

    copied = {price.name: price for price in europe.versions.get().prices.all()}
    assert copied["embeddings"].tiers == tiers
    assert copied["embeddings"].rates == EMBEDDINGS["rates"]  # a quantity: copied as it was
    assert copied["gpt-4o"].rates["rate_out"] == {"amount": "9.20", "per": PER_1M}
    assert standard.versions.get().prices.get(name="gpt-4o").rates == GPT_4O_RATES


# --- races (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_postgres_only")
def test_prices_of_one_name_racing_into_a_version_leave_exactly_one(standard):
    version = standard.versions.get()

    answers = race(
        lambda n: prices_create(version=version, prices=[{**SEARCHES, "package_price": f"{n}"}])
    )

    assert answers.count("stored") == 1
    assert sorted(answers)[:-1] == ["Standard v1 already has a price named 'web search'."] * 5
    assert version.prices.get(name="web search").package_price == answers.index("stored")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_postgres_only")
def test_versions_racing_in_are_numbered_one_after_another(standard):
    answers = race(
        lambda n: rate_card_version_schedule(
            rate_card=standard, effective_from=datetime(2025, 2, 1 + n, tzinfo=UTC)
        )
    )

    stored = RateCardVersion.objects.filter(rate_card=standard).order_by("number")
    numbers = [version.number for version in stored]
    starts = [version.effective_from for version in stored]
    # each waits for the one before; one whose start is not after the latest is refused
    assert numbers == list(range(1, len(numbers) + 1))
    assert starts == sorted(starts)
    assert answers.count("stored") == len(numbers) - 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_postgres_only")
def test_corrections_racing_in_number_their_versions_one_after_another(standard):
    rate_card_version_lock(version=standard.versions.get())

    def correct(n: int) -> None:  # 1.50 to 6.50: never gpt-4o's 10.00, never one another's
        price_correction_create(
            rate_card=standard, price="gpt-4o", effective_from=datetime(2025, 1, 10, tzinfo=UTC),
            rates={"rate_out": f"{1 + n}.50"}, reason=f"correction {n}", created_by="ops",
        )  # fmt: skip

    answers = race(correct)

    assert answers == ["stored"] * 6
    numbers = list(standard.versions.order_by("number").values_list("number", flat=True))
    assert numbers == [1, 2, 3, 4, 5, 6, 7]
