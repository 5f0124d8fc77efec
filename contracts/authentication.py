"""`Authorization: Bearer <key>` for every API call."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .selectors import api_key_get_active
from .services import api_key_mark_used


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates an operator API key; `request.auth` is the ApiKey.

    A missing, malformed, unknown or revoked key is refused with 401 before the view
    runs, so nothing is written.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
        api_key = api_key_get_active(key=key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_mark_used(api_key=api_key)
        return (OperatorUser(api_key), api_key)

    def authenticate_header(self, request):
        return self.keyword


class OperatorUser:
    """The caller behind an operator key: authenticated, with full API access."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, api_key):
        self.api_key = api_key
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <key>` as the API's security scheme."""

    target_class = "contracts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An operator API key, `tt_<prefix>_<secret>`.",
        }
