"""Writes for rate cards, their versions and their prices: one function per business action.

Every price stored here is checked by the model's own `full_clean`, so the admin, the API
and the commands refuse the same things with the same words. A write that touches
several prices is all or nothing: every refusal names the price it is about
(`prices[2].formula`, `remove[0]`) and nothing is stored. Changes made by ops are recorded
in the audit trail (`common.audit`), in the transaction that makes them.

**Changes to a copy.** A new version (`rate_card_version_schedule`) and a clone
(`rate_card_clone`) start as a copy of the card's latest prices, then take the changes
given: `prices`, each set by its name (a name the copy has is changed, only in the fields
given; a new name is a new price), and `remove`, the names dropped. A changed price's
rates merge (`rates_merged`): an amount as text keeps the rate's unit, `{"amount",
"per"}` sets both, None removes the rate. Money never converts: a clone into another
currency must be given every price's money anew (`_money_missing`).
"""

import copy
import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from common.audit import audit_record, snapshot

from .models import (
    ContractTerms,
    Price,
    RateCard,
    RateCardVersion,
    TermsChange,
    rate_validation_error,
)
from .validation import Errors, errors_of, instant_errors, when

#: The code of the refusal to change a version that has rated usage (the API answers 409).
VERSION_LOCKED = "version_locked"
#: The fields that hold a price's money, by its kind: a per-event formula is money, so its
#: rates are; a tiered or package formula is a quantity, priced by the tiers or packages.
_MONEY_FIELDS = {
    Price.Kind.PER_EVENT: "rates",
    Price.Kind.GRADUATED: "tiers",
    Price.Kind.VOLUME: "tiers",
    Price.Kind.PACKAGE: "package_price",
}


# --- Rate cards ---------------------------------------------------------------------------


def rate_card_create(
    *,
    name: str,
    currency: str,
    description: str = "",
    effective_from: datetime | None = None,
    prices: Sequence[Mapping[str, Any]] = (),
) -> RateCard:
    """A rate card whose first version, in force from `effective_from` (now), holds
    `prices` (each a mapping of Price's fields; none: an empty version to price later).

    The first version may start at any instant, in the past too (the 1st of the month):
    a card prices nothing before it exists, and no contract's terms can use a card before
    its first version starts. The card and every price are checked together, so one
    refusal names everything wrong; nothing is stored then.
    """
    rate_card = RateCard(name=name, currency=currency, description=description)
    errors = instant_errors(effective_from=effective_from)
    errors.update(errors_of(rate_card.full_clean))
    built, price_errors = _prices_build(
        [{"position": index, **fields} for index, fields in enumerate(prices)], version=None
    )
    errors.update(price_errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        _rate_card_save(rate_card)
        version = RateCardVersion.objects.create(
            rate_card=rate_card, number=1, effective_from=effective_from or timezone.now()
        )
        audit_record("rate_card.create", rate_card)
        for price in built:
            price.version = version
            price.save()
            audit_record("price.create", price)
    return rate_card


def rate_card_clone(
    *,
    rate_card: RateCard,
    name: str,
    currency: str | None = None,
    description: str | None = None,
    effective_from: datetime | None = None,
    prices: Sequence[Mapping[str, Any]] = (),
    remove: Sequence[str] = (),
) -> RateCard:
    """A new rate card named `name` whose first version (from `effective_from`, now) is a
    copy of `rate_card`'s latest prices with the changes given (`prices`, `remove`; see
    the module's docstring).

    In another `currency` money does not convert: every price kept must be given its money
    in the new currency (a per-event price all its rates, a tiered price its tiers, a
    package price its package price), and a price left out is refused by name. Recorded
    as `rate_card.clone`, with the card it copies.
    """
    currency = rate_card.currency if currency is None else currency
    description = f"Cloned from {rate_card.name}." if description is None else description
    clone = RateCard(name=name, currency=currency, description=description)
    errors = instant_errors(effective_from=effective_from)
    errors.update(errors_of(clone.full_clean))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        latest = _latest_version(rate_card)
        _rate_card_save(clone)
        version = RateCardVersion.objects.create(
            rate_card=clone, number=1, effective_from=effective_from or timezone.now()
        )
        audit_record(
            "rate_card.clone",
            clone,
            after={**snapshot(clone), "cloned_from": rate_card.name, "copied": str(latest)},
        )
        prices_copy(source=latest, target=version)
        converted = (rate_card.currency, currency) if currency != rate_card.currency else None
        _changes_apply(
            version=version, source=latest, changes=prices, remove=remove, converted=converted
        )
    return clone


def _rate_card_save(rate_card: RateCard) -> None:
    """Save a new card; a card of the same name made meanwhile is the refusal that
    `full_clean` gives when it was there first."""
    try:
        with transaction.atomic():
            rate_card.save()
    except IntegrityError:
        raise ValidationError(
            {"name": ValidationError("Rate card with this Name already exists.", code="unique")}
        ) from None


def rate_card_lock(rate_card: RateCard) -> None:
    """Lock the card's row until the transaction ends: the first lock of every write that
    numbers a new version of it (a version, a correction), so two of them wait for each
    other and the second reads the versions the first made. Versions are locked after
    their card, never before (raters lock versions only)."""
    RateCard.objects.select_for_update(no_key=True).filter(pk=rate_card.pk).values("pk").get()


def _latest_version(rate_card: RateCard) -> RateCardVersion:
    latest = rate_card.versions.order_by("-number").first()
    assert latest is not None  # a rate card is created with its first version
    return latest


# --- Versions -----------------------------------------------------------------------------


def rate_card_version_schedule(
    *,
    rate_card: RateCard,
    effective_from: datetime,
    note: str = "",
    correction: bool = False,
    prices: Sequence[Mapping[str, Any]] = (),
    remove: Sequence[str] = (),
) -> RateCardVersion:
    """A new version from `effective_from`: a copy of the latest one's prices, with the
    changes given (`prices`, `remove`; see the module's docstring).

    It must start after the latest version; and once that one has rated usage, not in the
    past. A `correction` may start in the past (at or after the latest version's start):
    it supersedes from then on, and usage already rated keeps its money until its period
    is re-rated (billing shows the difference line by line before applying it). The
    instant and the changes are checked together; nothing is stored on a refusal.
    """
    errors = instant_errors(effective_from=effective_from, required=("effective_from",))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        rate_card_lock(rate_card)
        latest = _latest_version(rate_card)
        start = f"({latest.effective_from:%Y-%m-%d %H:%M} UTC)"
        if correction:
            if effective_from < latest.effective_from:
                errors["effective_from"] = f"A correction starts at or after {latest} {start}."
        elif effective_from <= latest.effective_from:
            errors["effective_from"] = f"Must be after {latest} starts {start}."
        elif latest.locked_at is not None and effective_from < timezone.now():
            errors["effective_from"] = (
                f"{latest} has rated usage: a new version cannot start in the past."
            )
        version = RateCardVersion.objects.create(
            rate_card=rate_card, number=latest.number + 1, effective_from=effective_from, note=note
        )
        prices_copy(source=latest, target=version)
        audit_record("rate_card_version.create", version)
        _changes_apply(version=version, source=latest, changes=prices, remove=remove, errors=errors)
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
    errors: Errors = instant_errors(effective_from=effective_from, required=("effective_from",))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        rate_card_lock(rate_card)
        latest = _latest_version(rate_card)
        if effective_from < latest.effective_from:
            raise ValidationError(
                {
                    "effective_from": (
                        f"Must be at or after {latest} starts ({when(latest.effective_from)}): "
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
            prices_copy(source=latest, target=version)
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


def rate_card_version_lock(*, version: RateCardVersion) -> None:
    """Mark a version as having rated usage (billing calls this when it first rates)."""
    RateCardVersion.objects.filter(pk=version.pk, locked_at__isnull=True).update(
        locked_at=timezone.now()
    )


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
            f"{version} has rated usage and cannot change: schedule a new version instead.",
            code=VERSION_LOCKED,
        )


def prices_copy(*, source: RateCardVersion, target: RateCardVersion) -> None:
    """Copy every price of `source` into `target`, a new version (of its card or another)."""
    copies = []
    for price in source.prices.all():
        price.pk = None
        price.version = target
        copies.append(price)
    Price.objects.bulk_create(copies)


# --- Prices -------------------------------------------------------------------------------


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


def prices_create(*, version: RateCardVersion, prices: Sequence[Mapping[str, Any]]) -> list[Price]:
    """Add several prices to a version that has not rated anything yet, all or none: each
    refusal names its price (`prices[1].formula`), and a name the version already has is
    refused."""
    with transaction.atomic():
        _version_ensure_editable(version)
        taken = list(version.prices.values_list("name", flat=True))
        placed = [
            {"position": len(taken) + offset, **fields} for offset, fields in enumerate(prices)
        ]
        built, errors = _prices_build(placed, version=version, taken=taken)
        if errors:
            raise ValidationError(errors)
        for price in built:
            price.save()
            audit_record("price.create", price)
    return built


def price_update(*, price: Price, **fields: Any) -> Price:
    """Set the fields given on a price of a version that has not rated anything yet
    (`rates` replaces all its rates)."""
    with transaction.atomic():
        _version_ensure_editable(price.version)
        before = snapshot(price)
        for name, value in fields.items():
            setattr(price, name, value)
        price.full_clean()
        price.save()
        audit_record("price.change", price, before=before)
    return price


def price_change(*, price: Price, rates: Mapping[str, Any] | None = None, **fields: Any) -> Price:
    """`price_update`, with the `rates` given merged into the price's (`rates_merged`):
    only the rates named change."""
    if rates is not None:
        fields["rates"] = rates_merged(price.rates, rates)
    return price_update(price=price, **fields)


def price_delete(*, price: Price) -> None:
    """Remove a price from a version that has not rated anything yet; the audit trail
    keeps it as it was."""
    with transaction.atomic():
        _version_ensure_editable(price.version)
        audit_record("price.delete", price, before=snapshot(price), deleted=True)
        price.delete()


def rates_merged(
    rates: Mapping[str, Any], given: Mapping[str, Any], *, where: str = ""
) -> dict[str, Any]:
    """A price's rates with those given: an amount (text, a Decimal or a whole number)
    keeps the rate's unit; `{"amount", "per"}` sets both (the price's own check reads
    it); None removes the rate. Refused, naming the rate: an amount for a rate the price
    does not have (its unit is unknown), None for one it does not have, anything else (a
    float: money is never a float). `where` starts each message (which price, which
    version)."""
    merged = copy.deepcopy(dict(rates))
    refused: list[ValidationError] = []
    has = ", ".join(rates) or "none"
    for name, value in given.items():
        if isinstance(value, Mapping):
            merged[name] = dict(value)
        elif name not in rates:
            message = (
                f"{where}'{name}': the price has no such rate (it has {has}); give a new "
                'rate with its unit, {"amount": "5.00", "per": 1000000}, and a formula '
                "that uses it."
            )
            if value is None:
                message = f"{where}'{name}': the price has no such rate to remove (it has {has})."
            refused.append(rate_validation_error(name, message))
        elif value is None:
            del merged[name]
        elif isinstance(value, Decimal):
            merged[name] = {"amount": f"{value:f}", "per": rates[name]["per"]}
        elif isinstance(value, str) or type(value) is int:
            merged[name] = {"amount": str(value), "per": rates[name]["per"]}
        else:
            message = (
                f"{where}'{name}': write the amount as text, e.g. \"5.00\" "
                "(money is never a float)."
            )
            refused.append(rate_validation_error(name, message))
    if refused:
        raise ValidationError({"rates": refused})
    return merged


# --- Checking and changing several prices -------------------------------------------------


def _prices_build(
    prices: Sequence[Mapping[str, Any]],
    *,
    version: RateCardVersion | None,
    taken: Iterable[str] = (),
) -> tuple[list[Price], Errors]:
    """Unsaved prices, each checked by its model (its version aside), and their refusals
    keyed `prices[i].field`; a name given twice, or one in `taken`, is refused."""
    built: list[Price] = []
    errors: Errors = {}
    seen: dict[str, int] = {}
    taken = set(taken)
    for index, fields in enumerate(prices):
        where = f"prices[{index}]"
        price = Price(version=version, **fields)
        errors.update(_keyed(errors_of(functools.partial(_price_check, price)), where))
        if price.name in seen:
            errors.setdefault(f"{where}.name", []).append(
                f"prices[{seen[price.name]}] is named '{price.name}' too: names are unique "
                "within a version."
            )
        elif price.name in taken:
            errors.setdefault(f"{where}.name", []).append(
                f"{version} already has a price named '{price.name}'."
            )
        seen.setdefault(price.name, index)
        built.append(price)
    return built, errors


def _price_check(price: Price) -> None:
    # The (version, name) constraint is checked by the callers, which hold the version's lock.
    price.full_clean(exclude=["version"], validate_constraints=False)


def _keyed(errors: Errors, where: str) -> Errors:
    """A price's refusals keyed under `where` (`prices[2].formula`); one about the whole
    price under `where` itself."""
    return {
        where if field == NON_FIELD_ERRORS else f"{where}.{field}": messages
        for field, messages in errors.items()
    }


def _changes_apply(
    *,
    version: RateCardVersion,
    source: RateCardVersion,
    changes: Sequence[Mapping[str, Any]],
    remove: Sequence[str],
    converted: tuple[str, str] | None = None,
    errors: Errors | None = None,
) -> None:
    """Apply `changes` and `remove` to `version`, a fresh copy of `source`; raise every
    refusal at once (with `errors` already found), the caller's transaction then stores
    nothing. `converted`: (from, to) when the copy changes currency."""
    errors = dict(errors or {})
    copied = {price.name: price for price in version.prices.all()}
    names = ", ".join(copied) or "none"
    for index, name in enumerate(remove):
        if name not in copied:
            errors[f"remove[{index}]"] = (
                f"{source} has no price named '{name}' (its prices: {names})."
            )
    given: dict[str, int] = {}
    for index, change in enumerate(changes):
        where = f"prices[{index}]"
        name = change.get("name", "")
        if name in given:
            errors[f"{where}.name"] = f"prices[{given[name]}] sets '{name}' too: set it once."
            continue
        given[name] = index
        if name in remove:
            errors[f"{where}.name"] = f"'{name}' is also removed: set it or remove it."
            continue
        price = copied.get(name)
        try:
            if price is None:
                price_create(version=version, **change)
            else:
                price_change(price=price, **{k: v for k, v in change.items() if k != "name"})
        except ValidationError as error:
            errors.update(_keyed(error.update_error_dict({}), where))
    for name in remove:
        if name in copied:
            price_delete(price=copied[name])
    if converted is not None:
        errors.update(_money_missing(copied, changes, remove, converted))
    if errors:
        raise ValidationError(errors)


def _money_missing(
    copied: Mapping[str, Price],
    changes: Sequence[Mapping[str, Any]],
    remove: Sequence[str],
    converted: tuple[str, str],
) -> Errors:
    """What a copy into another currency lacks: money does not convert, so each price
    copied and kept must be given its money anew (`_MONEY_FIELDS`): a per-event price all
    its rates, a tiered price its tiers, a package price its package price."""
    was, now = converted
    why = f"money does not convert from {was}"
    errors: Errors = {}
    by_name = {change.get("name"): index for index, change in enumerate(changes)}
    left_out = []
    for name, price in copied.items():
        if name in remove:
            continue
        money = _MONEY_FIELDS[Price.Kind(price.kind)]
        if name not in by_name:
            left_out.append(f"{name} ({', '.join(price.rates) if money == 'rates' else money})")
            continue
        where = f"prices[{by_name[name]}]"
        change = changes[by_name[name]]
        if money == "rates":
            for rate in price.rates:
                if rate not in (change.get("rates") or {}):
                    errors[f"{where}.rates.{rate}"] = f"Give {rate} in {now}: {why}."
        elif money not in change:
            errors[f"{where}.{money}"] = f"Give the {money.replace('_', ' ')} in {now}: {why}."
    if left_out:
        errors["prices"] = (
            f"Give the prices in {now} of {'; '.join(left_out)}: {why}. Or remove them."
        )
    return errors
