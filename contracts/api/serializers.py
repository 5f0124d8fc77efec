"""Shapes of the customers API: what a request may carry and what an answer looks like.

Serializers check shape only (types, required fields, unknown fields). The rules on the
values themselves (ISO 4217 currency, external_id characters, uniqueness) live on the
model and are enforced by the services' `full_clean`, so the API, the admin and the
command line refuse the same things with the same words.
"""

from collections.abc import Mapping

from rest_framework import serializers

from common.api import StrictSerializer
from contracts.models import Customer

FIXED_FIELD = "This field cannot be changed after the customer is created."


class CustomerSerializer(serializers.ModelSerializer):
    """A customer as the API shows it."""

    class Meta:
        model = Customer
        fields = ["external_id", "name", "currency", "email", "status", "created_at", "updated_at"]
        read_only_fields = fields


class CustomerCreateSerializer(StrictSerializer):
    """A new customer. Fields other than these four are refused."""

    external_id = serializers.CharField(
        max_length=100,
        trim_whitespace=False,
        help_text="The id your services send as customer_id: 1-100 letters, digits or "
        ". _ : @ - (starting with a letter or digit). Fixed after creation.",
    )
    name = serializers.CharField(max_length=200)
    currency = serializers.CharField(
        max_length=3,
        trim_whitespace=False,
        help_text="ISO 4217 code in capitals, e.g. USD. Fixed after creation.",
    )
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class CustomerUpdateSerializer(StrictSerializer):
    """A partial update: any of name, email and status.

    `external_id` and `currency` are fixed: a different value is refused with a message
    that says so; the current value is accepted and ignored (a client may send back what
    it read). Other fields are refused.
    """

    FIXED_FIELDS = ("external_id", "currency")

    name = serializers.CharField(max_length=200, required=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)

    def undeclared_field_errors(self, data: Mapping) -> dict[str, list[str]]:
        errors = super().undeclared_field_errors(data)
        for name in self.FIXED_FIELDS:
            if name in errors:
                if data[name] == getattr(self.instance, name):
                    del errors[name]
                else:
                    errors[name] = [FIXED_FIELD]
        return errors


class CustomerListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)
