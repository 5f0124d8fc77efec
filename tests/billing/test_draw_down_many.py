"""One draw-down pass over many customers' periods: each drawn exactly as by itself, in a
number of statements that does not grow with the customers. NOW is 2026-11-15 12:00 UTC;
CALL costs exactly 0.01 at gpt-4o's rates."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import UsageDrawDown, UsageRollup
from billing.periods import rollup_loaded
from billing.rating.rater import terms_changes_apply
from contracts.models import Price
from contracts.services import contract_create, customer_create
from wallets.alerts import alert_settings_update
from wallets.models import Alert, CreditGrant, Wallet
from wallets.services import credit_grant

from ..wallets.test_wallets import assert_consistent
from .conftest import NOVEMBER, NOW, event, ingest, rate

PURCHASED = CreditGrant.Source.PURCHASED


def customers(rate_card, names: list[str]):
    made = []
    for name in names:
        customer = customer_create(external_id=name, name=name, currency="USD")
        contract_create(customer=customer, starts_at=NOVEMBER, rate_card=rate_card, anchor_day=1)
        made.append(customer)
    return made


def calls(name: str, count: int, first: int = 0) -> list[dict]:
    return [
        event(f"{name}-{n}", NOW - timedelta(minutes=n + 1), customer=name)
        for n in range(first, first + count)
    ]


def test_one_pass_draws_each_customer_exactly_as_alone(rate_card):
    rich, poor, _walletless, budgeted = customers(
        rate_card, ["rich", "poor", "walletless", "budgeted"]
    )
    credit_grant(customer=rich, amount="1", source=PURCHASED, priority=1)
    credit_grant(customer=rich, amount="5", source=PURCHASED)
    credit_grant(customer=poor, amount="0.025", source=PURCHASED)
    credit_grant(customer=budgeted, amount="1", source=PURCHASED)
    alert_settings_update(customer=budgeted, budget=Decimal("0.04"), budget_shares=[50, 100])

    # one batch, so one pass draws all four periods together
    ingest(*calls("rich", 3), *calls("poor", 4), *calls("walletless", 2), *calls("budgeted", 3))
    assert rate() == 12

    drawn = {
        record.customer.external_id: (record.drawn, record.short)
        for record in UsageDrawDown.objects.select_related("customer")
    }
    assert drawn == {
        "rich": (Decimal("0.03"), Decimal(0)),
        "poor": (Decimal("0.025"), Decimal("0.015")),
        "budgeted": (Decimal("0.03"), Decimal(0)),
    }
    balances = dict(Wallet.objects.values_list("customer__external_id", "balance"))
    assert balances == {"rich": Decimal("5.97"), "poor": Decimal(0), "budgeted": Decimal("0.97")}
    # rich's priority grant first
    assert dict(
        CreditGrant.objects.filter(wallet__customer=rich).values_list("priority", "remaining")
    ) == {
        1: Decimal("0.97"),
        0: Decimal("5"),
    }
    for wallet in Wallet.objects.all():
        assert_consistent(wallet)
    # 0.03 of a 0.04 budget: the 50 % share; poor's one grant all used: every share
    alerts = set(Alert.objects.values_list("customer__external_id", "kind", "share"))
    assert alerts == {
        ("budgeted", "budget", 50),
        *{("poor", "credits", share) for share in (50, 75, 90, 100)},
    }

    # a second pass over the same periods draws nothing more
    ingest(*calls("walletless", 1, first=2))
    rate()
    assert dict(Wallet.objects.values_list("customer__external_id", "balance")) == balances


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite reads each period by itself: one writer, not the path production runs",
)
def test_a_pass_over_more_customers_takes_no_more_statements(rate_card):
    def statements(names: list[str]) -> int:
        for customer in customers(rate_card, names):
            credit_grant(customer=customer, amount="1", source=PURCHASED)
        terms_changes_apply()  # the new contracts' changes: one customer at a time
        ingest(*[item for name in names for item in calls(name, 2)])
        with CaptureQueriesContext(connection) as queries:
            assert rate() == 2 * len(names)
        assert UsageDrawDown.objects.filter(customer__external_id__in=names).count() == len(names)
        return len(queries)

    # The rater's first batch locks the card's version: the passes compared do not.
    statements(["first-0"])
    assert statements([f"two-{n}" for n in range(2)]) == statements([f"six-{n}" for n in range(6)])


def test_a_rollup_loaded_for_the_pass_is_the_one_from_db_makes(rate_card):
    (acme,) = customers(rate_card, ["acme"])
    ingest(*calls("acme", 3))
    assert rate() == 3
    stored = UsageRollup.objects.get(customer=acme)
    names = [field.attname for field in UsageRollup._meta.concrete_fields]
    values = UsageRollup.objects.filter(pk=stored.pk).values_list(*names).get()
    price = Price.objects.select_related("version__rate_card").get(pk=stored.price_id)

    loaded = rollup_loaded(names, values, price=price, db=connection.alias)
    made = UsageRollup.from_db(connection.alias, names, values)

    def fields(rollup):
        return {name: value for name, value in vars(rollup).items() if name != "_state"}

    assert fields(loaded) == fields(made)
    assert loaded.amount == Decimal("0.03")  # three calls at 0.01
    assert (loaded._state.adding, loaded._state.db) == (False, connection.alias)
    with CaptureQueriesContext(connection) as queries:
        assert loaded.price is price
        assert loaded.price.version.rate_card == rate_card
    assert len(queries) == 0
    # its terms are read as from_db's are
    assert loaded.terms == made.terms == stored.terms
    # and it saves as any rollup: an UPDATE of its own row
    loaded.reason = "checked"
    loaded.save(update_fields=["reason"])
    assert UsageRollup.objects.get(pk=stored.pk).reason == "checked"
    assert UsageRollup.objects.count() == 1
