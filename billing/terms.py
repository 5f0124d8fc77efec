"""Contract terms and prices as the rating engine needs them, read once per batch.

`TermsBook.load` reads the terms of a batch's customers and the rate card versions in
force at its events' timestamps, and locks those versions (`locked_at`) before it reads
their prices: from then on the prices can no longer change, which is what makes every
rated amount traceable to the price that produced it, and what lets a process keep the
parsed prices of a locked version for good.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

from django.db import transaction
from django.utils import timezone

from contracts.models import (
    Contract,
    ContractTerms,
    Customer,
    Price,
    RateCardVersion,
    tiers_from_json,
)
from pricing.cycles import period_holding
from pricing.rating import PriceTerms, Rate, price_for_event

#: A customer's overrides of prices' rates: {price name: {rate name: {"amount", "per"}}}.
Overrides: TypeAlias = Mapping[str, Mapping[str, Any]]
#: An event's kind, within a version's prices for one terms row: what picks its price.
#: (version pk, the terms' overrides as canonical text, model, feature, properties).
_MatchKey: TypeAlias = tuple[int, str, str, str, tuple[tuple[str, str], ...]]

# (price pk, the customer's overrides of it) -> PriceTerms; prices of locked versions only.
_price_terms_cache: dict[tuple[int, str], PriceTerms] = {}
_PRICE_TERMS_CACHE_MAX = 10_000
# (version pk, a customer's overrides) -> the version's PriceTerms; locked versions only.
_version_prices_cache: dict[tuple[int, str], tuple[PriceTerms, ...]] = {}
# version pk -> its price rows (with the version and its rate card); versions read locked.
_price_rows_cache: dict[int, list[Price]] = {}
_PRICE_ROWS_CACHE_MAX = 1_000


def price_terms(price: Price, overrides: Overrides) -> PriceTerms:
    """A price as the engine rates it, with a customer's overrides of its rates."""
    rates = {**price.rates, **overrides.get(price.name, {})}
    tiered = price.kind in (Price.Kind.GRADUATED, Price.Kind.VOLUME)
    package = price.kind == Price.Kind.PACKAGE
    return PriceTerms(
        price_id=price.pk,
        selector=price.selector(),
        rates={name: Rate(Decimal(rate["amount"]), rate["per"]) for name, rate in rates.items()},
        formula=price.parsed_formula(),
        kind=price.kind,
        tiers=tuple(tiers_from_json(price.tiers)) if tiered else (),
        package_size=price.package_size if package else None,
        package_price=price.package_price if package else None,
    )


class TermsBook:
    """Who is on which terms when, which version of each rate card is in force when, and
    the prices of the versions a batch uses."""

    def __init__(self, terms: Iterable[ContractTerms], versions: Iterable[RateCardVersion]):
        # customer pk -> terms, latest first; customer pk -> {contract pk: contract}
        self._terms: defaultdict[int, list[ContractTerms]] = defaultdict(list)
        self._contracts: defaultdict[int, dict[int, Contract]] = defaultdict(dict)
        for terms_row in sorted(terms, key=lambda row: row.effective_from, reverse=True):
            self._terms[terms_row.contract.customer_id].append(terms_row)
            self._contracts[terms_row.contract.customer_id][terms_row.contract_id] = (
                terms_row.contract
            )
        # rate card pk -> versions, newest number first
        self._versions: defaultdict[int, list[RateCardVersion]] = defaultdict(list)
        for version in sorted(versions, key=lambda row: row.number, reverse=True):
            self._versions[version.rate_card_id].append(version)
        self._prices: dict[int, list[Price]] = {}
        self._price_rows: dict[int, Price] = {}
        # keyed by the overrides, not the terms row: a batch over a thousand customers on
        # one card with the same (mostly no) overrides parses and matches its prices once
        self._price_terms: dict[tuple[int, str], tuple[PriceTerms, ...]] = {}
        self._overrides: dict[int, str] = {}
        self._matches: dict[_MatchKey, PriceTerms | None] = {}
        self._periods: dict[int, tuple[datetime, datetime]] = {}

    @classmethod
    def load(
        cls,
        *,
        customer_ids: Iterable[int],
        moments: Iterable[tuple[int, datetime]],
        lock: bool = True,
    ) -> TermsBook:
        """The book for these customers, with the prices of the versions in force at the
        (customer pk, timestamp) `moments`, those versions locked first (unless a dry run
        that stores nothing says `lock=False`)."""
        # The rate cards prefetched, not joined: a batch over a thousand customers on a
        # few cards builds each card once, not once per customer.
        terms = list(
            ContractTerms.objects.filter(contract__customer_id__in=customer_ids)
            .select_related("contract")
            .prefetch_related("rate_card")
        )
        versions = RateCardVersion.objects.filter(rate_card_id__in={t.rate_card_id for t in terms})
        book = cls(terms, versions)
        used = set()
        for customer_id, at in moments:
            terms_row = book.terms_at(customer_id, at)
            version = terms_row and book.version_at(terms_row.rate_card_id, at)
            if version:
                used.add(version.pk)
        # A version read locked is locked for good: only those read open need the UPDATE
        # (nearly always none, so no statement).
        locked = {v.pk for rows in book._versions.values() for v in rows if v.locked_at}
        if lock and used - locked:
            RateCardVersion.objects.filter(pk__in=used, locked_at__isnull=True).update(
                locked_at=timezone.now()
            )
        for version_id, rows in _price_rows_read(used, keep=lock).items():
            book._prices[version_id] = rows
            for price in rows:
                book._price_rows[price.pk] = price
        return book

    def terms_at(self, customer_id: int, at: datetime) -> ContractTerms | None:
        """The terms in force at `at`: the latest to start by then, if its contract still
        runs (contracts of a customer never overlap)."""
        for terms_row in self._terms.get(customer_id, ()):
            if terms_row.effective_from <= at:
                ends_at = terms_row.contract.ends_at
                return terms_row if ends_at is None or at < ends_at else None
        return None

    def contract_period(self, contract: Contract, at: datetime) -> tuple[datetime, datetime]:
        """`contract.period_bounds(at)`, remembered: a batch's events share few periods."""
        bounds = self._periods.get(contract.pk)
        if bounds is None or not bounds[0] <= at < bounds[1]:
            bounds = self._periods[contract.pk] = contract.period_bounds(at)
        return bounds

    def period_at(self, customer_id: int, at: datetime) -> tuple[datetime, datetime]:
        """The billing period holding `at` for the customer (`period_holding`)."""
        return period_holding(self._contracts[customer_id].values(), at)

    def version_at(self, rate_card_id: int, at: datetime) -> RateCardVersion | None:
        """The highest-numbered version started by `at` (a correction supersedes)."""
        for version in self._versions.get(rate_card_id, ()):
            if version.effective_from <= at:
                return version
        return None

    def prices(self, version: RateCardVersion, terms: ContractTerms) -> tuple[PriceTerms, ...]:
        key = (version.pk, self._overrides_key(terms))
        if key not in self._price_terms:
            self._price_terms[key] = tuple(
                _price_terms_cached(price, terms.price_overrides)
                for price in self._prices.get(version.pk, ())
            )
        return self._price_terms[key]

    def _overrides_key(self, terms: ContractTerms) -> str:
        """The terms' price overrides as canonical text: terms with the same overrides
        get the same prices."""
        key = self._overrides.get(terms.pk)
        if key is None:
            key = self._overrides[terms.pk] = json.dumps(terms.price_overrides, sort_keys=True)
        return key

    def terms_by_pk(self, terms_id: int) -> ContractTerms:
        return next(row for rows in self._terms.values() for row in rows if row.pk == terms_id)

    def price_for(
        self,
        version: RateCardVersion,
        terms: ContractTerms,
        *,
        model: str,
        feature: str,
        properties: Mapping[str, str],
    ) -> PriceTerms | None:
        """The price an event gets (rating.price_for_event), worked out once per batch for
        each kind of event: a batch holds thousands of calls of a few models."""
        key = (
            version.pk,
            self._overrides_key(terms),
            model,
            feature,
            tuple(sorted(properties.items())),
        )
        if key not in self._matches:
            self._matches[key] = price_for_event(
                self.prices(version, terms), model=model, feature=feature, properties=properties
            )
        return self._matches[key]

    def price_row(self, price_id: int) -> Price:
        return self._price_rows[price_id]


def _price_rows_read(used: set[int], *, keep: bool) -> dict[int, list[Price]]:
    """The price rows of the versions `used` (locked by this transaction or before it,
    when `keep`), by version pk, in (position, pk) order.

    When `keep` (the rater), the process keeps the rows of a locked version between its
    batches, as they can no longer change (`contracts.rate_cards`: a price is edited
    only under its version's row lock, and not once the version is locked), from when
    the transaction that read them commits: by then the version's lock has committed,
    whether this transaction took it or found it (a lock read in a transaction may be its
    own, taken earlier in it and rolled back with it). A dry run (`keep` false) reads them
    every time, as it may show their rate card's name, which can change."""
    found = {pk: _price_rows_cache[pk] for pk in used if keep and pk in _price_rows_cache}
    wanted = used - found.keys()
    if not wanted:
        return found
    prices = Price.objects.filter(version_id__in=wanted).select_related("version__rate_card")
    read: dict[int, list[Price]] = {}
    for price in prices.order_by("position", "pk"):
        read.setdefault(price.version_id, []).append(price)
    if keep:
        rows = {pk: read.get(pk, []) for pk in wanted}
        transaction.on_commit(functools.partial(_price_rows_keep, rows))
    return found | read


def _price_rows_keep(rows: dict[int, list[Price]]) -> None:
    if len(_price_rows_cache) + len(rows) > _PRICE_ROWS_CACHE_MAX:
        _price_rows_cache.clear()
    _price_rows_cache.update(rows)


def price_terms_forget() -> None:
    """Drop the parsed prices kept by this process (tests that reuse primary keys)."""
    _price_terms_cache.clear()
    _version_prices_cache.clear()
    _price_rows_cache.clear()


@dataclass(frozen=True)
class TermsNow:
    """What a customer is on at one instant, for pricing a single call (authorizations):
    the rules of TermsBook for one customer, in two or three queries."""

    customer: Customer | None
    terms: ContractTerms | None = None
    version: RateCardVersion | None = None
    prices: tuple[PriceTerms, ...] = ()


def terms_now(*, customer_id: str, at: datetime) -> TermsNow:
    """The customer (by external id), their terms in force at `at` (the latest to start by
    then, if its contract still runs), the version of their rate card in force (the
    highest-numbered started) and its prices with their overrides. The prices of a locked
    version are kept by the process, as they can no longer change."""
    terms = (
        ContractTerms.objects.filter(
            contract__customer__external_id=customer_id, effective_from__lte=at
        )
        .select_related("contract__customer", "rate_card")
        .order_by("-effective_from")
        .first()
    )
    if terms is None:
        return TermsNow(Customer.objects.filter(external_id=customer_id).first())
    customer, ends_at = terms.contract.customer, terms.contract.ends_at
    if ends_at is not None and at >= ends_at:
        return TermsNow(customer)
    version = (
        RateCardVersion.objects.filter(rate_card_id=terms.rate_card_id, effective_from__lte=at)
        .order_by("-number")
        .first()
    )
    if version is None:
        return TermsNow(customer, terms)
    key = (version.pk, repr(sorted(terms.price_overrides.items())))
    prices = _version_prices_cache.get(key) if version.locked_at else None
    if prices is None:
        rows = Price.objects.filter(version=version).order_by("position", "pk")
        prices = tuple(price_terms(row, terms.price_overrides) for row in rows)
        if version.locked_at:
            if len(_version_prices_cache) >= _PRICE_TERMS_CACHE_MAX:
                _version_prices_cache.clear()
            _version_prices_cache[key] = prices
    return TermsNow(customer, terms, version, prices)


def _price_terms_cached(price: Price, overrides: Overrides) -> PriceTerms:
    key = (price.pk, repr(sorted(overrides.get(price.name, {}).items())))
    if price.version.locked_at is None:  # it may still change: never kept
        return price_terms(price, overrides)
    cached = _price_terms_cache.get(key)
    if cached is None:
        if len(_price_terms_cache) >= _PRICE_TERMS_CACHE_MAX:
            _price_terms_cache.clear()
        cached = _price_terms_cache[key] = price_terms(price, overrides)
    return cached
