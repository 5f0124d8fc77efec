"""`manage.py load_demo`: an admin login, four customers with rate cards, contracts and
credits, an API key and a week of usage.

Safe to run again: whatever already exists is left alone and nothing is added twice. The
events are generated from a fixed seed (the same calls, models and token counts on every
machine; only the week they fall in moves with the clock) and go in through
`events_ingest`, exactly as the REST API would send them, in sealed batches of 1,000.
Some are sent as OpenAI, Anthropic and Gemini usage objects, so the demo exercises the
provider mapping as well as plain metrics.
"""

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from contracts.models import ApiKey, Contract, ContractTerms, Customer
from contracts.services import (
    api_key_create,
    catalog_load,
    contract_amend,
    contract_create,
    customer_create,
    price_create,
    rate_card_create,
    rate_card_create_from_catalog,
)
from metering.models import UsageEvent
from metering.services import ACCEPTED, DUPLICATE, REJECTED, events_ingest
from pricing.standard import STANDARD_RATES, formula_for_rates
from wallets.models import CreditGrant
from wallets.services import credit_grant

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "tokentill-demo"  # noqa: S105 - the documented login of a local demo
API_KEY_NAME = "demo"
BATCH_SIZE = 1000
DAYS = 7


@dataclass(frozen=True)
class DemoCustomer:
    external_id: str
    name: str
    currency: str
    email: str
    utc_offset: int  # hours: where its users are, for the working-day rhythm
    events: int  # roughly how many calls it makes in the week
    features: dict[str, dict[str, int]]  # feature -> {model: weight}


CUSTOMERS = (
    DemoCustomer(
        "acme",
        "Acme Corp",
        "USD",
        "billing@acme.example",
        utc_offset=-5,
        events=4200,
        features={
            "support-bot": {"gpt-4o-mini": 6, "gpt-4o": 2, "claude-sonnet-4-5": 2},
            "code-review": {"claude-sonnet-4-5": 5, "o3-mini": 3},
            "summarize": {"gpt-4o-mini": 3, "gemini-2.5-flash": 2},
        },
    ),
    DemoCustomer(
        "globex",
        "Globex Corporation",
        "EUR",
        "accounts-payable@globex.example",
        utc_offset=1,
        events=3100,
        features={
            "search": {"gemini-2.5-flash": 5, "gpt-4o-mini": 2},
            "summarize": {"llama-3.3-70b": 4, "gemini-2.5-flash": 2},
            "support-bot": {"claude-sonnet-4-5": 3, "gpt-4o": 1},
        },
    ),
    DemoCustomer(
        "initech",
        "Initech",
        "USD",
        "finance@initech.example",
        utc_offset=-6,
        events=2000,
        features={
            "code-review": {"o3-mini": 3, "gpt-4o": 2, "claude-sonnet-4-5": 2},
            "agent": {"claude-sonnet-4-5": 3, "gpt-4o": 1},
        },
    ),
    DemoCustomer(
        "umbrella",
        "Umbrella KK",
        "JPY",
        "keiri@umbrella.example",
        utc_offset=9,
        events=1500,
        features={
            "translate": {"gpt-4o-mini": 3, "gemini-2.5-flash": 2, "llama-3.3-70b": 2},
            "search": {"gemini-2.5-flash": 3},
            "support-bot": {"gpt-4o": 2, "claude-sonnet-4-5": 1},
        },
    ),
)

# Share of traffic per local hour of the day (a working day with a lunch dip) and per
# weekday (Monday first): busier in office hours, quiet at night and at weekends.
HOURLY = (1, 1, 1, 1, 1, 2, 3, 6, 10, 13, 14, 13, 10, 12, 14, 13, 11, 8, 5, 4, 3, 2, 2, 1)
DAILY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.35, 0.3)

# Per model: (provider, log-normal median of the uncached-or-full prompt, of the output).
MODELS = {
    "gpt-4o": ("openai", 2400, 380),
    "gpt-4o-mini": ("openai", 1100, 220),
    "o3-mini": ("openai", 3000, 1800),
    "claude-sonnet-4-5": ("anthropic", 900, 520),
    "gemini-2.5-flash": ("google", 1600, 300),
    "llama-3.3-70b": ("", 1300, 280),
}
# globex's rate card (EUR per 1M input, output, cached-input tokens).
EUR_PRICES = [
    ("gpt-4o", "gpt-4o", ("2.40", "9.50", "1.20")),
    ("gpt-4o-mini", "gpt-4o-mini", ("0.15", "0.60", "0.08")),
    ("claude-sonnet-4-5", "claude-sonnet-4-5*", ("2.90", "14.00", "0.29")),
]
# Share of events sent as the provider's own usage object rather than as metrics.
AS_USAGE_OBJECT = {"openai": 0.5, "anthropic": 0.6, "google": 0.4}


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
        for name, pattern, rates in EUR_PRICES:
            price_create(
                version=eur.versions.get(),
                name=name,
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


# --- the generator (pure: a seed and a clock in, API-shaped event dicts out) -------------


def demo_events(*, seed: int, now: datetime) -> list[dict]:
    """A week of calls up to `now`, in time order, as the REST API receives them."""
    rng = random.Random(seed)
    end = now.replace(minute=0, second=0, microsecond=0)
    first_hour = end - timedelta(days=DAYS)
    hours = [first_hour + timedelta(hours=h) for h in range(DAYS * 24 + 1)]
    events = []
    for demo in CUSTOMERS:
        weights = [_traffic_weight(hour, demo.utc_offset) for hour in hours]
        feature_names = list(demo.features)
        feature_weights = [sum(demo.features[f].values()) for f in feature_names]
        starts = rng.choices(hours, weights=weights, k=demo.events)
        for number, hour_start in enumerate(sorted(starts), start=1):
            moment = hour_start + timedelta(seconds=rng.randrange(3600))
            earlier = timedelta(seconds=rng.randrange(1, 600))
            if moment > now:  # the current hour is only partly over
                moment = now - earlier
            feature = rng.choices(feature_names, weights=feature_weights)[0]
            models = demo.features[feature]
            model = rng.choices(list(models), weights=list(models.values()))[0]
            event = {
                "event_id": f"demo-{demo.external_id}-{number:06d}",
                "customer_id": demo.external_id,
                "timestamp": moment.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                "model": model,
                "feature": feature,
                "properties": {
                    "environment": "production" if rng.random() < 0.93 else "staging",
                    "end_user": f"u_{rng.randrange(1, 400):04d}",
                },
            }
            event.update(_usage(rng, model, feature))
            events.append(event)
    events.sort(key=lambda event: (event["timestamp"], event["event_id"]))
    return events


def _traffic_weight(hour: datetime, utc_offset: int) -> float:
    local = hour + timedelta(hours=utc_offset)
    return HOURLY[local.hour] * DAILY[local.weekday()]


def _tokens(rng: random.Random, median: float, sigma: float = 0.6, low: int = 1) -> int:
    return max(low, int(rng.lognormvariate(0, sigma) * median))


def _usage(rng: random.Random, model: str, feature: str) -> dict:
    """The event's token counts: as metrics, or as the provider's own usage object."""
    provider, prompt_median, output_median = MODELS[model]
    if feature in {"summarize", "translate"}:
        prompt_median *= 2.5  # long documents in, comparatively short text out
    if feature == "code-review":
        prompt_median *= 3
    as_usage = provider and rng.random() < AS_USAGE_OBJECT[provider]

    if provider == "openai":
        prompt = _tokens(rng, prompt_median, low=20)
        output = _tokens(rng, output_median, low=1)
        # Automatic prompt caching: prompts over 1,024 tokens often hit a cached prefix,
        # counted in 128-token steps.
        cached = 0
        if prompt > 1024 and rng.random() < 0.55:
            cached = min(prompt, 1024 + 128 * rng.randrange(0, (prompt - 1024) // 128 + 1))
        reasoning = int(output * rng.uniform(0.55, 0.85)) if model == "o3-mini" else 0
        if as_usage:
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": output,
                "total_tokens": prompt + output,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": reasoning,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            return {"provider": "openai", "usage": usage}
        metrics = {
            "input_tokens": prompt - cached,
            "output_tokens": output,
            "cached_input_tokens": cached,
        }
        if reasoning:
            metrics["reasoning_tokens"] = reasoning
        return {"metrics": metrics}

    if provider == "anthropic":
        # A long system prompt and tool definitions behind a cache breakpoint: usually
        # read from the cache, written to it when a conversation starts or the cache expired.
        prefix = _tokens(rng, 6000, sigma=0.4, low=1024)
        written = rng.random() < 0.08
        fresh = _tokens(rng, prompt_median, low=10)
        output = _tokens(rng, output_median, low=1)
        cache_read, cache_write = (0, prefix) if written else (prefix, 0)
        if as_usage:
            usage = {
                "input_tokens": fresh,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
                "output_tokens": output,
                "service_tier": "standard",
            }
            return {"provider": "anthropic", "usage": usage}
        return {
            "metrics": {
                "input_tokens": fresh,
                "output_tokens": output,
                "cached_input_tokens": cache_read,
                "cache_creation_input_tokens": cache_write,
            }
        }

    if provider == "google":
        prompt = _tokens(rng, prompt_median, low=10)
        candidates = _tokens(rng, output_median, low=1)
        thoughts = _tokens(rng, 400) if rng.random() < 0.3 else 0
        cached = int(prompt * rng.uniform(0.5, 0.9)) if prompt > 2048 and rng.random() < 0.4 else 0
        if as_usage:
            usage = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": candidates,
                "totalTokenCount": prompt + candidates + thoughts,
            }
            if cached:
                usage["cachedContentTokenCount"] = cached
            if thoughts:
                usage["thoughtsTokenCount"] = thoughts
            return {"provider": "google", "usage": usage}
        metrics = {
            "input_tokens": prompt - cached,
            "output_tokens": candidates + thoughts,
            "cached_input_tokens": cached,
        }
        if thoughts:
            metrics["reasoning_tokens"] = thoughts
        return {"metrics": metrics}

    # Self-hosted open weights: the service counts and reports plain metrics.
    return {
        "metrics": {
            "input_tokens": _tokens(rng, prompt_median, low=10),
            "output_tokens": _tokens(rng, output_median, low=1),
            "cached_input_tokens": 0,
        }
    }
