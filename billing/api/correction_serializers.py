"""Shapes of a price correction: what a request may carry, its preview (a diff per customer
and period, with what the next closing bills or credits for a closed period) and the
correction once applied (`billing.corrections.PriceCorrectionResult`).

Exact figures (the diff's money, a period's charges and credits) carry 12 places; what is
billed or credited (a credit note, a line on the next invoice) carries the currency's minor
places, as invoices do.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import (
    DECIMAL_TEXT,
    BilledMoneyField,
    InstantField,
    OutputSerializer,
    StrictSerializer,
)
from contracts.models import RATE_UNITS

from .invoice_serializers import BILLED
from .serializers import exact, period
from .usage_serializers import RerateLineSerializer, RerateTotalSerializer

AMOUNT_TEXT = {"type": "string", "format": "decimal", "pattern": DECIMAL_TEXT.pattern}
RATE_SCHEMA = {
    "oneOf": [
        {**AMOUNT_TEXT, "description": 'An amount, e.g. "5.00": the rate keeps its unit.'},
        {
            "type": "object",
            "description": "An amount and its unit (per 1, 1000 or 1000000 units).",
            "properties": {
                "amount": AMOUNT_TEXT,
                "per": {"type": "integer", "enum": [*RATE_UNITS]},
            },
            "required": ["amount", "per"],
        },
    ]
}


@extend_schema_field(RATE_SCHEMA)
class RateValueField(serializers.Field):
    """A corrected rate: an amount as text (the rate keeps its unit), or {"amount", "per"}.
    A JSON number is refused: money is never a float."""

    default_error_messages = {
        # DRF formats the message: braces are doubled.
        "invalid": 'Give the amount as text, e.g. "5.00", or {{"amount": "5.00", "per": 1000000}}.',
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and DECIMAL_TEXT.match(data):
            return data
        if (
            isinstance(data, dict)
            and set(data) == {"amount", "per"}
            and isinstance(data["amount"], str)
            and type(data["per"]) is int
        ):
            return data  # the price's own check reads the amount and the unit
        self.fail("invalid")

    def to_representation(self, value):
        return value


class PriceCorrectionInSerializer(StrictSerializer):
    """A correction of one price of the rate card from an instant in the past."""

    effective_from = InstantField(
        help_text="From when the price is corrected: an instant in the past, with its offset."
    )
    price = serializers.CharField(max_length=200, help_text="The price's name, e.g. gpt-4o.")
    rates = serializers.DictField(
        child=RateValueField(),
        required=False,
        default=dict,
        help_text='The rates it sets, e.g. {"rate_out": "5.00"}; the others stay.',
    )
    formula = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        help_text="A new formula for the price; empty: unchanged.",
    )
    reason = serializers.CharField(help_text="Why: kept with the correction.")
    apply = serializers.BooleanField(
        required=False,
        default=False,
        help_text="false (the default): answer the diff and store nothing; true: correct and "
        "re-rate.",
    )


class CorrectionVersionSerializer(OutputSerializer):
    """A version the correction makes: a copy of the version in force there, corrected."""

    number = serializers.IntegerField()
    effective_from = InstantField(help_text="Where it takes over.")
    copies = serializers.IntegerField(help_text="The number of the version it copies.")


class CorrectionSerializer(OutputSerializer):
    """What a correction sets, from when, who made it and why, and the versions it makes."""

    id = serializers.IntegerField(
        source="correction_id", allow_null=True, help_text="null for a preview."
    )
    rate_card = serializers.CharField(source="rate_card.name")
    price = serializers.CharField(help_text="The price corrected.")
    effective_from = InstantField()
    rates = serializers.DictField(child=RateValueField(), help_text="The rates it sets.")
    formula = serializers.CharField(help_text='The formula it sets; "" for unchanged.')
    reason = serializers.CharField()
    created_by = serializers.CharField(help_text="Who: the API key's name, a staff user.")
    created_at = InstantField(allow_null=True, help_text="null for a preview.")
    versions = CorrectionVersionSerializer(many=True)


class ChargesSerializer(OutputSerializer):
    """A closed period's charges (fees, usage, discount, allowance, true-up), exact."""

    billed = exact("As billed", source="billed_total")
    after = exact("Once re-rated", source="total_after")


class CreditsSerializer(OutputSerializer):
    """The prepaid credits drawn for a closed period, exact: the draw-down gives back what
    re-rating takes off and draws what it adds, as far as the wallet goes."""

    billed = exact("As billed", source="billed_credits")
    after = exact("Once re-rated, with the wallet as it is now", source="credits_after")


class CreditNoteForeseenSerializer(OutputSerializer):
    """The credit note the next closing will issue on the period's invoice."""

    invoice = serializers.CharField(source="invoice.number")
    amount = BilledMoneyField(source="credit_note", help_text=f"What it credits, {BILLED}.")
    destination = serializers.CharField(
        help_text="wallet (paid invoice), stripe (invoice in Stripe) or none (recorded only)."
    )


class LineForeseenSerializer(OutputSerializer):
    """A line the next invoice will carry for the period."""

    kind = serializers.CharField(help_text="late_usage or credits.")
    description = serializers.CharField()
    amount = BilledMoneyField(help_text=f"As it will be billed, {BILLED}.")


class NextInvoiceSerializer(OutputSerializer):
    """Where the next closing bills what is owed: the lines of the next invoice."""

    invoice = serializers.CharField(
        source="next_invoice",
        help_text='"the invoice of <period>", or "a final invoice of corrections".',
    )
    lines = LineForeseenSerializer(source="next_invoice_lines", many=True)


class ClosedOutcomeSerializer(OutputSerializer):
    """What the next closing will do for a period already invoiced: the difference owed in
    cash goes to exactly one place (docs/guide/invoices.md, "Corrections of closed
    periods"), as closing's own rule works it out."""

    invoice = serializers.CharField(source="invoice.number", help_text="The period's invoice.")
    charges = ChargesSerializer(source="*")
    credits = CreditsSerializer(source="*")
    description = serializers.CharField(
        help_text='How the correction is named ("" when nothing changes).'
    )
    credit_note = serializers.SerializerMethodField(
        help_text="The credit note on the period's invoice, or null."
    )
    next_invoice = serializers.SerializerMethodField(
        help_text="The lines on the next invoice, or null."
    )
    paid_by_credits = serializers.BooleanField(
        help_text="true when the wallet gets back (or pays) the whole difference."
    )

    @extend_schema_field(CreditNoteForeseenSerializer(allow_null=True))
    def get_credit_note(self, outcome):
        return CreditNoteForeseenSerializer(outcome).data if outcome.credit_note else None

    @extend_schema_field(NextInvoiceSerializer(allow_null=True))
    def get_next_invoice(self, outcome):
        return NextInvoiceSerializer(outcome).data if outcome.lines else None


class CorrectionPeriodSerializer(OutputSerializer):
    """One period of one customer, re-rated with the correction."""

    period = period()
    status = serializers.SerializerMethodField(help_text="open, or closed (invoiced).")
    events = serializers.IntegerField(source="diff.events", help_text="The period's events.")
    total = RerateTotalSerializer(source="diff", help_text="The period's charges, exact.")
    lines = RerateLineSerializer(source="diff.lines", many=True)
    closed = ClosedOutcomeSerializer(allow_null=True, help_text="null for an open period.")

    def get_status(self, preview) -> str:
        return "open" if preview.closed is None else "closed"


class CorrectionCustomerSerializer(OutputSerializer):
    """A customer whose terms use the card at or after the instant."""

    customer_id = serializers.CharField(source="customer.external_id")
    periods = CorrectionPeriodSerializer(
        many=True, help_text="Periods holding their usage from the instant on; [] for none."
    )


class PriceCorrectionPreviewSerializer(OutputSerializer):
    """What a correction would change, per customer and period; nothing was stored."""

    applied = serializers.BooleanField(help_text="false: a preview.")
    correction = CorrectionSerializer(source="*")
    customers = CorrectionCustomerSerializer(many=True)


class QueuedPeriodSerializer(OutputSerializer):
    """A period whose events were queued to be rated again."""

    customer_id = serializers.CharField(source="customer.external_id")
    period = period()
    events = serializers.IntegerField(help_text="Events queued.")
    invoice = serializers.CharField(
        source="invoice.number",
        allow_null=True,
        help_text="The period's invoice when it is closed: the next closing corrects it.",
    )


class PriceCorrectionAppliedSerializer(OutputSerializer):
    """A correction made: recorded, and the periods it reaches queued to be re-rated."""

    applied = serializers.BooleanField(help_text="true.")
    correction = CorrectionSerializer(source="*")
    queued = QueuedPeriodSerializer(many=True)
    events_queued = serializers.IntegerField(help_text="Events queued in all.")
