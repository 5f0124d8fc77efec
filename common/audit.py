"""The audit trail: every change made by ops, in the admin, over the API or with a
command, recorded with who, when, what (the object before and after) and why
(docs/guide/api.md, "Audit trail").

Who is known where the request comes in, what and why where the change is made: the
request's caller is kept for the request's duration (`actor_of_request`, set by
`AuditActorMiddleware` for signed-in users and by the API's key authentication for keys;
`acting_as` for commands), and the services that change billing objects call
`audit_record` in the transaction of the change, so a change that rolls back leaves no
entry. Work nobody asked for (beat, raters) has no actor and is not recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import decimal
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db import models
from django.utils import timezone

from .models import AuditEntry

_actor: contextvars.ContextVar[Callable[[], str] | None] = contextvars.ContextVar(
    "audit_actor", default=None
)


def actor() -> str:
    """Who is acting now: `user:<username>`, `key:<name> (<prefix>)`, `command:<name>`,
    or "" for work nobody asked for."""
    resolve = _actor.get()
    return resolve() if resolve else ""


def actor_set(resolve: Callable[[], str]) -> contextvars.Token:
    """Set who is acting (resolved when first needed: a request's user is lazy)."""
    return _actor.set(resolve)


@contextlib.contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Record the changes made inside as `name`'s (a command: `command:close_periods`)."""
    token = _actor.set(lambda: name)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditActorMiddleware:
    """Keep the signed-in user (the admin, the portal) as the actor of their request; an
    API key's authentication replaces it with the key (contracts.authentication)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        def resolve() -> str:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                return f"user:{user.get_username()}"
            return ""

        token = _actor.set(resolve)
        try:
            return self.get_response(request)
        finally:
            _actor.reset(token)


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The object's fields (all its concrete ones by default) as the trail keeps them
    (`_plain`), relations as their keys."""
    chosen = set(fields) if fields is not None else None
    return {
        field.name: _plain(getattr(obj, field.attname))
        for field in obj._meta.concrete_fields
        if chosen is None or field.name in chosen or field.attname in chosen
    }


def audit_record(
    action: str,
    obj: models.Model,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    customer: str = "",
    deleted: bool = False,
) -> AuditEntry | None:
    """Record that the current actor did `action` to `obj` (None when nobody is acting);
    `after` defaults to the object as it is now (nothing once `deleted`), `customer` is
    its customer's external_id."""
    who = actor()
    if not who:
        return None
    return AuditEntry.objects.create(
        at=timezone.now(),
        actor=who[:150],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        customer=customer,
        before=before,
        after=None if deleted else (snapshot(obj) if after is None else after),
        reason=reason,
    )


def _plain(value: Any) -> str | int | bool | None:
    """A field's value as the trail keeps it: text, a whole number, true/false or null
    (money and figures as decimal text, instants in ISO 8601, structures as JSON text)."""
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)
