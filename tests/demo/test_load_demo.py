"""`manage.py load_demo`: a working demo in one command, and nothing twice on a re-run."""

from decimal import Decimal
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from billing.models import RatedEvent
from billing.rating.rater import usage_rate_pending
from billing.selectors import usage_for_period
from contracts.models import ApiKey, Contract, Customer, RateCard, api_key_hash
from metering.models import EventSeal, UsageEvent
from metering.selectors import event_log_verify
from metering.tasks import event_log_verify as event_log_verify_task
from wallets.models import CreditGrant, Wallet

DEMO_CUSTOMERS = {"acme": "USD", "globex": "EUR", "initech": "USD", "umbrella": "JPY"}


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "users": get_user_model().objects.count(),
        "customers": Customer.objects.count(),
        "api_keys": ApiKey.objects.count(),
        "events": UsageEvent.objects.count(),
        "seals": EventSeal.objects.count(),
        "periodic_tasks": PeriodicTask.objects.count(),
        "contracts": Contract.objects.count(),
        "rate_cards": RateCard.objects.count(),
        "grants": CreditGrant.objects.count(),
    }


def test_load_demo_creates_a_usable_demo_and_a_second_run_adds_nothing(db):
    # when
    output = load_demo()

    # then: the admin login
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("tokentill-demo")

    # the customers
    assert dict(Customer.objects.values_list("external_id", "currency")) == DEMO_CUSTOMERS

    # one "demo" key, printed once, that matches the stored hash
    api_key = ApiKey.objects.get(name="demo")
    printed = [word for word in output.split() if word.startswith(f"tt_{api_key.prefix}_")]
    assert len(printed) == 1
    assert api_key_hash(printed[0]) == api_key.key_hash

    # a daily verification of the event log
    schedule = PeriodicTask.objects.get(name="Verify the event log")
    assert schedule.task == "metering.tasks.event_log_verify"
    assert (schedule.crontab.minute, schedule.crontab.hour) == ("0", "3")
    assert str(schedule.crontab.timezone) == "UTC"
    assert schedule.enabled

    # a week of events that verify, sealed in batches of 1,000
    events = UsageEvent.objects.all()
    total = events.count()
    assert total > 5000
    verification = event_log_verify()
    assert verification.ok, verification.problem
    assert (verification.seals, verification.events) == (-(-total // 1000), total)
    assert set(events.values_list("customer__external_id", flat=True)) == set(DEMO_CUSTOMERS)
    models = set(events.values_list("model", flat=True))
    assert {"gpt-4o", "gpt-4o-mini", "o3-mini", "claude-sonnet-4-5", "gemini-2.5-flash"} <= models
    assert len(set(events.values_list("feature", flat=True))) >= 4
    providers = set(events.values_list("provider", flat=True))
    assert {"openai", "anthropic"} <= providers
    assert "demo events already loaded" not in output

    # the Celery task reports the same figures (run in this process)
    assert event_log_verify_task.apply().get() == {
        "ok": True,
        "seals": verification.seals,
        "events": total,
        "problem": "",
    }

    # contracts that show each kind of terms, and a customer without one
    terms = {
        contract.customer.external_id: [t.rate_card.name for t in contract.terms.all()]
        for contract in Contract.objects.all()
    }
    assert terms == {
        "acme": ["List price + 20%", "List price + 20%"],  # an amendment: a discount
        "initech": ["List price + 20%"],
        "globex": ["Europe (EUR)"],
    }

    # every event rates: priced where a price matches, unpriced (never free) elsewhere
    assert usage_rate_pending() == total
    assert RatedEvent.objects.count() == total
    umbrella = usage_for_period(customer=Customer.objects.get(external_id="umbrella"))
    assert umbrella.charges.total == 0 and umbrella.by_price == []
    assert {group.details["reason"] for group in umbrella.unpriced} == {"no contract in force"}
    acme = usage_for_period(customer=Customer.objects.get(external_id="acme"))
    assert acme.usage > 0 and acme.unpriced == [] and acme.failed == []

    # credits: drawn by billable usage (beyond acme's allowance), and globex runs out
    balances = dict(Wallet.objects.values_list("customer__external_id", "balance"))
    initech = usage_for_period(customer=Customer.objects.get(external_id="initech"))
    assert balances["acme"] == Decimal("125")  # its usage is within its allowance
    assert balances["initech"] == Decimal("200") - sum(initech.charges.usage_by_segment)
    assert balances["globex"] == 0
    for wallet in Wallet.objects.all():
        assert wallet.balance == sum(wallet.entries.values_list("amount", flat=True), Decimal(0))

    # when: run again
    before = counts()
    again = load_demo()

    # then: nothing new, and it says so
    assert counts() == before
    assert "demo events already loaded" in again
    assert "demo contracts already exist" in again
    assert "demo credits already granted" in again
    assert "already exists" in again
    assert "create_api_key" in again
    assert "tt_" not in again


def test_demo_events_map_provider_usage_objects_onto_canonical_metrics(db):
    load_demo()

    openai_cached = UsageEvent.objects.filter(
        provider="openai", metrics__cached_input_tokens__gt=0
    ).first()
    anthropic_cached = UsageEvent.objects.filter(
        provider="anthropic", metrics__cached_input_tokens__gt=0
    ).first()
    reasoning = UsageEvent.objects.filter(
        provider="openai", model="o3-mini", metrics__reasoning_tokens__gt=0
    ).first()

    assert openai_cached is not None
    assert anthropic_cached is not None
    assert reasoning is not None
    assert reasoning.metrics["reasoning_tokens"] < reasoning.metrics["output_tokens"]
