"""Shapes of the contracts API: contracts, their terms history, amendments and ends.

As for customers, serializers check shape (types, required and unknown fields); the rules
on values (non-negative money, anchors, overlaps, overrides naming the rate card's prices)
are the services' and the models', so the API and the admin refuse the same things with
the same words. Money travels as decimal strings and instants as ISO 8601 with an offset:
a JSON number is never money, and an instant without an offset has no single meaning.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import MONEY_HELP, InstantField, MoneyField, StrictSerializer
from contracts.models import TERMS_HISTORY_FIELDS, Contract, ContractTerms, RateCard


@extend_schema_field(
    {
        "type": "object",
        "description": "Rates replaced for this customer, by price name, then rate name.",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "amount": {"type": "string", "format": "decimal", "example": "2.00"},
                    "per": {"type": "integer", "enum": [1, 1000, 1000000]},
                },
                "required": ["amount", "per"],
            },
        },
        "example": {"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}},
    }
)
class PriceOverridesField(serializers.JSONField):
    """The overrides as stored; their rules (amounts as text, known units, prices and rates
    of the rate card) are checked by the model and the service."""


class RateCardNameField(serializers.SlugRelatedField):
    default_error_messages = {
        "does_not_exist": "No rate card named '{value}'.",
        "invalid": "Give the rate card's name.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", queryset=RateCard.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


PAYMENT_TERMS_HELP = (
    "Days from an invoice's issue to its due date, 0 to 365 (0: due on receipt); null: "
    "the default (TOKENTILL_PAYMENT_TERMS_DAYS, 30 unless set)."
)


def payment_terms_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(allow_null=True, help_text=PAYMENT_TERMS_HELP, **kwargs)


# --- answers ----------------------------------------------------------------------------


class ContractTermsSerializer(serializers.ModelSerializer):
    """One set of terms: number 1 is the original contract, each amendment the next."""

    effective_from = InstantField(read_only=True)
    rate_card = serializers.CharField(source="rate_card.name", read_only=True)
    fixed_fee = MoneyField(
        read_only=True, help_text="Per full billing period, prorated for part of one."
    )
    included_allowance = MoneyField(read_only=True, help_text="Usage money included each period.")
    minimum_commitment = MoneyField(
        read_only=True, help_text="Usage money billed at least each period."
    )
    discount_percent = MoneyField(read_only=True, help_text='Taken off usage, e.g. "10" for 10 %.')
    price_overrides = PriceOverridesField(read_only=True)

    class Meta:
        model = ContractTerms
        fields = TERMS_HISTORY_FIELDS
        read_only_fields = fields


class ContractSerializer(serializers.ModelSerializer):
    """A contract with the full history of its terms, oldest first."""

    customer = serializers.CharField(source="customer.external_id", read_only=True)
    starts_at = InstantField(read_only=True)
    ends_at = InstantField(read_only=True, allow_null=True, help_text="null: open-ended.")
    terms = ContractTermsSerializer(
        many=True, read_only=True, help_text="Every set of terms, oldest first."
    )

    class Meta:
        model = Contract
        fields = [
            "id",
            "customer",
            "starts_at",
            "ends_at",
            "billing_cycle",
            "anchor_day",
            "anchor_month",
            "payment_terms_days",
            "created_at",
            "terms",
        ]
        read_only_fields = fields
        extra_kwargs = {"payment_terms_days": {"help_text": PAYMENT_TERMS_HELP}}


# --- requests ---------------------------------------------------------------------------


class TermsChangesSerializer(StrictSerializer):
    """Terms an amendment may change; each one left out keeps its current value."""

    rate_card = RateCardNameField(required=False, help_text="The rate card's name.")
    fixed_fee = MoneyField(required=False, help_text=MONEY_HELP)
    included_allowance = MoneyField(required=False, help_text=MONEY_HELP)
    overage_policy = serializers.ChoiceField(choices=ContractTerms.Overage.choices, required=False)
    credits_cover_arrears = serializers.BooleanField(
        required=False,
        help_text=ContractTerms._meta.get_field("credits_cover_arrears").help_text,
    )
    minimum_commitment = MoneyField(required=False, help_text=MONEY_HELP)
    discount_percent = MoneyField(required=False, help_text='A percentage as text, e.g. "10".')
    price_overrides = PriceOverridesField(required=False)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ContractCreateSerializer(TermsChangesSerializer):
    """A new contract and its first terms; terms left out take their defaults (no fee, no
    allowance, arrears, no minimum, no discount, no overrides)."""

    rate_card = RateCardNameField(help_text="The rate card's name.")
    starts_at = InstantField(help_text="ISO 8601 with an offset.")
    ends_at = InstantField(required=False, allow_null=True, help_text="Leave out: open-ended.")
    billing_cycle = serializers.ChoiceField(choices=Contract.Cycle.choices, required=False)
    anchor_day = serializers.IntegerField(
        required=False,
        help_text="Day of the month periods start on, 1-31 (31: the month's last day). "
        "Default: the start's day (UTC). Fixed for the contract's life.",
    )
    anchor_month = serializers.IntegerField(
        required=False,
        help_text="Month quarterly and yearly periods count from, 1-12. Default: the "
        "start's month (UTC). Fixed for the contract's life.",
    )
    payment_terms_days = payment_terms_field(required=False)


class AmendmentCreateSerializer(TermsChangesSerializer):
    """New terms from an instant: the latest terms with the fields sent changed."""

    effective_from = InstantField(
        help_text="From this instant on the new terms apply; usage before it keeps the old."
    )


class ContractUpdateSerializer(StrictSerializer):
    """What may change on a contract besides its terms (amendments) and end."""

    payment_terms_days = payment_terms_field()


class ContractEndSerializer(StrictSerializer):
    """The contract's new end (exclusive), or null to re-open it."""

    ends_at = InstantField(allow_null=True, help_text="The end, exclusive; null re-opens it.")
