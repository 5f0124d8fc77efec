"""Shapes of the billing period answers: a customer's periods with where each stands, and
what a closing run made.

What a closed period billed (`charges`, `credits`) is rounded to the currency's minor unit
and carries its places ("45.01" in USD, "1235" in JPY), as on its invoice.
"""

from rest_framework import serializers

from common.api import BilledMoneyField, InstantField, OutputSerializer

from ..invoicing.closing import PeriodStatus
from .invoice_serializers import BILLED, InvoiceSerializer


class SpanSerializer(OutputSerializer):
    """A billing period [start, end)."""

    start = InstantField(help_text="The period's first instant.")
    end = InstantField(help_text="The period's end, exclusive.")


class ClosedPeriodSerializer(OutputSerializer):
    """What closing a period made and what its invoices have billed for it so far (later
    corrections included)."""

    invoice = serializers.CharField(source="invoice.number", help_text="The period's invoice.")
    closed_at = InstantField()
    charges = BilledMoneyField(
        source="billed_total",
        currency="invoice.currency",
        help_text=f"Its charges before prepaid credits, {BILLED}.",
    )
    credits = BilledMoneyField(
        source="billed_credits",
        currency="invoice.currency",
        help_text=f"The prepaid credits applied to them, {BILLED}.",
    )
    events = serializers.IntegerField(source="billed_events", help_text="The events billed.")
    billed_until = InstantField(help_text="Usage rated until then has been billed.")


class PeriodStateSerializer(OutputSerializer):
    """A contract's billing period and where it stands."""

    period = SpanSerializer(source="*")
    contract = serializers.IntegerField(source="contract.pk", help_text="The contract's id.")
    status = serializers.ChoiceField(
        PeriodStatus.ALL,
        help_text="open until its end, in_grace while late events may still land in it, due "
        "once the grace has passed, closed once invoiced.",
    )
    due_at = InstantField(help_text="Its end plus the grace: when closing may close it.")
    closed = ClosedPeriodSerializer(allow_null=True, help_text="null until it is closed.")


class PeriodsSerializer(OutputSerializer):
    """A customer's periods, newest first."""

    customer_id = serializers.CharField(source="customer.external_id")
    currency = serializers.CharField(source="customer.currency", help_text="ISO 4217 code.")
    grace_hours = serializers.IntegerField(
        help_text="How long after its end a period waits for late events before it is due."
    )
    periods = PeriodStateSerializer(many=True, help_text="From the one holding now back.")


class ClosingRunSerializer(OutputSerializer):
    """What a closing made."""

    customer_id = serializers.CharField(
        allow_null=True, help_text="The customer it was limited to; null: every customer."
    )
    invoices = InvoiceSerializer(
        many=True,
        help_text="The invoices made, in order: each closed period's, oldest first, then the "
        "final invoices of customers whose contracts have all ended. Empty: nothing was due.",
    )
    periods = serializers.IntegerField(help_text="How many periods it closed.")
    corrections = serializers.IntegerField(
        help_text="How many customers' corrections it billed once their contracts ended (by "
        "a final invoice, or credit notes alone)."
    )
