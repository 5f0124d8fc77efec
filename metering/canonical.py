"""Canonical form of a usage event and the seal chain's hashes (pure: no Django).

One event has exactly one canonical byte string, whatever key order or number spelling
the caller used, so that a resend hashes the same and any stored change does not.
"""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import orjson

GENESIS_HASH = "0" * 64


def metric_value(value: int | Decimal) -> int | str:
    """Integral values as JSON integers, others as the shortest exact decimal string."""
    if isinstance(value, int):
        return value
    if value == value.to_integral_value():
        return int(value)
    return format(value.normalize(), "f")


def timestamp_text(moment: datetime) -> str:
    """UTC to the microsecond, e.g. 2026-11-02T10:15:00.000000Z."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def event_content_hash(
    *,
    customer_pk: int,
    event_id: str,
    timestamp: datetime,
    model: str,
    feature: str,
    metrics: dict,
    properties: dict,
    counting: str,
    provider: str,
    tokenizer: str = "",
    estimated: bool = False,
) -> str:
    """SHA-256 of the event's canonical JSON; `metrics` are in stored form (`metric_value`),
    so the hash of a row read back from the database is computed the same way. The
    tokenizer that counted a tokenized event, and whether its count is an estimate, are in
    it only when there is one, so events stored before tokentill recorded it hash as then."""
    fields = {
        "customer": customer_pk,
        "event_id": event_id,
        "timestamp": timestamp_text(timestamp),
        "model": model,
        "feature": feature,
        "metrics": metrics,
        "properties": properties,
        "counting": counting,
        "provider": provider,
    }
    if tokenizer:
        fields |= {"tokenizer": tokenizer, "estimated": estimated}
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def seal_hash(*, previous_hash: str, sequence: int, content_hashes: list[str]) -> str:
    digest = hashlib.sha256(f"{previous_hash}:{sequence}:".encode())
    for content_hash in content_hashes:
        digest.update(content_hash.encode())
    return digest.hexdigest()
