"""`Authorization: Bearer <key>` for every API call."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from common.audit import actor_set
from common.throttling import (
    auth_failure_count,
    auth_failures_refuse,
    key_admit,
    key_admit_undo,
)

from .models import KEY_PATTERN
from .selectors import api_key_get_active
from .services import api_key_mark_used


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates an API key; `request.auth` is the ApiKey and `request.user` an
    OperatorUser or, for a customer's key, a CustomerKeyUser (what each may do:
    contracts.permissions).

    A missing, malformed, unknown or revoked key is refused with 401 before the view
    runs, so nothing is written. A malformed, unknown or revoked key counts against the
    client's address (common.throttling); an address past the limit is refused with 429,
    whatever key it sends, until the window passes, before any key is looked up. The
    address's lock is read and the request counted against the named key's budget in one
    cache round trip (`key_admit`); a wrong key's count is given back.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        key = key.strip()
        match = KEY_PATTERN.match(key) if scheme.lower() == self.keyword.lower() else None
        if match is None:  # no key could be named like this: nothing to look up
            auth_failures_refuse(request)
            auth_failure_count(request)
            if scheme.lower() != self.keyword.lower() or not key:
                raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        # The address's lock is read and the named key's budget counted in one go, before
        # the lookup: a locked address is refused here (common.throttling.key_admit).
        key_admit(request, prefix=match.group(1))
        api_key = api_key_get_active(key=key)
        if api_key is None:
            key_admit_undo(request, prefix=match.group(1))
            auth_failure_count(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_mark_used(api_key=api_key)
        user = OperatorUser(api_key) if api_key.customer_id is None else CustomerKeyUser(api_key)
        actor_set(lambda: f"key:{api_key.name} ({api_key.prefix})")  # the audit trail's who
        return (user, api_key)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyUser:
    """The caller behind an API key: authenticated, never a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, api_key):
        self.api_key = api_key
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class OperatorUser(ApiKeyUser):
    """The caller behind an operator key: full API access."""


class CustomerKeyUser(ApiKeyUser):
    """The caller behind a customer's key: reads only that customer's usage, wallet and
    invoices."""

    @property
    def customer_id(self) -> int:
        return self.api_key.customer_id


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <key>` as the API's security scheme."""

    target_class = "contracts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key, `tt_<prefix>_<secret>`: an operator key, or a customer's "
                "read-only key for their usage, wallet and invoices."
            ),
        }
