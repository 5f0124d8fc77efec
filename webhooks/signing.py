"""One scheme for every webhook tokentill sends (billing events, wallets' alerts): compact
JSON, POSTed with a signature and the delivery's id.

Headers: `Content-Type: application/json`, `User-Agent: tokentill-webhooks`,
`Tokentill-Delivery: <the delivery's id>` (the same at each retry of a delivery), and
`Tokentill-Signature: t=<unix time>,v1=<hex>`, where `v1` is HMAC-SHA256 with the
secret over `"<t>.<raw body>"`. A receiver computes it over the raw body it got, compares
in constant time (`hmac.compare_digest`) and refuses a `t` more than 5 minutes from its
clock, so a captured request cannot be replayed later. Anything but a 2xx answer within
TOKENTILL_WEBHOOK_TIMEOUT_SECONDS is a failed attempt; a redirect is never followed.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.conf import settings


class NotDelivered(Exception):
    """An attempt the receiver did not take: its answer's status, when it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"` with `secret`: the header's `v1`."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def webhook_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes POSTed (and signed): compact JSON with sorted keys."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer that is not 2xx: retried, never followed


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_post(*, url: str, payload: Mapping[str, Any], secret: str, delivery_id: int) -> int:
    """POST `payload` signed with `secret`; the 2xx status it was answered with. Raises
    NotDelivered for another answer, and the network's errors (a timeout, a refused
    connection) as they are."""
    body = webhook_body(payload)
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 (the URL's scheme is http or https)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "tokentill-webhooks",
            "Tokentill-Signature": f"t={timestamp},v1={webhook_signature(secret, timestamp, body)}",
            "Tokentill-Delivery": str(delivery_id),
        },
    )
    try:
        with _opener.open(request, timeout=settings.TOKENTILL_WEBHOOK_TIMEOUT_SECONDS) as answer:
            status: int = answer.status
    except urllib.error.HTTPError as answer:
        raise NotDelivered(f"HTTP {answer.code}", status=answer.code) from None
    if not 200 <= status < 300:
        raise NotDelivered(f"HTTP {status}", status=status)
    return status
