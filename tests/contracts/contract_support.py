"""Builders and snapshots shared by the contract tests (services, API, admin)."""

from datetime import UTC, datetime

from contracts.models import Contract, ContractTerms, RateCard, TermsChange
from contracts.rate_cards import price_create, rate_card_create

PER_1M = 1_000_000
GPT_4O_RATES = {
    "rate_in": {"amount": "2.50", "per": PER_1M},
    "rate_out": {"amount": "10.00", "per": PER_1M},
    "rate_cached": {"amount": "1.25", "per": PER_1M},
}
STANDARD_FORMULA = (
    "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
)
CARDS_START = datetime(2025, 1, 1, tzinfo=UTC)


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def card_create(name: str, currency: str = "USD", *, effective_from=CARDS_START) -> RateCard:
    """A rate card whose first version (from 1 January 2025) prices gpt-4o and embeddings."""
    card = rate_card_create(name=name, currency=currency, effective_from=effective_from)
    version = card.versions.get()
    price_create(
        version=version,
        name="gpt-4o",
        model_pattern="gpt-4o",
        rates=GPT_4O_RATES,
        formula=STANDARD_FORMULA,
    )
    price_create(
        version=version,
        name="embeddings",
        model_pattern="text-embedding-3-*",
        rates={"rate_in": {"amount": "0.02", "per": PER_1M}},
        formula="input_tokens * rate_in",
    )
    return card


def contracts_snapshot() -> dict[str, list[dict]]:
    """Every contract, set of terms and terms change, to show a refusal changed nothing."""
    return {
        "contracts": list(Contract.objects.order_by("pk").values()),
        "terms": list(ContractTerms.objects.order_by("pk").values()),
        "changes": list(TermsChange.objects.order_by("pk").values()),
    }


def changes() -> list[tuple[str, datetime]]:
    """The terms changes written so far: (customer external_id, effective_from)."""
    return [
        (change.customer.external_id, change.effective_from)
        for change in TermsChange.objects.select_related("customer").order_by("pk")
    ]
