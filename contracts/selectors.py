"""Reads for customers, API keys, rate cards and contracts."""

import hmac
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TypeAlias

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from .models import (
    KEY_PATTERN,
    ApiKey,
    CatalogPrice,
    Contract,
    ContractTerms,
    Customer,
    Price,
    RateCard,
    RateCardVersion,
    api_key_hash,
)


def api_key_get_active(*, key: str) -> ApiKey | None:
    """The active key matching `key`, or None for a malformed, unknown or revoked one.

    Every API call asks, so the active key's row is kept in the process for
    TOKENTILL_API_KEY_CACHE_SECONDS (`_active_key_row`), and read with one plain indexed
    SELECT, no ORM query to compile, when it is not. The secret is checked on every call.
    """
    match = KEY_PATTERN.match(key)
    if not match:
        return None
    row = _active_key_row(match.group(1))
    if row is None or not hmac.compare_digest(row[2], api_key_hash(key)):
        return None
    pk, name, key_hash, last_used_at, customer_id = row
    if last_used_at is not None and timezone.is_naive(last_used_at):  # SQLite keeps UTC naive
        last_used_at = timezone.make_aware(last_used_at, UTC)
    return ApiKey(
        pk=pk,
        name=name,
        prefix=match.group(1),
        key_hash=key_hash,
        last_used_at=last_used_at,
        customer_id=customer_id,
    )


# prefix -> (time.monotonic() when read, the active key's row); only active keys are kept,
# so a new key works at once everywhere, and a revoked one is refused by the process that
# revoked it at once and by every other process within TOKENTILL_API_KEY_CACHE_SECONDS.
KeyRow: TypeAlias = tuple[int, str, str, datetime | None, int | None]
_active_keys: dict[str, tuple[float, KeyRow]] = {}
_ACTIVE_KEYS_KEPT = 10_000  # past this many keys the memory is emptied and filled again
clock = time.monotonic  # tests move it


def _active_key_row(prefix: str) -> KeyRow | None:
    seconds = settings.TOKENTILL_API_KEY_CACHE_SECONDS
    now = clock()
    kept = _active_keys.get(prefix)
    if kept is not None and now - kept[0] < seconds:
        return kept[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, name, key_hash, last_used_at, customer_id "  # noqa: S608
            f"FROM {ApiKey._meta.db_table} WHERE prefix = %s AND revoked_at IS NULL",
            [prefix],
        )
        row: KeyRow | None = cursor.fetchone()
    if row is None or seconds <= 0:
        _active_keys.pop(prefix, None)
    else:
        if len(_active_keys) >= _ACTIVE_KEYS_KEPT:
            _active_keys.clear()
        _active_keys[prefix] = (now, row)
    return row


def api_key_forget(*, prefix: str) -> None:
    """Read the key again on its next call (it was revoked, or its last use recorded)."""
    _active_keys.pop(prefix, None)


def customer_api_key_list(*, customer: Customer) -> QuerySet[ApiKey]:
    """The customer's own keys, newest first, revoked ones included (for their records)."""
    return ApiKey.objects.filter(customer=customer).order_by("-created_at", "-id")


# external_id -> pk. Both are fixed once a customer exists and customers are never deleted
# (they are closed), so a mapping once read stays true; unknown ids are always asked again.
_customer_pks: dict[str, int] = {}
_CUSTOMER_PKS_MAX = 100_000


def customer_ids_by_external_id(*, external_ids: Iterable[str]) -> dict[str, int]:
    """Map external ids to primary keys (ids that do not exist are absent); the database
    is asked only about ids this process has not seen yet."""
    wanted = set(external_ids)
    unseen = wanted - _customer_pks.keys()
    if unseen:
        if len(_customer_pks) > _CUSTOMER_PKS_MAX:
            _customer_pks.clear()
        _customer_pks.update(
            Customer.objects.filter(external_id__in=unseen).values_list("external_id", "pk")
        )
    return {known: _customer_pks[known] for known in wanted & _customer_pks.keys()}


def customer_ids_forget() -> None:
    """Drop the remembered mapping (tests that reuse primary keys after a rollback)."""
    _customer_pks.clear()


def customer_list(*, status: str | None = None) -> QuerySet[Customer]:
    """Customers ordered by external_id, optionally only those with `status`."""
    customers = Customer.objects.order_by("external_id")
    if status is not None:
        customers = customers.filter(status=status)
    return customers


def customer_get(*, external_id: str) -> Customer | None:
    """The customer known to services as `external_id`, or None."""
    return Customer.objects.filter(external_id=external_id).first()


def contract_list(*, customer: Customer) -> QuerySet[Contract]:
    """A customer's contracts, oldest first, each with its terms (the full history)."""
    return (
        Contract.objects.filter(customer=customer)
        .order_by("starts_at")
        .select_related("customer")
        .prefetch_related(
            models.Prefetch(
                "terms",
                queryset=ContractTerms.objects.select_related("rate_card").order_by("number"),
            )
        )
    )


def contract_terms_at(*, customer_id: int, at: datetime) -> ContractTerms | None:
    """The terms in force for a customer at the instant `at`, or None outside any contract."""
    return (
        ContractTerms.objects.filter(
            contract__customer_id=customer_id, contract__starts_at__lte=at, effective_from__lte=at
        )
        .filter(models.Q(contract__ends_at__isnull=True) | models.Q(contract__ends_at__gt=at))
        .select_related("contract", "rate_card")
        .order_by("-effective_from")
        .first()
    )


def contract_get(*, customer: Customer, contract_id: int | str) -> Contract | None:
    """One of `customer`'s contracts with its terms (oldest first), or None: a contract of
    another customer is not found, so an id cannot reach across customers."""
    try:
        contract_id = int(contract_id)
    except (TypeError, ValueError):
        return None
    return contract_list(customer=customer).filter(pk=contract_id).first()


def contract_terms_current(
    *, contract: Contract, at: datetime | None = None
) -> ContractTerms | None:
    """The terms of `contract` to show as its current ones at `at` (now): those in force
    then; before it starts, its first terms; once it has ended, its last. Reads
    `contract.terms.all()`, so a prefetched list (contract_list) costs no query."""
    at = at or timezone.now()
    terms = sorted(contract.terms.all(), key=lambda each: each.number)
    if not terms:
        return None
    if contract.ends_at is not None and at >= contract.ends_at:
        return terms[-1]
    started = [each for each in terms if each.effective_from <= at]
    return started[-1] if started else terms[0]


def rate_card_get(*, name: str) -> RateCard | None:
    """The rate card named `name`, or None."""
    return RateCard.objects.filter(name=name).first()


def rate_card_list(*, currency: str | None = None) -> QuerySet[RateCard]:
    """Rate cards by name, optionally of one currency, each with its versions (oldest
    first) and their number of prices (`price_count`)."""
    versions = RateCardVersion.objects.order_by("number").annotate(price_count=Count("prices"))
    cards = RateCard.objects.order_by("name").prefetch_related(Prefetch("versions", versions))
    if currency is not None:
        cards = cards.filter(currency=currency)
    return cards


def rate_card_with_prices(*, name: str) -> RateCard | None:
    """The rate card named `name` with every version (oldest first) and its prices (in
    their order), or None."""
    prices = Price.objects.order_by("position", "name")
    versions = RateCardVersion.objects.order_by("number").prefetch_related(
        Prefetch("prices", prices)
    )
    return (
        RateCard.objects.filter(name=name).prefetch_related(Prefetch("versions", versions)).first()
    )


def rate_card_version_get(*, rate_card: RateCard, number: int) -> RateCardVersion | None:
    """Version `number` of `rate_card` with its prices, or None."""
    return (
        rate_card.versions.filter(number=number)
        .select_related("rate_card")
        .prefetch_related(Prefetch("prices", Price.objects.order_by("position", "name")))
        .first()
    )


def price_get(*, version: RateCardVersion, name: str) -> Price | None:
    """The price named `name` in `version`, or None."""
    return version.prices.select_related("version__rate_card").filter(name=name).first()


def rate_card_customers(*, rate_card: RateCard, at: datetime | None = None) -> list[Customer]:
    """Customers whose terms in force at `at` (now) use `rate_card`."""
    at = at or timezone.now()
    in_force = (
        ContractTerms.objects.filter(
            contract__customer__contracts__terms__rate_card=rate_card,
            contract__starts_at__lte=at,
            effective_from__lte=at,
        )
        .filter(models.Q(contract__ends_at__isnull=True) | models.Q(contract__ends_at__gt=at))
        .select_related("contract__customer")
        .order_by("contract__customer__external_id", "-effective_from")
        .distinct()
    )
    # One query; the first row per customer is the terms in force.
    latest: dict[int, ContractTerms] = {}
    for terms in in_force:
        latest.setdefault(terms.contract.customer_id, terms)
    return [t.contract.customer for t in latest.values() if t.rate_card_id == rate_card.pk]


def catalog_models(
    *, on: date | None = None, provider: str | None = None, model: str | None = None
) -> list[CatalogPrice]:
    """The catalog's price in force `on` (today) for each model, by provider and model,
    optionally of one provider or one model: what a rate card made from the catalog gets,
    and what the price builder's model picker shows as a hint."""
    entries = CatalogPrice.objects.filter(effective_from__lte=on or timezone.now().date())
    if provider is not None:
        entries = entries.filter(provider=provider)
    if model is not None:
        entries = entries.filter(model=model)
    latest: dict[tuple[str, str], CatalogPrice] = {}
    for entry in entries.order_by("provider", "model", "-effective_from"):
        latest.setdefault((entry.provider, entry.model), entry)
    return list(latest.values())
