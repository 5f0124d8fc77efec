"""Writes for customers, API keys and contracts: one function per business action.

Rate cards, versions and prices are written by `contracts.rate_cards`, price corrections by
`contracts.price_corrections`, and the model price catalog by `contracts.catalog.services`.
"""

import copy
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from common.audit import audit_record, snapshot

from .models import (
    KEY_PREFIX_LENGTH,
    TERMS_FIELDS,
    ApiKey,
    Contract,
    ContractTerms,
    Customer,
    Price,
    RateCard,
    TermsChange,
    api_key_hash,
)
from .selectors import api_key_forget
from .validation import Errors, errors_of, instant_errors, when

_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
LAST_USED_RESOLUTION = timedelta(minutes=1)


#: What may change on a customer: `external_id` and `currency` are fixed.
CUSTOMER_CHANGEABLE = ("name", "email", "legal_name", "billing_address", "tax_id", "status")


def customer_create(
    *,
    external_id: str,
    name: str,
    currency: str,
    email: str = "",
    legal_name: str = "",
    billing_address: str = "",
    tax_id: str = "",
) -> Customer:
    """Create a customer; a second create with the same external_id, even one racing this
    one, is refused with the same ValidationError as `full_clean` gives. The legal name,
    billing address and tax id are what invoices print under "Bill to"."""
    customer = Customer(
        external_id=external_id,
        name=name,
        currency=currency,
        email=email,
        legal_name=legal_name,
        billing_address=billing_address,
        tax_id=tax_id,
    )
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
    """Change a customer's name, billing email, bill-to details (legal name, billing
    address, tax id) or status; `external_id` and `currency` are fixed."""
    before = snapshot(customer)
    for name, value in fields.items():
        if name not in CUSTOMER_CHANGEABLE:
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
        transaction.on_commit(lambda: api_key_forget(prefix=api_key.prefix))
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
        api_key_forget(prefix=api_key.prefix)


# --- Contracts and amendments -----------------------------------------------------------

TERMS_MONEY_FIELDS = ("fixed_fee", "included_allowance", "minimum_commitment", "discount_percent")
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
    payment_terms_days: int | None = None,
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
    that is wrong; nothing is stored then. `payment_terms_days` (None: the setting
    TOKENTILL_PAYMENT_TERMS_DAYS) sets when its invoices fall due.
    """
    _terms_check_fields(terms)
    errors = instant_errors(starts_at=starts_at, ends_at=ends_at, required=("starts_at",))
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
            payment_terms_days=payment_terms_days,
        )
        first = _terms_build(
            contract=contract,
            number=1,
            effective_from=starts_at,
            values={"rate_card": rate_card, **terms},
            note=note,
            created_by=created_by,
        )
        errors = errors_of(contract.full_clean)
        errors.update(
            errors_of(lambda: _terms_validate(first, customer=customer, new_contract=True))
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
    errors = instant_errors(effective_from=effective_from, required=("effective_from",))
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
                f"Must be after the latest terms start ({when(latest.effective_from)})."
            )
        elif contract.ends_at is not None and effective_from >= contract.ends_at:
            errors["effective_from"] = (
                f"Must be before the contract ends ({when(contract.ends_at)})."
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
        errors.update(errors_of(lambda: _terms_validate(terms, customer=customer)))
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
    errors = instant_errors(ends_at=ends_at)
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
            start = when(latest.effective_from)
            raise ValidationError({"ends_at": f"Must be after the latest terms start ({start})."})
        was = snapshot(contract)
        contract.ends_at = ends_at
        _contract_ensure_alone(contract)
        contract.save(update_fields=["ends_at"])
        audit_record("contract.end", contract, before=was, customer=contract.customer.external_id)
        moved = [moment for moment in (before, ends_at) if moment is not None]
        TermsChange.objects.create(customer=contract.customer, effective_from=min(moved))
    return contract


def contract_payment_terms_set(*, contract: Contract, payment_terms_days: int | None) -> Contract:
    """Set the days from an invoice's issue to its due date for the contract's invoices
    from now on (None: the setting TOKENTILL_PAYMENT_TERMS_DAYS). Invoices already issued
    keep their due date."""
    with transaction.atomic():
        _customer_lock(contract.customer)
        contract = Contract.objects.select_for_update().get(pk=contract.pk)
        if contract.payment_terms_days == payment_terms_days:
            return contract
        was = snapshot(contract)
        contract.payment_terms_days = payment_terms_days
        contract.full_clean(exclude=["customer"])
        contract.save(update_fields=["payment_terms_days"])
        audit_record(
            "contract.payment_terms", contract, before=was, customer=contract.customer.external_id
        )
    return contract


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{name}": value for name, value in values.items()}


def _customer_lock(customer: Customer) -> Customer:
    """The customer's row, locked: the first lock of every contract change (the lock order
    of docs/development/architecture.md)."""
    return Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)


def _terms_check_fields(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(TERMS_FIELDS))
    if unknown:
        raise TypeError(f"not terms of a contract: {', '.join(unknown)}")


def _float_errors(values: dict[str, Any]) -> Errors:
    return {
        name: FLOAT_MESSAGE
        for name in TERMS_MONEY_FIELDS
        if isinstance(values.get(name), float | bool)
    }


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
        until = f"until {when(clash.ends_at)}" if clash.ends_at else "open-ended"
        raise ValidationError(
            f"{contract.customer.external_id} already has a contract from "
            f"{when(clash.starts_at)} ({until}): contracts of a customer "
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
        since = f"from {when(first.effective_from)}" if first else "none yet"
        raise ValidationError(
            {
                "rate_card": (
                    f"{rate_card.name} has no prices at {when(terms.effective_from)} "
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
