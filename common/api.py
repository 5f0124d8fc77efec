"""API helpers shared by the apps' APIs: what a request may carry, what an answer and an
error look like.

Serializers check shape only (types, required fields, unknown fields); the rules on the
values live on the models and services, so the API and the admin refuse the same things
with the same words. Money travels as decimal strings and instants as ISO 8601 with an
offset: a JSON number is never money, and an instant without an offset has no single
meaning. Answers are shaped by `OutputSerializer`s, which render what a selector or
service returned and describe it in the OpenAPI schema.
"""

import re
from collections.abc import Mapping

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import get_attribute as attribute_at
from rest_framework.pagination import CursorPagination
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from pricing.money import exact_text, minor_text

from .throttling import EXPORTS

UNKNOWN_FIELD = "Unknown field."


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare, so a typo is an error rather than ignored."""

    def undeclared_field_errors(self, data: Mapping) -> dict[str, list[str]]:
        return {name: [UNKNOWN_FIELD] for name in sorted(set(data) - set(self.fields))}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = self.undeclared_field_errors(data)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


DUPLICATE_EXTERNAL_ID = "A customer with this external_id already exists."


def api_validation_error(exc: DjangoValidationError) -> ValidationError:
    """A model's `full_clean` error as DRF's `{field: [messages]}`, with clearer wording
    for a duplicate external_id."""
    if not hasattr(exc, "error_dict"):
        return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
    detail = {}
    for field, errors in exc.error_dict.items():
        key = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field
        detail[key] = [
            DUPLICATE_EXTERNAL_ID
            if (field, error.code) == ("external_id", "unique")
            else next(iter(error))
            for error in errors
        ]
    return ValidationError(detail)


def errors_flat(detail: object, where: str = "") -> dict[str, list[str]]:
    """A serializer's nested errors as `{where: [messages]}`, each key the path to what is
    wrong: `prices[2].rates.rate_out` (lists by index, maps by key; what is wrong with a
    whole item or the whole request under its own path, or `non_field_errors`)."""
    found: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, inner in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                path = where
            elif isinstance(key, int):  # a ListField's errors, by index
                path = f"{where}[{key}]"
            else:
                path = f"{where}.{key}" if where else str(key)
            for name, messages in errors_flat(inner, path).items():
                found.setdefault(name, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, inner in enumerate(detail):  # a nested serializer's list, {} for the good
            for name, messages in errors_flat(inner, f"{where}[{index}]").items():
                found.setdefault(name, []).extend(messages)
    elif isinstance(detail, list):
        found[where or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in detail]
    else:
        found[where or api_settings.NON_FIELD_ERRORS_KEY] = [str(detail)]
    return found


DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
MONEY_HELP = 'A decimal string, e.g. "500.00"; JSON numbers are refused.'


@extend_schema_field({"type": "string", "format": "decimal", "pattern": DECIMAL_TEXT.pattern})
class MoneyField(serializers.Field):
    """An exact amount written as text ("500.00"); a JSON number is refused, since a
    parser may already have turned it into a float."""

    default_error_messages = {
        "not_text": 'Write the amount as a string, e.g. "500.00": money is never a JSON number.',
        "invalid": "'{value}' is not a decimal number such as \"500.00\".",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        if not DECIMAL_TEXT.match(data):
            self.fail("invalid", value=data[:50])
        return data  # the model's DecimalField makes it a Decimal and checks its digits

    def to_representation(self, value):
        return f"{value:f}"


class InstantField(serializers.DateTimeField):
    """ISO 8601 with its offset (Z or ±hh:mm); a naive instant is refused, not guessed.
    Answers are in UTC."""

    default_error_messages = {
        "invalid": "Use ISO 8601 with an offset, e.g. 2026-01-01T00:00:00Z.",
        "naive": "Give the UTC offset too, e.g. 2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(value)
        except ValueError:  # well-formed but impossible, e.g. 30 February
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.utcoffset() is None:
            self.fail("naive")
        return super().to_internal_value(value)


class ExactMoneyField(MoneyField):
    """Money as text in, and out with 12 decimal places (as the wallet endpoint answers)."""

    def to_representation(self, value):
        return exact_text(value)


EXACT_TEXT = re.compile(r"^-?[0-9]+\.[0-9]{12}$")


@extend_schema_field({"type": "string", "format": "decimal", "pattern": EXACT_TEXT.pattern})
class ExactFigureField(serializers.Field):
    """An exact figure, money or a quantity, answered (read only) as text with 12 decimal
    places: "0.010000000000"."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return exact_text(value)


class BilledMoneyField(MoneyField):
    """Money as billed, read only: rounded half up to the currency's minor unit and written
    with its places ("59.00" in USD, "1235" in JPY). The currency is read from the same
    object as the amount, at `currency` (a dotted path, e.g. "invoice.currency")."""

    def __init__(self, *, currency: str = "currency", **kwargs):
        super().__init__(read_only=True, **kwargs)
        self.currency_attrs = currency.split(".")

    def get_attribute(self, instance):
        amount = super().get_attribute(instance)
        return None if amount is None else (amount, attribute_at(instance, self.currency_attrs))

    def to_representation(self, value):
        amount, currency = value
        return minor_text(amount, currency)


class BlankAsNullCharField(serializers.CharField):
    """Text that answers null rather than "" when there is none (a Stripe id not yet set)."""

    def to_representation(self, value):
        return super().to_representation(value) if value != "" else None


class OutputSerializer(serializers.Serializer):
    """The shape of an answer: renders what a selector or service returned, and describes
    it in the OpenAPI schema. Every field is read only; it never parses a request."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields

    def to_internal_value(self, data):
        raise TypeError(f"{type(self).__name__} shapes answers; it parses no request.")


class ErrorSerializer(OutputSerializer):
    """An error that is not about one field: an unknown customer or invoice, a body that
    is not JSON, a missing or refused API key."""

    detail = serializers.CharField(help_text="What went wrong, in words.")


FIELD_ERRORS = (
    "Validation errors as `{field: [messages]}`: each refused field of the request with its "
    "messages; `non_field_errors` for the request as a whole."
)


class FieldErrorsSerializer(serializers.Serializer):
    """Validation errors, which DRF renders itself: only describes them (`FieldErrorsSchema`)."""


class FieldErrorsSchema(OpenApiSerializerExtension):
    """`FieldErrorsSerializer` in the OpenAPI schema: an object keyed by field names."""

    target_class = FieldErrorsSerializer

    def map_serializer(self, auto_schema, direction):
        messages = {"type": "array", "items": {"type": "string"}}
        return {
            "type": "object",
            "description": FIELD_ERRORS,
            "properties": {api_settings.NON_FIELD_ERRORS_KEY: messages},
            "additionalProperties": messages,
        }


def rate_limited_answers(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing: every operation of the API may answer 429 past its
    key's budget (common.throttling), with `Retry-After` and the Error shape."""
    answer = {
        "description": "Past the API key's budget for this kind of request: retry after "
        '`Retry-After` seconds (docs/guide/api.md, "Rate limits").',
        "headers": {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds until the budget's window ends.",
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("429", answer)
    return result


class FileDownloadView(APIView):
    """A view answering a file (CSV, PDF) rather than JSON, whatever the client accepts; an
    error is still JSON. Downloads count against the exports budget (common.throttling)."""

    throttle_scopes = {"GET": EXPORTS, "HEAD": EXPORTS}

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


def key_author(request) -> str:
    """Who made a change over the API, as the records it makes keep it (`created_by`): the
    operator key's name and prefix."""
    api_key = request.auth
    return f"API key {api_key.name} (tt_{api_key.prefix}_…)"[:150]


class CursorPages(CursorPagination):
    """Stable pages over a growing table (follow `next`): 100 rows, `page_size` up to
    1,000. `next_example`, when set, is the `next` link the schema shows."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    next_example: str | None = None

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        if self.next_example is not None:
            properties = paginated["properties"]
            properties["next"]["example"] = self.next_example
            properties["previous"]["example"] = None
        return paginated


class NewestFirst(CursorPages):
    """Newest first, by id: a page stays the same while rows are added."""

    ordering: str | tuple[str, ...] = "-id"
