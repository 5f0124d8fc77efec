"""The demo's customers and a week of their model calls, generated from a seed.

Pure: a seed and a clock in, API-shaped event dicts out. The same calls, models and token
counts on every machine; only the week they fall in moves with the clock. Some calls are
sent as OpenAI, Anthropic and Gemini usage objects, so the demo exercises the provider
mapping as well as plain metrics.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

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


HOURLY = (1, 1, 1, 1, 1, 2, 3, 6, 10, 13, 14, 13, 10, 12, 14, 13, 11, 8, 5, 4, 3, 2, 2, 1)


DAILY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.35, 0.3)


MODELS: dict[str, tuple[str, float, float]] = {
    "gpt-4o": ("openai", 2400, 380),
    "gpt-4o-mini": ("openai", 1100, 220),
    "o3-mini": ("openai", 3000, 1800),
    "claude-sonnet-4-5": ("anthropic", 900, 520),
    "gemini-2.5-flash": ("google", 1600, 300),
    "llama-3.3-70b": ("", 1300, 280),
}


AS_USAGE_OBJECT = {"openai": 0.5, "anthropic": 0.6, "google": 0.4}


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
