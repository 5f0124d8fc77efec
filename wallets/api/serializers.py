"""Shapes of the wallet and alerts API. As elsewhere, serializers check shape; the rules on
values (shares from 1 to 100, positive money, addresses, both top-up fields or neither) are
the model's, enforced by wallets.alerts.alert_settings_update, so the API and the admin
refuse the same things with the same words."""

from rest_framework import serializers

from common.api import (
    ExactFigureField,
    ExactMoneyField,
    InstantField,
    MoneyField,
    OutputSerializer,
    StrictSerializer,
)
from wallets.models import DEFAULT_SHARES, Alert, AlertDelivery, CreditGrant, Hold, LedgerEntry
from wallets.selectors import GrantStatus

EXACT = "with 12 decimal places"
SOURCES = CreditGrant.Source.values  # named once in the schema (ENUM_NAME_OVERRIDES)
HOLD_STATUSES = Hold.Status.values


class GrantSerializer(OutputSerializer):
    """Credits that arrived at once, with what is left of them."""

    id = serializers.IntegerField()
    # A field named `source`: DRF takes it from the class, the stubs see Field.source.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        SOURCES, help_text="Where they came from."
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


# --- Grants, adjustments, holds and the ledger (operator keys) ------------------------------

#: What a grant over the API may say it is: refunds come from credit notes to the wallet,
#: manual adjustments from the adjustments endpoint (a reason required, negative ones too).
GRANT_SOURCES = [
    CreditGrant.Source.PURCHASED.value,
    CreditGrant.Source.PROMOTIONAL.value,
    CreditGrant.Source.ALLOWANCE.value,
]
_INT_LIMIT = 2**31  # the column's range: [-2**31, 2**31)


class GrantRequestSerializer(StrictSerializer):
    """Credits to grant; the rules on the values (a positive amount with at most 12
    places, instants in the future, an expiry after the start) are the service's."""

    amount = MoneyField(help_text='Credits in the customer\'s currency, e.g. "100.00".')
    # A field named `source`: DRF takes it from the class, the stubs see Field.source.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        GRANT_SOURCES, help_text="purchased, promotional or allowance."
    )
    priority = serializers.IntegerField(
        required=False,
        default=0,
        min_value=-_INT_LIMIT,
        max_value=_INT_LIMIT - 1,
        help_text="Higher is drawn first; 0 by default.",
    )
    effective_at = InstantField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Usable from then on (in the future); left out or null: at once.",
    )
    expires_at = InstantField(
        required=False, allow_null=True, default=None, help_text="null or left out: never."
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=300, help_text="Why, kept."
    )


class GrantDetailSerializer(OutputSerializer):
    """A grant with where it stands (`grants_state`): what was granted, what is left, what
    expired."""

    id = serializers.IntegerField(source="grant.id")
    source = serializers.ChoiceField(  # type: ignore[assignment]
        SOURCES, source="grant.source", help_text="Where they came from."
    )
    amount = ExactFigureField(source="grant.amount", help_text=f"Granted, {EXACT}.")
    remaining = ExactFigureField(
        source="grant.remaining", help_text=f"Not yet drawn (0 until credited), {EXACT}."
    )
    expired = ExactFigureField(help_text=f"Lost to its expiry, {EXACT}.")
    status = serializers.ChoiceField(
        GrantStatus.ALL,
        help_text="pending (effective later, not in the wallet yet), live, used (drawn to "
        "nothing) or expired.",
    )
    priority = serializers.IntegerField(source="grant.priority", help_text="Higher first.")
    effective_at = InstantField(source="grant.effective_at", help_text="Usable from then on.")
    credited_at = InstantField(
        source="grant.credited_at",
        allow_null=True,
        help_text="When it entered the wallet with its ledger entry; null while pending.",
    )
    expires_at = InstantField(source="grant.expires_at", allow_null=True, help_text="null: never.")
    reason = serializers.CharField(source="grant.reason")
    created_by = serializers.CharField(source="grant.created_by", help_text="Who granted it.")
    created_at = InstantField(source="grant.created_at")


class AdjustmentRequestSerializer(StrictSerializer):
    amount = MoneyField(
        help_text='Signed: "25.00" adds credits (a grant of its own), "-4.00" takes them '
        "from the grants in draw-down order, in full or not at all."
    )
    reason = serializers.CharField(max_length=300, help_text="Why; required, kept.")


class AdjustmentSerializer(OutputSerializer):
    """A manual adjustment made, and the wallet after it."""

    customer_id = serializers.CharField(source="customer.external_id")
    currency = serializers.CharField(help_text="ISO 4217 code.")
    amount = ExactFigureField(help_text=f"The adjustment, signed, {EXACT}.")
    reason = serializers.CharField()
    created_by = serializers.CharField(help_text="Who made it.")
    grant = GrantDetailSerializer(
        allow_null=True, help_text="The grant a positive adjustment made; null otherwise."
    )
    balance = ExactFigureField(help_text=f"The wallet's balance after it, {EXACT}.")
    available = ExactFigureField(help_text=f"What may still be spent after it, {EXACT}.")


class HoldRecordSerializer(OutputSerializer):
    """A hold, active or closed."""

    id = serializers.UUIDField(source="pk")
    amount = ExactFigureField(help_text=f"What it reserves (or reserved), {EXACT}.")
    estimate = ExactFigureField(help_text=f"The call's worst-case price, {EXACT}.")
    status = serializers.ChoiceField(
        HOLD_STATUSES, help_text="active, settled, released or expired."
    )
    reference = serializers.CharField(help_text="The reference the authorization gave.")
    created_at = InstantField()
    expires_at = InstantField()
    closed_at = InstantField(allow_null=True, help_text="When it stopped being active.")
    settled_cost = ExactFigureField(
        allow_null=True,
        help_text=f"What was drawn for the call that settled it, {EXACT}; null otherwise.",
    )


class LedgerEntrySerializer(OutputSerializer):
    """One movement of the wallet, never changed: positive in, negative out."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(
        LedgerEntry.Kind.values,
        help_text="grant, draw_down, expiry, adjustment (money); hold, release (what is held).",
    )
    amount = ExactFigureField(help_text=f"Signed, {EXACT}.")
    grant = serializers.IntegerField(
        source="grant_id", allow_null=True, help_text="The grant it moves (money entries)."
    )
    hold = serializers.UUIDField(
        source="hold_id", allow_null=True, help_text="The hold it moves (hold entries)."
    )
    reference = serializers.CharField(
        help_text='What caused it, e.g. "usage 2026-11-01" for the usage a draw-down pays for.'
    )
    reason = serializers.CharField(help_text="Why, where one was given.")
    created_by = serializers.CharField(
        help_text='Who made it, for grants and adjustments; "" for work nobody asked for.'
    )
    at = InstantField(source="created_at", help_text="When it moved.")


class PageQuerySerializer(StrictSerializer):
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=1000)


class HoldsQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(HOLD_STATUSES, required=False)


class LedgerQuerySerializer(PageQuerySerializer):
    kind = serializers.ChoiceField(LedgerEntry.Kind.values, required=False)


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
