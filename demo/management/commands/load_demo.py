"""`manage.py load_demo`: an admin login, four customers with rate cards, contracts and
credits, an API key and a week of usage.

Safe to run again: whatever already exists is left alone and nothing is added twice. The
events are generated from a fixed seed (the same calls, models and token counts on every
machine; only the week they fall in moves with the clock) and go in through
`events_ingest`, exactly as the REST API would send them, in batches of 1,000, sealed.
Some are sent as OpenAI, Anthropic and Gemini usage objects, so the demo exercises the
provider mapping as well as plain metrics.
"""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from contracts.catalog.services import catalog_load, rate_card_create_from_catalog
from contracts.models import ApiKey, Contract, ContractTerms, Customer
from contracts.rate_cards import price_create, rate_card_create
from contracts.services import api_key_create, contract_amend, contract_create, customer_create
from demo.traffic import CUSTOMERS, DAYS, demo_events
from metering.models import UsageEvent
from metering.sealing import events_seal
from metering.services import ACCEPTED, DUPLICATE, REJECTED, events_ingest
from pricing.standard import STANDARD_RATES, formula_for_rates
from wallets.models import CreditGrant
from wallets.services import credit_grant

ADMIN_USERNAME = "admin"


ADMIN_PASSWORD = "tokentill-demo"  # noqa: S105 - the documented login of a local demo


API_KEY_NAME = "demo"


BATCH_SIZE = 1000


#: (name, model pattern, name on invoices, rates per 1M: input, output, cached input)
EUR_PRICES = [
    ("gpt-4o", "gpt-4o", "GPT-4o", ("2.40", "9.50", "1.20")),
    ("gpt-4o-mini", "gpt-4o-mini", "GPT-4o mini", ("0.15", "0.60", "0.08")),
    ("claude-sonnet-4-5", "claude-sonnet-4-5*", "Claude Sonnet 4.5", ("2.90", "14.00", "0.29")),
]


class Command(BaseCommand):
    help = (
        "Load demo data: the admin login, four customers, rate cards and contracts, an "
        "operator API key named 'demo' and a week of usage events. "
        "Running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2026, help="Random seed (default 2026).")

    def handle(self, *args, seed: int, **options):
        self.stdout.write(self.style.MIGRATE_HEADING("Loading tokentill demo data"))
        self._admin_ensure()
        customers, created = self._customers_ensure()
        self.stdout.write(
            f"  customers    {len(customers)} demo customers ({created} created): "
            + ", ".join(f"{c.external_id} ({c.currency})" for c in customers)
        )
        self._api_key_ensure()
        self._contracts_ensure(customers)
        self._credits_ensure(customers)
        self._events_ensure(seed)

    # --- pieces ------------------------------------------------------------------------

    def _admin_ensure(self) -> None:
        users = get_user_model().objects
        if users.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"  admin user   '{ADMIN_USERNAME}' already exists (unchanged)")
            return
        users.create_superuser(
            username=ADMIN_USERNAME, email="admin@tokentill.example", password=ADMIN_PASSWORD
        )
        self.stdout.write(f"  admin user   {ADMIN_USERNAME} / {ADMIN_PASSWORD} (created)")

    def _customers_ensure(self) -> tuple[list[Customer], int]:
        existing = {
            c.external_id: c
            for c in Customer.objects.filter(external_id__in=[d.external_id for d in CUSTOMERS])
        }
        customers, created = [], 0
        for demo in CUSTOMERS:
            customer = existing.get(demo.external_id)
            if customer is None:
                customer = customer_create(
                    external_id=demo.external_id,
                    name=demo.name,
                    currency=demo.currency,
                    email=demo.email,
                )
                created += 1
            customers.append(customer)
        return customers, created

    def _contracts_ensure(self, customers: list[Customer]) -> None:
        """Rate cards and contracts that show each kind of terms; umbrella (JPY) has no
        contract, so its usage shows as unpriced."""
        if Contract.objects.filter(customer__in=customers).exists():
            self.stdout.write("  contracts    demo contracts already exist (unchanged)")
            return
        now = timezone.now()
        since = now - timedelta(days=60)
        catalog_load()
        usd = rate_card_create_from_catalog(
            name="List price + 20%", markup=Decimal("0.20"), effective_from=since
        )
        eur = rate_card_create(name="Europe (EUR)", currency="EUR", effective_from=since)
        for name, pattern, display_name, rates in EUR_PRICES:
            price_create(
                version=eur.versions.get(),
                name=name,
                display_name=display_name,
                model_pattern=pattern,
                rates={
                    rate: {"amount": amount, "per": 1_000_000}
                    for rate, amount in zip(STANDARD_RATES, rates, strict=False)
                },
                formula=formula_for_rates(dict(list(STANDARD_RATES.items())[: len(rates)])),
            )
        by_id = {customer.external_id: customer for customer in customers}
        start = now - timedelta(days=45)
        acme = contract_create(
            customer=by_id["acme"],
            starts_at=start,
            anchor_day=1,
            rate_card=usd,
            fixed_fee=Decimal("500"),
            included_allowance=Decimal("100"),
            note="Pro plan",
            created_by=ADMIN_USERNAME,
        )
        contract_amend(
            contract=acme,
            effective_from=now - timedelta(days=3),
            discount_percent=Decimal("5"),
            note="5 % loyalty discount",
            created_by=ADMIN_USERNAME,
        )
        contract_create(
            customer=by_id["initech"],
            starts_at=start,
            billing_cycle=Contract.Cycle.QUARTERLY,
            anchor_day=1,
            rate_card=usd,
            minimum_commitment=Decimal("3000"),
            overage_policy=ContractTerms.Overage.BLOCK,
            created_by=ADMIN_USERNAME,
        )
        contract_create(
            customer=by_id["globex"],
            starts_at=start,
            anchor_day=15,
            rate_card=eur,
            fixed_fee=Decimal("200"),
            created_by=ADMIN_USERNAME,
        )
        self.stdout.write(
            f"  contracts    acme and initech on '{usd.name}', globex on '{eur.name}'; "
            "umbrella has none (its usage shows as unpriced)"
        )

    def _credits_ensure(self, customers: list[Customer]) -> None:
        """Prepaid credits that usage draws down: initech's fall with its usage; acme's
        usage stays within its included allowance, so its credits (a promotion expiring in a
        month on top of what it bought) are not touched; globex bought a little and runs
        out, the rest billed in arrears."""
        if CreditGrant.objects.filter(wallet__customer__in=customers).exists():
            self.stdout.write("  credits      demo credits already granted (unchanged)")
            return
        by_id = {customer.external_id: customer for customer in customers}
        expires = timezone.now() + timedelta(days=30)
        grants = [
            ("acme", "100.00", CreditGrant.Source.PURCHASED, 0, None),
            ("acme", "25.00", CreditGrant.Source.PROMOTIONAL, 1, expires),
            ("initech", "200.00", CreditGrant.Source.PURCHASED, 0, None),
            ("globex", "5.00", CreditGrant.Source.PURCHASED, 0, None),
        ]
        for external_id, amount, source, priority, expires_at in grants:
            credit_grant(
                customer=by_id[external_id],
                amount=amount,
                source=source,
                priority=priority,
                expires_at=expires_at,
                reason="demo",
                created_by=ADMIN_USERNAME,
            )
        self.stdout.write(
            "  credits      initech 200.00 USD; acme 100.00 USD + 25.00 promotional "
            "(expires in 30 days); globex 5.00 EUR"
        )

    def _api_key_ensure(self) -> None:
        if ApiKey.objects.filter(name=API_KEY_NAME).exists():
            self.stdout.write(
                f"  API key      a key named '{API_KEY_NAME}' already exists; its text was "
                "shown when it was created. Create another with: "
                "python manage.py create_api_key NAME"
            )
            return
        api_key, plain_key = api_key_create(name=API_KEY_NAME)
        self.stdout.write(
            f"  API key      {plain_key}\n"
            f"               ('{api_key.name}', created: copy it now, it is not shown again)"
        )

    def _events_ensure(self, seed: int) -> None:
        demo_ids = [d.external_id for d in CUSTOMERS]
        if UsageEvent.objects.filter(customer__external_id__in=demo_ids).exists():
            self.stdout.write("  events       demo events already loaded (none added)")
            return
        events = demo_events(seed=seed, now=timezone.now())
        counts: Counter = Counter()
        batches = 0
        for start in range(0, len(events), BATCH_SIZE):
            result = events_ingest(items=events[start : start + BATCH_SIZE])
            batches += 1
            for status in (ACCEPTED, DUPLICATE, REJECTED):
                counts[status] += result.count(status)
            refused = [item for item in result.items if item.status == REJECTED]
            if refused:
                raise CommandError(
                    f"a demo event was refused: {refused[0].as_dict()} "
                    f"({counts[ACCEPTED]:,} accepted before it)"
                )
        events_seal()  # what the nudges after each commit had not sealed yet
        models = Counter(event["model"] for event in events)
        via_usage = Counter(event["provider"] for event in events if "provider" in event)
        self.stdout.write(
            f"  events       {counts[ACCEPTED]:,} accepted in {batches} sealed batches "
            f"({counts[DUPLICATE]} duplicates), {DAYS} days, {len(models)} models: "
            + ", ".join(f"{model} {n:,}" for model, n in models.most_common())
        )
        self.stdout.write(
            "               sent as provider usage objects: "
            + ", ".join(f"{provider} {n:,}" for provider, n in sorted(via_usage.items()))
        )
