"""Writes for customers, API keys, rate cards and contracts: one function per business action."""

import copy
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from common.audit import audit_record, snapshot
from pricing.standard import catalog_price_formula, catalog_price_rates

from .models import (
    KEY_PREFIX_LENGTH,
    TERMS_FIELDS,
    ApiKey,
    CatalogPrice,
    Contract,
    ContractTerms,
    Customer,
    Price,
    PriceCorrection,
    RateCard,
    RateCardVersion,
    TermsChange,
    api_key_hash,
)

_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
LAST_USED_RESOLUTION = timedelta(minutes=1)

#: What a ValidationError is raised with: {field: a message, or the errors of a check}.
Errors: TypeAlias = dict[str, Any]


def customer_create(*, external_id: str, name: str, currency: str, email: str = "") -> Customer:
    """Create a customer; a second create with the same external_id, even one racing this
    one, is refused with the same ValidationError as `full_clean` gives."""
    customer = Customer(external_id=external_id, name=name, currency=currency, email=email)
    customer.full_clean()
    try:
        with transaction.atomic():
            customer.save()
            audit_record("customer.create", customer, customer=external_id)
    except IntegrityError:
        raise ValidationError(
            {"external_id": ValidationError("already exists", code="unique")}
        ) from None
    return customer


def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    """Change a customer's name, email or status; `external_id` and `currency` are fixed."""
    before = snapshot(customer)
    for name, value in fields.items():
        if name not in {"name", "email", "status"}:
            raise ValueError(f"{name} cannot be changed")
        setattr(customer, name, value)
    customer.full_clean()
    with transaction.atomic():
        customer.save(update_fields=[*fields, "updated_at"])
        audit_record("customer.change", customer, before=before, customer=customer.external_id)
    return customer


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """Create an operator key and return it with its plain text, which is never stored or
    shown again."""
    return _api_key_new(name=name)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        api_key.refresh_from_db(fields=["revoked_at"])
        if revoked:
            _api_key_audit("api_key.revoke", api_key)
    return api_key


def customer_api_key_create(
    *, customer: Customer, name: str, created_by: str
) -> tuple[ApiKey, str]:
    """Create a read-only key for `customer` (their usage, wallet and invoices only) and
    return it with its plain text, which is never stored or shown again."""
    return _api_key_new(name=name, customer=customer, created_by=created_by)


def customer_api_key_revoke(*, customer: Customer, prefix: str) -> ApiKey:
    """Revoke the customer's key with this public prefix (revoking it again changes
    nothing). Another customer's key and an operator key are ApiKey.DoesNotExist."""
    api_key = ApiKey.objects.get(customer=customer, prefix=prefix)
    return api_key_revoke(api_key=api_key)


def _api_key_new(
    *, name: str, customer: Customer | None = None, created_by: str = ""
) -> tuple[ApiKey, str]:
    with transaction.atomic():
        while True:
            prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LENGTH))
            if not ApiKey.objects.filter(prefix=prefix).exists():
                break
        key = f"tt_{prefix}_{secrets.token_urlsafe(32)}"
        api_key = ApiKey(
            name=name,
            customer=customer,
            created_by=created_by,
            prefix=prefix,
            key_hash=api_key_hash(key),
        )
        api_key.full_clean()
        api_key.save()
        _api_key_audit("api_key.create", api_key)
    return api_key, key


def _api_key_audit(action: str, api_key: ApiKey) -> None:
    shown = ("name", "prefix", "customer_id", "created_by", "revoked_at")
    customer = api_key.customer.external_id if api_key.customer else ""
    audit_record(action, api_key, after=snapshot(api_key, shown), customer=customer)


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record use at most once a minute per key: a conditional UPDATE, not a write per call."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


# --- Rate cards -------------------------------------------------------------------------


def rate_card_create(
    *, name: str, currency: str, description: str = "", effective_from: datetime | None = None
) -> RateCard:
    """A rate card with an empty first version in force from `effective_from` (now)."""
    with transaction.atomic():
        rate_card = RateCard(name=name, currency=currency, description=description)
        rate_card.full_clean()
        rate_card.save()
        RateCardVersion.objects.create(
            rate_card=rate_card, number=1, effective_from=effective_from or timezone.now()
        )
        audit_record("rate_card.create", rate_card)
    return rate_card


def price_create(*, version: RateCardVersion, **fields: Any) -> Price:
    """Add a price to a version that has not rated anything yet."""
    with transaction.atomic():
        _version_ensure_editable(version)
        if "position" not in fields:
            fields["position"] = version.prices.count()
        price = Price(version=version, **fields)
        price.full_clean()
        price.save()
        audit_record("price.create", price)
    return price


def price_update(*, price: Price, **fields: Any) -> Price:
    with transaction.atomic():
        _version_ensure_editable(price.version)
        before = snapshot(price)
        for name, value in fields.items():
            setattr(price, name, value)
        price.full_clean()
        price.save()
        audit_record("price.change", price, before=before)
    return price


def _version_ensure_editable(version: RateCardVersion) -> None:
    """Read on the version's row, locked until the write commits. A rater marks the
    version locked before it reads the prices, so either it waits for this write or this
    write sees the mark: a rated amount never comes from a price that changed after."""
    locked_at = (
        RateCardVersion.objects.select_for_update()
        .filter(pk=version.pk)
        .values_list("locked_at", flat=True)
        .get()
    )
    if locked_at is not None:
        raise ValidationError(
            f"{version} has rated usage and cannot change: schedule a new version instead."
        )


def rate_card_version_schedule(
    *, rate_card: RateCard, effective_from: datetime, note: str = "", correction: bool = False
) -> RateCardVersion:
    """A new version from `effective_from`, starting as a copy of the latest one's prices.

    It must start after the latest version; and once that one has rated usage, not in the
    past. A `correction` may start in the past (at or after the latest version's start):
    it supersedes from then on, and usage already rated keeps its money until its period
    is re-rated (billing shows the difference line by line before applying it).
    """
    with transaction.atomic():
        latest = rate_card.versions.select_for_update().order_by("-number").first()
        assert latest is not None  # a rate card is created with its first version
        if correction:
            if effective_from < latest.effective_from:
                raise ValidationError(
                    {
                        "effective_from": (
                            f"A correction starts at or after {latest} "
                            f"({latest.effective_from:%Y-%m-%d %H:%M} UTC)."
                        )
                    }
                )
        elif effective_from <= latest.effective_from:
            raise ValidationError(
                {
                    "effective_from": (
                        f"Must be after {latest} starts "
                        f"({latest.effective_from:%Y-%m-%d %H:%M} UTC)."
                    )
                }
            )
        elif latest.locked_at is not None and effective_from < timezone.now():
            raise ValidationError(
                {
                    "effective_from": (
                        f"{latest} has rated usage: a new version cannot start in the past."
                    )
                }
            )
        version = RateCardVersion.objects.create(
            rate_card=rate_card, number=latest.number + 1, effective_from=effective_from, note=note
        )
        _prices_copy(source=latest, target=version)
        audit_record("rate_card_version.create", version)
    return version


def price_add_from(*, rate_card: RateCard, effective_from: datetime, **fields: Any) -> Price:
    """Price calls the card leaves unpriced, from `effective_from` (the past included) on:
    what "price this" does for a customer's unpriced model.

    The price goes last in the version that prices from the instant on: the latest one
    when it has rated nothing and has started by then (it prices from that version's
    start); otherwise a new version from the instant, a copy of the latest with the price
    added, as a correction makes. Last, it takes only calls no other price matches, so no
    priced usage changes. Every customer whose terms use the card from the instant on
    gets a terms change from then (TermsChange), so their usage from then on, the
    unpriced included, is rated again.

    Refused with nothing stored: an instant without its offset, or before the latest
    version starts (a later version would hide the price); a price that does not validate.
    """
    errors: Errors = _instant_errors(effective_from=effective_from, required=("effective_from",))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        latest = rate_card.versions.select_for_update().order_by("-number").first()
        assert latest is not None  # a rate card is created with its first version
        if effective_from < latest.effective_from:
            raise ValidationError(
                {
                    "effective_from": (
                        f"Must be at or after {latest} starts ({_when(latest.effective_from)}): "
                        "that version would hide the price."
                    )
                }
            )
        version = latest
        if latest.locked_at is not None:
            version = RateCardVersion.objects.create(
                rate_card=rate_card,
                number=latest.number + 1,
                effective_from=effective_from,
                note=f"Adds {fields.get('name') or fields.get('model_pattern')}"[:200],
            )
            _prices_copy(source=latest, target=version)
            audit_record("rate_card_version.create", version)
        price = price_create(version=version, **fields)
        customer_ids = (
            ContractTerms.objects.filter(rate_card=rate_card)
            .filter(
                models.Q(contract__ends_at__isnull=True)
                | models.Q(contract__ends_at__gt=effective_from)
            )
            .values_list("contract__customer_id", flat=True)
            .distinct()
        )
        TermsChange.objects.bulk_create(
            TermsChange(customer_id=customer_id, effective_from=effective_from)
            for customer_id in sorted(customer_ids)
        )
    return price


def price_correction_create(
    *,
    rate_card: RateCard,
    price: str,
    effective_from: datetime,
    rates: Mapping[str, Any] | None = None,
    formula: str = "",
    reason: str,
    created_by: str,
) -> PriceCorrection:
    """Correct the price named `price` from `effective_from`, an instant in the past, on:
    recorded with who (`created_by`) and why (`reason`), both required.

    `rates` are the rates it sets: an amount as text keeps the rate's unit
    (`{"rate_out": "5.00"}`), `{"amount": "5.00", "per": 1000000}` sets both (and may add
    a rate that `formula` uses); `formula`, when given, replaces the price's formula.

    The correction supersedes from the instant on and changes nothing else: for each
    version in force from then on (the one in force at the instant, then each that starts
    later, scheduled ones included), a new version is made, a copy of it with the price
    corrected, starting where it does (the first at the instant). Every other price, and
    this one's rates that are not given, stay what they were at every instant. Usage
    already rated keeps its money until it is re-rated (billing's price correction
    re-rates it).

    Refused with nothing stored: no reason; an instant without its offset, in the future
    or before the card's first version; a price the version in force at the instant does
    not have; no rates and no formula; an amount that is not text; a rate the price does
    not have without its unit; a price that would not validate; a correction that changes
    nothing.
    """
    errors: Errors = _instant_errors(effective_from=effective_from, required=("effective_from",))
    if not reason.strip():
        errors["reason"] = "Say why the price is corrected: the reason is kept with it."
    if not created_by.strip():
        errors["created_by"] = "Say who corrects the price."
    given = {name: _rate_given(value) for name, value in (rates or {}).items()}
    if not given and not formula.strip():
        errors["rates"] = "Give the rates to correct (or a formula)."
    for name, value in given.items():
        if value is None:
            errors["rates"] = (
                f"'{name}': write the amount as text, e.g. \"5.00\" (money is never a float)."
            )
    if "effective_from" not in errors and effective_from > timezone.now():
        errors["effective_from"] = (
            "A correction starts in the past: to change prices from a later instant, "
            "schedule a new version."
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        versions = list(rate_card.versions.select_for_update().order_by("number"))
        first = min(versions, key=lambda version: version.effective_from)
        if effective_from < first.effective_from:
            raise ValidationError(
                {
                    "effective_from": (
                        f"{rate_card.name} has no prices before {_when(first.effective_from)} "
                        f"({first}): a correction starts then or later."
                    )
                }
            )
        segments = _versions_in_force_from(versions, effective_from)
        in_force = segments[0][1]
        names = list(in_force.prices.values_list("name", flat=True))
        if price not in names:
            has = f"its prices: {', '.join(names)}" if names else "it has no prices"
            raise ValidationError(
                {
                    "price": (
                        f"{in_force} (in force at {_when(effective_from)}) has no price "
                        f"named '{price}' ({has})."
                    )
                }
            )
        correction = PriceCorrection(
            rate_card=rate_card,
            price_name=price,
            effective_from=effective_from,
            rates=given,
            formula=formula.strip(),
            reason=reason.strip(),
            created_by=created_by.strip()[:150],
        )
        correction.save()
        note = f"Correction of {price} from {_when(effective_from)}: {correction.reason}"
        number, changed = versions[-1].number, False
        for start, source in segments:
            number += 1
            version = RateCardVersion.objects.create(
                rate_card=rate_card,
                number=number,
                effective_from=start,
                note=note[:200],
                correction=correction,
            )
            _prices_copy(source=source, target=version)
            row = version.prices.filter(name=price).first()
            if row is None:  # a later version without the price: copied as it is
                continue
            where = f"{price} of {source}: " if len(segments) > 1 else ""
            corrected = _rates_corrected(row.rates, given, where=where)
            new_formula = correction.formula or row.formula
            changed = changed or (corrected, new_formula) != (row.rates, row.formula)
            row.rates, row.formula = corrected, new_formula
            try:
                row.full_clean()
            except ValidationError as error:
                raise ValidationError(
                    {
                        field: [f"{where}{message}" for message in messages]
                        for field, messages in error.message_dict.items()
                    }
                ) from None
            row.save(update_fields=["rates", "formula"])
        if not changed:
            raise ValidationError(
                {
                    "rates": (
                        f"This changes nothing: {price} already has these rates and formula "
                        f"from {_when(effective_from)} on."
                    )
                }
            )
        audit_record("price_correction.create", correction, reason=correction.reason)
    return correction


def _versions_in_force_from(
    versions: list[RateCardVersion], at: datetime
) -> list[tuple[datetime, RateCardVersion]]:
    """The versions in force from `at` on, each with the instant it takes over from: the one
    in force at `at` (the highest-numbered started by then), then each that takes over
    later. The version in force changes only where a version starts."""

    def in_force(moment: datetime) -> RateCardVersion:
        started = [version for version in versions if version.effective_from <= moment]
        return max(started, key=lambda version: version.number)

    instants = [at, *sorted({v.effective_from for v in versions if v.effective_from > at})]
    segments: list[tuple[datetime, RateCardVersion]] = []
    for moment in instants:
        version = in_force(moment)
        if not segments or segments[-1][1].pk != version.pk:
            segments.append((moment, version))
    return segments


def _rates_corrected(
    rates: dict[str, Any], given: Mapping[str, str | dict[str, Any] | None], *, where: str
) -> dict[str, Any]:
    """A price's rates with those given: an amount (text) keeps the rate's unit; an
    {"amount", "per"} sets both. The price's own check (`_rates_error`) reads the rest."""
    corrected = copy.deepcopy(rates)
    for name, value in given.items():
        if isinstance(value, dict):
            corrected[name] = value
            continue
        if name not in rates:
            has = ", ".join(rates) or "none"
            raise ValidationError(
                {
                    "rates": (
                        f"{where}'{name}': the price has no such rate (it has {has}); give a "
                        'new rate with its unit, {"amount": "5.00", "per": 1000000}, and a '
                        "formula that uses it."
                    )
                }
            )
        corrected[name] = {"amount": value, "per": rates[name]["per"]}
    return corrected


def _rate_given(value: object) -> str | dict[str, Any] | None:
    """A corrected rate as given: an amount (text, a Decimal or a whole number) as text, or
    {"amount", "per"} as it is (the price's check reads it); None for anything else (a
    float: money is never a float)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, str) or type(value) is int:
        return str(value)
    return None


def rate_card_clone(
    *, rate_card: RateCard, name: str, effective_from: datetime | None = None
) -> RateCard:
    """A new rate card with the prices of `rate_card`'s latest version."""
    with transaction.atomic():
        clone = rate_card_create(
            name=name,
            currency=rate_card.currency,
            description=f"Cloned from {rate_card.name}.",
            effective_from=effective_from,
        )
        latest = rate_card.versions.order_by("-number").first()
        assert latest is not None  # a rate card is created with its first version
        _prices_copy(source=latest, target=clone.versions.get())
    return clone


def rate_card_version_lock(*, version: RateCardVersion) -> None:
    """Mark a version as having rated usage (billing calls this when it first rates)."""
    RateCardVersion.objects.filter(pk=version.pk, locked_at__isnull=True).update(
        locked_at=timezone.now()
    )


def rate_card_create_with_price(
    *,
    name: str,
    currency: str,
    price: dict[str, Any],
    description: str = "",
    effective_from: datetime | None = None,
) -> Price:
    """A rate card whose first version holds one price (`price`: Price's fields), all or
    nothing: the admin's price builder makes both from one page, and a price that does not
    validate must not leave an empty rate card behind."""
    with transaction.atomic():
        rate_card = rate_card_create(
            name=name, currency=currency, description=description, effective_from=effective_from
        )
        return price_create(version=rate_card.versions.get(), **price)


def _prices_copy(*, source: RateCardVersion, target: RateCardVersion) -> None:
    copies = []
    for price in source.prices.all():
        price.pk = None
        price.version = target
        copies.append(price)
    Price.objects.bulk_create(copies)


# --- The public price catalog -----------------------------------------------------------

CATALOG_PATH = Path(__file__).resolve().parent / "catalog" / "prices.json"


def catalog_load(*, path: Path = CATALOG_PATH) -> tuple[int, int]:
    """Load the shipped catalog: (created, updated). Safe to run again."""
    data = json.loads(path.read_text())
    created = updated = 0
    with transaction.atomic():
        for entry in data["models"]:
            _, was_created = CatalogPrice.objects.update_or_create(
                provider=entry["provider"],
                model=entry["model"],
                effective_from=date.fromisoformat(entry["effective_from"]),
                defaults={
                    "match": entry["match"],
                    "currency": data["currency"],
                    "rates": entry["rates"],
                    "long_context": entry.get("long_context"),
                    "batch_discount": entry.get("batch_discount"),
                    "source": entry.get("source", ""),
                    "notes": entry.get("notes", ""),
                },
            )
            created += was_created
            updated += not was_created
    return created, updated


def rate_card_create_from_catalog(
    *,
    name: str,
    markup: Decimal,
    providers: Iterable[str] | None = None,
    on: date | None = None,
    effective_from: datetime | None = None,
) -> RateCard:
    """A rate card with one price per catalog model: the list price in force `on` (today)
    times (1 + markup), e.g. markup=Decimal("0.20") for catalog cost + 20 %."""
    on = on or timezone.now().date()
    entries = CatalogPrice.objects.filter(effective_from__lte=on).order_by(
        "provider", "model", "-effective_from"
    )
    if providers:
        entries = entries.filter(provider__in=providers)
    latest: dict[tuple[str, str], CatalogPrice] = {}
    for entry in entries:
        latest.setdefault((entry.provider, entry.model), entry)
    if not latest:
        raise ValidationError("The catalog has no prices for that choice: run load_price_catalog.")
    currencies = {entry.currency for entry in latest.values()}
    if len(currencies) != 1:
        raise ValidationError(
            f"The chosen catalog prices are in {', '.join(sorted(currencies))}: "
            "a rate card has one currency, so choose providers priced in one."
        )
    with transaction.atomic():
        rate_card = rate_card_create(
            name=name,
            currency=currencies.pop(),
            description=f"Catalog list prices on {on:%Y-%m-%d} plus {markup * 100:f} %.",
            effective_from=effective_from,
        )
        version = rate_card.versions.get()
        for position, entry in enumerate(latest.values()):
            price_create(
                version=version,
                position=position,
                name=entry.model,
                model_pattern=entry.match,
                rates=catalog_price_rates(entry.rates, entry.long_context, markup=markup),
                formula=catalog_price_formula(entry.rates, entry.long_context),
            )
    return rate_card


# --- Contracts and amendments -----------------------------------------------------------

TERMS_MONEY_FIELDS = ("fixed_fee", "included_allowance", "minimum_commitment", "discount_percent")
INSTANT_MESSAGE = "Give a date and time with its UTC offset, e.g. 2026-01-01T00:00:00Z."
FLOAT_MESSAGE = 'Write the amount as text or a Decimal, e.g. "10.00": money is never a float.'


def contract_create(
    *,
    customer: Customer,
    starts_at: datetime,
    rate_card: RateCard,
    billing_cycle: str = Contract.Cycle.MONTHLY,
    anchor_day: int | None = None,
    anchor_month: int | None = None,
    ends_at: datetime | None = None,
    note: str = "",
    created_by: str = "",
    **terms: Any,
) -> Contract:
    """A contract with its first terms. Periods start on `anchor_day` (default: the day it
    starts, in UTC) and, for quarterly and yearly cycles, count from `anchor_month`
    (default: the month it starts). A customer has at most one contract at any instant.

    It may start in the past (usage already rated from then on is rated again with it),
    even before its rate card has prices: the usage it covers had no contract, so it was
    unpriced, and what comes before the card's prices stays unpriced (never free) until
    the card has prices from then. An amendment may not do that (`contract_amend`). The
    contract and its first terms are checked together, so one refusal names every field
    that is wrong; nothing is stored then.
    """
    _terms_check_fields(terms)
    errors = _instant_errors(starts_at=starts_at, ends_at=ends_at, required=("starts_at",))
    errors.update(_float_errors(terms))
    if errors:
        raise ValidationError(errors)
    start = starts_at.astimezone(UTC)
    with transaction.atomic():
        customer = _customer_lock(customer)
        contract = Contract(
            customer=customer,
            starts_at=starts_at,
            ends_at=ends_at,
            billing_cycle=billing_cycle,
            anchor_day=start.day if anchor_day is None else anchor_day,
            anchor_month=start.month if anchor_month is None else anchor_month,
        )
        first = _terms_build(
            contract=contract,
            number=1,
            effective_from=starts_at,
            values={"rate_card": rate_card, **terms},
            note=note,
            created_by=created_by,
        )
        errors = _errors_of(contract.full_clean)
        errors.update(
            _errors_of(lambda: _terms_validate(first, customer=customer, new_contract=True))
        )
        if errors:
            raise ValidationError(errors)
        _contract_ensure_alone(contract)
        contract.save()
        first.contract = contract
        first.save()
        TermsChange.objects.create(customer=customer, effective_from=starts_at)
        audit_record(
            "contract.create",
            contract,
            after={**snapshot(contract), **_prefixed("terms", snapshot(first))},
            customer=customer.external_id,
        )
    return contract


def contract_amend(
    *,
    contract: Contract,
    effective_from: datetime,
    note: str = "",
    created_by: str = "",
    **changes: Any,
) -> ContractTerms:
    """New terms from `effective_from` on: the latest terms (those in force until then)
    with `changes`.

    Usage before the instant keeps the old terms and usage at or after it gets the new
    ones; fees and allowances are prorated by the share of the period each covers. The
    instant must come after the latest terms start and before the contract ends. An
    instant in the past re-rates the usage already rated from then on.
    """
    _terms_check_fields(changes)
    errors = _instant_errors(effective_from=effective_from, required=("effective_from",))
    errors.update(_float_errors(changes))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        customer = _customer_lock(contract.customer)
        contract = Contract.objects.get(pk=contract.pk)
        latest = contract.terms.order_by("-number").first()
        assert latest is not None  # a contract is created with its first terms
        if effective_from <= latest.effective_from:
            errors["effective_from"] = (
                f"Must be after the latest terms start ({_when(latest.effective_from)})."
            )
        elif contract.ends_at is not None and effective_from >= contract.ends_at:
            errors["effective_from"] = (
                f"Must be before the contract ends ({_when(contract.ends_at)})."
            )
        values = {name: getattr(latest, name) for name in TERMS_FIELDS}
        values["price_overrides"] = copy.deepcopy(values["price_overrides"])
        terms = _terms_build(
            contract=contract,
            number=latest.number + 1,
            effective_from=effective_from,
            values={**values, **changes},
            note=note,
            created_by=created_by,
        )
        errors.update(_errors_of(lambda: _terms_validate(terms, customer=customer)))
        if errors:
            raise ValidationError(errors)
        terms.save()
        TermsChange.objects.create(customer=customer, effective_from=effective_from)
        audit_record(
            "contract.amend", terms, before=snapshot(latest), customer=customer.external_id
        )
    return terms


def contract_end(*, contract: Contract, ends_at: datetime | None) -> Contract:
    """End a contract at `ends_at` (after its latest terms start), move its end, or re-open
    it with None. Usage from the earlier of the old and new ends on is rated anew; ending
    it where it already ends changes nothing.

    The cycle and anchor never change: to bill on another cycle, end the contract (at a
    period's end, so no period is cut) and create a new one from that instant.
    """
    errors = _instant_errors(ends_at=ends_at)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        _customer_lock(contract.customer)
        contract = Contract.objects.select_for_update().get(pk=contract.pk)
        before = contract.ends_at
        if ends_at == before:
            return contract
        latest = contract.terms.order_by("-number").first()
        assert latest is not None  # a contract is created with its first terms
        if ends_at is not None and ends_at <= latest.effective_from:
            start = _when(latest.effective_from)
            raise ValidationError({"ends_at": f"Must be after the latest terms start ({start})."})
        was = snapshot(contract)
        contract.ends_at = ends_at
        _contract_ensure_alone(contract)
        contract.save(update_fields=["ends_at"])
        audit_record("contract.end", contract, before=was, customer=contract.customer.external_id)
        moved = [moment for moment in (before, ends_at) if moment is not None]
        TermsChange.objects.create(customer=contract.customer, effective_from=min(moved))
    return contract


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{name}": value for name, value in values.items()}


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _customer_lock(customer: Customer) -> Customer:
    """The customer's row, locked: the first lock of every contract change (the lock order
    of docs/development/architecture.md)."""
    return Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)


def _terms_check_fields(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(TERMS_FIELDS))
    if unknown:
        raise TypeError(f"not terms of a contract: {', '.join(unknown)}")


def _instant_errors(*, required: tuple[str, ...] = (), **instants: object) -> Errors:
    """Instants must be timezone-aware datetimes: a naive one has no single meaning."""
    errors: Errors = {}
    for name, value in instants.items():
        if value is None:
            if name in required:
                errors[name] = "This field is required."
        elif not isinstance(value, datetime) or value.utcoffset() is None:
            errors[name] = INSTANT_MESSAGE
    return errors


def _float_errors(values: dict[str, Any]) -> Errors:
    return {
        name: FLOAT_MESSAGE
        for name in TERMS_MONEY_FIELDS
        if isinstance(values.get(name), float | bool)
    }


def _errors_of(check: Callable[[], object]) -> Errors:
    """The `{field: [errors]}` that `check()` raises, or {}."""
    try:
        check()
    except ValidationError as error:
        return error.update_error_dict({})
    return {}


def _contract_ensure_alone(contract: Contract) -> None:
    """Refuse a contract whose span meets another contract of the same customer."""
    others = Contract.objects.filter(customer_id=contract.customer_id).exclude(pk=contract.pk)
    if contract.ends_at is not None:
        others = others.filter(starts_at__lt=contract.ends_at)
    clash = (
        others.filter(models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=contract.starts_at))
        .order_by("starts_at")
        .first()
    )
    if clash is not None:
        until = f"until {_when(clash.ends_at)}" if clash.ends_at else "open-ended"
        raise ValidationError(
            f"{contract.customer.external_id} already has a contract from "
            f"{_when(clash.starts_at)} ({until}): contracts of a customer "
            "cannot overlap; end that one first."
        )


def _terms_build(
    *,
    contract: Contract,
    number: int,
    effective_from: datetime,
    values: dict[str, Any],
    note: str,
    created_by: str,
) -> ContractTerms:
    return ContractTerms(
        contract=contract,
        number=number,
        effective_from=effective_from,
        note=note,
        created_by=created_by,
        **values,
    )


def _terms_validate(
    terms: ContractTerms, *, customer: Customer, new_contract: bool = False
) -> None:
    """Field rules (model), then what needs the rate card: its currency is the customer's,
    it has prices when the terms start, and the overrides name its prices and rates.

    A new contract's first terms may start before the card has prices: no usage priced
    before is left unpriced by them (a customer's contracts never overlap, so the usage
    they cover had none). Amended terms may not: usage that was priced would be left
    unpriced.

    The (contract, number) and (contract, instant) constraints are not checked here: the
    services choose both under the customer's lock, and the database enforces them.
    """
    terms.full_clean(exclude=["contract"], validate_constraints=False)
    rate_card = terms.rate_card
    if rate_card.currency != customer.currency:
        raise ValidationError(
            {
                "rate_card": (
                    f"{rate_card} is priced in {rate_card.currency}; "
                    f"{customer.external_id} is billed in {customer.currency}."
                )
            }
        )
    first = rate_card.versions.order_by("effective_from").first()
    if first is None or (terms.effective_from < first.effective_from and not new_contract):
        since = f"from {_when(first.effective_from)}" if first else "none yet"
        raise ValidationError(
            {
                "rate_card": (
                    f"{rate_card.name} has no prices at {_when(terms.effective_from)} "
                    f"({since}): the terms would leave usage unpriced."
                )
            }
        )
    _overrides_check(terms)


def _overrides_check(terms: ContractTerms) -> None:
    """Each override names a price of the rate card (in any of its versions) and only rates
    that price has."""
    rates_by_price: dict[str, set[str]] = {}
    for name, rates in Price.objects.filter(version__rate_card=terms.rate_card).values_list(
        "name", "rates"
    ):
        rates_by_price.setdefault(name, set()).update(rates)
    for price_name, rates in terms.price_overrides.items():
        if price_name not in rates_by_price:
            raise ValidationError(
                {"price_overrides": f"{terms.rate_card.name} has no price named '{price_name}'."}
            )
        unknown = sorted(set(rates) - rates_by_price[price_name])
        if unknown:
            raise ValidationError(
                {
                    "price_overrides": (
                        f"{price_name}: no rate named {', '.join(unknown)} "
                        f"(it has {', '.join(sorted(rates_by_price[price_name]))})."
                    )
                }
            )
