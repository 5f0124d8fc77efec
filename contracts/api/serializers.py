"""Shapes of the customers API: what a request may carry and what an answer looks like.

Serializers check shape only (types, required fields, unknown fields). The rules on the
values themselves (ISO 4217 currency, external_id characters, uniqueness) live on the
model and are enforced by the services' `full_clean`, so the API, the admin and the
command line refuse the same things with the same words.
"""

from collections.abc import Mapping

from rest_framework import serializers

from common.api import StrictSerializer
from contracts.models import BILLING_ADDRESS_MAX, Customer

FIXED_FIELD = "This field cannot be changed after the customer is created."


class CustomerSerializer(serializers.ModelSerializer):
    """A customer as the API shows it."""

    class Meta:
        model = Customer
        fields = [
            "external_id",
            "name",
            "currency",
            "email",
            "legal_name",
            "billing_address",
            "tax_id",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BillToFields(serializers.Serializer):
    """What invoices print under "Bill to", beside the name and billing email."""

    legal_name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="The name invoices are made out to; empty: the name.",
    )
    billing_address = serializers.CharField(
        max_length=BILLING_ADDRESS_MAX,
        required=False,
        allow_blank=True,
        help_text="Printed under the legal name, one line per line (\\n between lines), at "
        "most 8 lines.",
    )
    tax_id = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        help_text="VAT, GST or other tax number: letters, digits, spaces and - . /",
    )


class CustomerCreateSerializer(StrictSerializer, BillToFields):
    """A new customer. Fields other than these are refused."""

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
    email = serializers.EmailField(
        required=False, allow_blank=True, default="", help_text="The billing email."
    )


class CustomerUpdateSerializer(StrictSerializer, BillToFields):
    """A partial update: any of name, email, the bill-to details and status.

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
