"""Reads for customers and API keys."""

import hmac

from .models import KEY_PATTERN, ApiKey, Customer, api_key_hash


def api_key_get_active(*, key: str) -> ApiKey | None:
    """The active key matching `key`, or None for a malformed, unknown or revoked one."""
    match = KEY_PATTERN.match(key)
    if not match:
        return None
    api_key = ApiKey.objects.filter(prefix=match.group(1), revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, api_key_hash(key)):
        return None
    return api_key


def customer_ids_by_external_id(*, external_ids) -> dict[str, int]:
    """Map external ids to primary keys in one query (ids that do not exist are absent)."""
    return dict(
        Customer.objects.filter(external_id__in=set(external_ids)).values_list("external_id", "pk")
    )


def customer_list(*, status: str | None = None):
    """Customers ordered by external_id, optionally only those with `status`."""
    customers = Customer.objects.order_by("external_id")
    if status is not None:
        customers = customers.filter(status=status)
    return customers


def customer_get(*, external_id: str) -> Customer | None:
    """The customer known to services as `external_id`, or None."""
    return Customer.objects.filter(external_id=external_id).first()
