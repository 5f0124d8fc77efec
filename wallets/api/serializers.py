"""Shapes of the wallet and alerts API. As elsewhere, serializers check shape; the rules on
values (shares from 1 to 100, positive money, addresses, both top-up fields or neither) are
the model's, enforced by wallets.alerts.alert_settings_update, so the API and the admin
refuse the same things with the same words."""

from rest_framework import serializers

from common.api import (
    ExactFigureField,
    ExactMoneyField,
    InstantField,
    OutputSerializer,
    StrictSerializer,
)
from wallets.models import DEFAULT_SHARES, Alert, AlertDelivery, CreditGrant

EXACT = "with 12 decimal places"


class GrantSerializer(OutputSerializer):
    """Credits that arrived at once, with what is left of them."""

    id = serializers.IntegerField()
    # A field named `source`: DRF takes it from the class, the stubs see Field.source.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        CreditGrant.Source.values, help_text="Where they came from."
    )
    amount = ExactFigureField(help_text=f"Granted, {EXACT}.")
    remaining = ExactFigureField(help_text=f"Not yet drawn, {EXACT}.")
    priority = serializers.IntegerField(help_text="Higher is drawn first.")
    effective_at = InstantField()
    expires_at = InstantField(allow_null=True, help_text="null: never.")


class WalletHoldSerializer(OutputSerializer):
    """Credits held for an authorized call (billing's hold endpoint tells more of it)."""

    id = serializers.UUIDField(source="pk")
    amount = ExactFigureField(help_text=f"Held, {EXACT}.")
    reference = serializers.CharField(help_text="The reference the authorization gave.")
    created_at = InstantField()
    expires_at = InstantField(help_text="Released by then if the call's event is not rated.")


class WalletSerializer(OutputSerializer):
    """A customer's prepaid credits in their currency: `available` is the `balance` less
    what is `held` for authorized calls. A customer without credits has 0 and no grants."""

    customer_id = serializers.CharField(
        source="customer.external_id", help_text="The customer's external id."
    )
    currency = serializers.CharField(source="customer.currency", help_text="ISO 4217 code.")
    balance = ExactFigureField(help_text=f"The sum of the wallet's ledger, {EXACT}.")
    held = ExactFigureField(help_text=f"Held by the active holds, {EXACT}.")
    available = ExactFigureField(help_text=f"What may still be spent, {EXACT}.")
    grants = GrantSerializer(
        many=True, help_text="Live grants in draw-down order: priority, soonest expiry, oldest."
    )
    holds = WalletHoldSerializer(many=True, help_text="The active holds, oldest first.")


def _money(help_text: str) -> ExactMoneyField:
    return ExactMoneyField(required=False, allow_null=True, default=None, help_text=help_text)


def _shares(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        default=list(DEFAULT_SHARES),
        help_text=help_text,
    )


class AlertSettingsSerializer(StrictSerializer):
    """A customer's alert settings. PUT replaces them whole: a field left out takes its
    default (no budget, no thresholds, shares [50, 75, 90, 100], no webhook)."""

    budget = _money("Usage per billing period, after discount; null: no budget alerts.")
    budget_shares = _shares("Percentages of the budget that alert, once each per period.")
    credit_shares = _shares("Percentages of each grant used that alert, once each per grant.")
    balance_below = _money("Alert once each time the balance falls under this; null: none.")
    emails = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Addresses separated by commas or spaces; empty: the customer's email.",
    )
    webhook_url = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="http(s) URL; empty: none."
    )
    webhook_secret = serializers.CharField(
        read_only=True, help_text="Signs each webhook (Tokentill-Signature); set by tokentill."
    )
    topup_below = _money("Request a top-up when the balance falls under this; null: none.")
    topup_amount = _money("What each top-up buys; set with topup_below.")


class AlertDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertDelivery
        fields = ["channel", "target", "status", "attempts", "response_status", "last_error",
                  "next_attempt_at", "delivered_at"]  # fmt: skip
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    threshold = ExactMoneyField(
        read_only=True, help_text="The budget, the grant's amount or the balance threshold."
    )
    amount = ExactMoneyField(
        read_only=True, help_text="The usage, credits used or balance when it fired."
    )
    deliveries = AlertDeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = ["id", "kind", "share", "threshold", "amount", "currency", "period_start",
                  "grant", "message", "fired_at", "cleared_at", "deliveries"]  # fmt: skip
        read_only_fields = fields


class AlertsQuerySerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Alert.Kind.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
