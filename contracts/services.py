"""Writes for customers and API keys: one function per business action."""

import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import KEY_PREFIX_LENGTH, ApiKey, Customer, api_key_hash

_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def customer_create(*, external_id: str, name: str, currency: str, email: str = "") -> Customer:
    """Create a customer; a second create with the same external_id, even one racing this
    one, is refused with the same ValidationError as `full_clean` gives."""
    customer = Customer(external_id=external_id, name=name, currency=currency, email=email)
    customer.full_clean()
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:
        raise ValidationError(
            {"external_id": ValidationError("already exists", code="unique")}
        ) from None
    return customer


def customer_update(*, customer: Customer, **fields) -> Customer:
    """Change a customer's name, email or status; `external_id` and `currency` are fixed."""
    for name, value in fields.items():
        if name not in {"name", "email", "status"}:
            raise ValueError(f"{name} cannot be changed")
        setattr(customer, name, value)
    customer.full_clean()
    customer.save(update_fields=[*fields, "updated_at"])
    return customer


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain text, which is never stored or shown again."""
    with transaction.atomic():
        while True:
            prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LENGTH))
            if not ApiKey.objects.filter(prefix=prefix).exists():
                break
        key = f"tt_{prefix}_{secrets.token_urlsafe(32)}"
        api_key = ApiKey(name=name, prefix=prefix, key_hash=api_key_hash(key))
        api_key.full_clean()
        api_key.save()
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record use at most once a minute per key: a conditional UPDATE, not a write per call."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
