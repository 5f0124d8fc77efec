"""Idempotent POSTs: a client may send any request that moves money or creates billing
objects with an `Idempotency-Key` header and retry it safely (docs/guide/api.md,
"Idempotency").

Stripe's rule: the same key with the same body, from the same caller, gets the first
answer again, marked `Idempotent-Replayed: true`, and the work is not done again; the
same key with another body (or another endpoint) is 422. The key's row is written in the
transaction that does the work, so the work and the answer are kept together or not at
all: two identical requests at the same instant queue on the key's unique index (on
PostgreSQL), and the second answers with what the first stored once it commits. Only
successful answers (2xx) are kept: a refused request stores nothing, its key included,
so the corrected request may reuse the key. Keys are kept TOKENTILL_IDEMPOTENCY_HOURS
(24 at least); an older key counts as new.
"""

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_LONGEST = 255  # IdempotencyKey.key's max_length


_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    description=(
        "Retry safely: the same key with the same body returns the first answer (marked "
        "`Idempotent-Replayed: true`) and does nothing again; with another body it is 422. "
        "Kept 24 hours at least; a refused request keeps nothing."
    ),
)


class _Refused(Exception):
    """Rolls back a request whose answer is not a success, keeping its answer."""

    def __init__(self, response: Response):
        self.response = response


def idempotent(post: Callable[..., Response]) -> Callable[..., Response]:
    """Make an APIView's `post` idempotent under an `Idempotency-Key` header (documented
    in the schema)."""

    @functools.wraps(post)
    def wrapper(view, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return post(view, request, *args, **kwargs)
        if not key.strip() or len(key) > _LONGEST:
            return Response({"detail": f"{HEADER} must be 1 to {_LONGEST} characters."}, status=400)
        return _once(
            _owner(request),
            key,
            _fingerprint(request),
            lambda: post(view, request, *args, **kwargs),
        )

    return extend_schema(parameters=[_PARAMETER])(wrapper)


def _once(owner: str, key: str, fingerprint: str, work: Callable[[], Response]) -> Response:
    now = timezone.now()
    kept = now - timedelta(hours=max(24, settings.TOKENTILL_IDEMPOTENCY_HOURS))
    try:
        with transaction.atomic():
            IdempotencyKey.objects.filter(owner=owner, key=key, created_at__lt=kept).delete()
            try:
                with transaction.atomic():
                    row = IdempotencyKey.objects.create(
                        owner=owner, key=key, fingerprint=fingerprint, status=0, body="",
                        created_at=now,
                    )  # fmt: skip
            except IntegrityError:
                # Another request with this key committed first (PostgreSQL made this one
                # wait for it): answer as it did.
                return _replay(IdempotencyKey.objects.get(owner=owner, key=key), fingerprint)
            response = work()
            if not 200 <= response.status_code < 300:
                raise _Refused(response)
            row.status = response.status_code
            row.body = JSONRenderer().render(response.data).decode() or "null"
            row.save(update_fields=["status", "body"])
            return response
    except _Refused as refused:
        return refused.response


def _replay(row: IdempotencyKey, fingerprint: str) -> Response:
    if row.fingerprint != fingerprint:
        return Response(
            {
                "detail": f"This {HEADER} was used with another request (another endpoint "
                "or body); use a new key for a new request."
            },
            status=422,
        )
    return Response(json.loads(row.body), status=row.status, headers={REPLAYED: "true"})


def _owner(request: Request) -> str:
    """Keys are per caller: an API key, or a signed-in user."""
    api_key = getattr(request.user, "api_key", None)
    if api_key is not None:
        return f"key:{api_key.pk}"
    return f"user:{request.user.pk}"


def _fingerprint(request: Request) -> str:
    """The request as the rule compares it: method, path, and the JSON body with its keys
    sorted (so the same body sent with other spacing or key order is the same request)."""
    try:
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    except TypeError:
        body = request.body.decode("utf-8", "replace")
    text = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_keys_forget() -> int:
    """Forget the keys older than TOKENTILL_IDEMPOTENCY_HOURS (beat); how many."""
    kept = timezone.now() - timedelta(hours=max(24, settings.TOKENTILL_IDEMPOTENCY_HOURS))
    return IdempotencyKey.objects.filter(created_at__lt=kept).delete()[0]
