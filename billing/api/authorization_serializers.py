"""Shapes of the authorization answers: an authorization (`billing.authorizations.
Authorization`) and a hold. Money is exact text with 12 decimal places."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import BlankAsNullCharField, ExactFigureField, InstantField, OutputSerializer
from wallets.models import Hold

from ..authorizations import Refusal

EXACT = "with 12 decimal places"
REFUSALS = ", ".join(value for name, value in vars(Refusal).items() if not name.startswith("_"))


class HoldSerializer(OutputSerializer):
    """Credits reserved for a model call before it is made."""

    id = serializers.UUIDField(source="pk", help_text="Send it as the event's hold_id property.")
    amount = ExactFigureField(help_text=f"What it reserves of the wallet's credits, {EXACT}.")
    estimate = ExactFigureField(help_text=f"The call's worst-case price, {EXACT}.")
    status = serializers.ChoiceField(
        Hold.Status.values,
        help_text="active until the call's event is rated (settled), it is released or it expires.",
    )
    created_at = InstantField()
    expires_at = InstantField()
    closed_at = InstantField(allow_null=True, help_text="When it stopped being active.")
    settled_cost = ExactFigureField(
        allow_null=True,
        help_text="What was drawn for the call that settled it: what it added to the period's "
        f"usage after discount beyond the allowance, {EXACT}; null while active, or when the "
        "call could not be priced.",
    )


class AuthorizationSerializer(OutputSerializer):
    """An authorization: allowed with its hold, or refused with a reason. The token counts
    it priced are the request's: they come in the context, as `tokens`."""

    allowed = serializers.BooleanField(help_text="Whether the call may be made.")
    reason = BlankAsNullCharField(
        allow_null=True, help_text=f"Why it was refused ({REFUSALS}); null when allowed."
    )
    message = serializers.CharField(help_text='The reason in words; "" when allowed.')
    customer_id = serializers.CharField(
        source="customer.external_id", allow_null=True, help_text="null for an unknown customer."
    )
    currency = serializers.CharField(
        source="customer.currency", allow_null=True, help_text="The customer's ISO 4217 code."
    )
    tokens = serializers.SerializerMethodField(help_text="The token counts priced, by metric.")
    estimate = ExactFigureField(
        allow_null=True,
        help_text=f"The call's worst-case price after discount, {EXACT}; null when refused "
        "before it is priced.",
    )
    allowance = ExactFigureField(
        help_text=f"Of it, what the included allowance left this period covers, {EXACT}."
    )
    overage = ExactFigureField(help_text=f"Of it, what would be billed in arrears, {EXACT}.")
    hold = HoldSerializer(allow_null=True, help_text="null when refused or nothing is held.")
    available = ExactFigureField(
        source="hold.wallet.available",
        allow_null=True,
        help_text=f"The credits still available after the hold, {EXACT}; null without one.",
    )

    @extend_schema_field(
        {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "example": {"input_tokens": 1200, "output_tokens": 800},
        }
    )
    def get_tokens(self, authorization) -> dict:
        return self.context["tokens"]
