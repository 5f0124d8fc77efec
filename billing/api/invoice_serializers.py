"""Shapes of the invoice answers: an invoice (in the list, alone with its lines and credit
notes, or the current period's preview), a line's events, a credit note.

Amounts as billed (a line's `amount`, an invoice's `total` and `credited`, a credit note's
`amount`) are rounded and carry the currency's minor places: "59.00" in USD, "1235" in
JPY. Exact figures (`exact_amount`, `unit_price`, `quantity`, an event's `amount`) carry
12 places, like the usage API.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import BilledMoneyField, BlankAsNullCharField, InstantField, OutputSerializer
from metering.api.serializers import MetricsField
from pricing.invoice import amount_due
from pricing.money import minor_text

from .serializers import exact, period

BILLED = "rounded to the currency's minor unit"


class LinePriceSerializer(OutputSerializer):
    """The price a usage line bills, with its rate card version."""

    name = serializers.CharField(help_text="The price's name.")
    rate_card = serializers.CharField(source="version.rate_card.name", help_text="Its rate card.")
    version = serializers.IntegerField(source="version.number", help_text="The version number.")


class LineDetailSerializer(OutputSerializer):
    """One metric a usage line billed, in the customer's words (pricing.line_text)."""

    metric = serializers.CharField(help_text="The metric, e.g. input_tokens.")
    # A field named `label` shadows Field.label for the type checker only: DRF takes
    # declared fields off the class.
    label = serializers.CharField(help_text='In plain words, e.g. "Input tokens".')  # type: ignore[assignment]
    quantity = serializers.CharField(help_text='How many, as plain digits: "1200000".')
    rate = serializers.CharField(
        allow_null=True,
        help_text='Its price per `per`, e.g. "2.50"; null where no single rate per metric '
        "holds (tiers, packages, a formula with conditions).",
    )
    per = serializers.CharField(
        allow_null=True, help_text='The rate\'s unit: "1M tokens", "1K tokens" or "token".'
    )


class InvoiceLineSerializer(OutputSerializer):
    """One line of an invoice: rounded once, half up, from its exact money."""

    position = serializers.IntegerField(help_text="1, 2, ... in the invoice.")
    kind = serializers.CharField(
        help_text="fixed_fee, usage, discount, allowance, minimum, late_usage or credits."
    )
    description = serializers.CharField()
    period = period("The billing period the line bills.")
    quantity = exact("The quantity")
    unit_price = exact("The price of one unit")
    exact_amount = exact("quantity times unit_price, before rounding")
    amount = BilledMoneyField(currency="invoice.currency", help_text=f"As billed, {BILLED}.")
    price = LinePriceSerializer(allow_null=True, help_text="A usage line's price; else null.")
    terms = serializers.IntegerField(
        source="terms.number", allow_null=True, help_text="The contract terms that priced it."
    )
    event_count = serializers.IntegerField(help_text="The events the line covers.")
    first_event_at = InstantField(allow_null=True, help_text="The first of them.")
    last_event_at = InstantField(allow_null=True, help_text="The last of them.")
    details = LineDetailSerializer(
        many=True,
        help_text="A usage line's tokens per metric it charges, with the rate where one "
        "applies; [] for the other lines and for lines made before lines had details.",
    )


class CreditNoteSerializer(OutputSerializer):
    """A correction of a finalized invoice, which stays as it was."""

    number = serializers.CharField()
    invoice = serializers.CharField(source="invoice.number", help_text="The invoice's number.")
    reason = serializers.CharField(help_text="rerating, goodwill or void.")
    memo = serializers.CharField()
    destination = serializers.CharField(
        help_text="wallet (granted back as credits), stripe (pushed against the invoice) or "
        "none (recorded only)."
    )
    exact_amount = exact("The credit before rounding")
    amount = BilledMoneyField(currency="invoice.currency", help_text=f"As credited, {BILLED}.")
    created_by = serializers.CharField(help_text="Who issued it.")
    created_at = InstantField()
    stripe_id = BlankAsNullCharField(allow_null=True, help_text="Its Stripe id once pushed.")


class InvoiceSerializer(OutputSerializer):
    """An invoice without its lines, as the list shows it."""

    number = serializers.CharField(allow_null=True, help_text="null for a preview.")
    customer_id = serializers.CharField(source="customer.external_id")
    currency = serializers.CharField(help_text="ISO 4217 code.")
    status = serializers.SerializerMethodField(
        help_text="draft, finalized, paid, void or uncollectible; preview for a preview."
    )
    period = period()
    total = BilledMoneyField(help_text=f"The sum of the lines, each {BILLED}.")
    credited = serializers.SerializerMethodField(
        help_text=f"The sum of its credit notes, {BILLED}."
    )
    amount_due = serializers.SerializerMethodField(
        help_text="What it asks for: the total less its credit notes, never below 0."
    )
    created_at = InstantField()
    finalized_at = InstantField(allow_null=True)
    due_at = InstantField(
        allow_null=True,
        help_text="When payment is due: finalized_at plus the contract's payment terms.",
    )
    paid_at = InstantField(allow_null=True)
    voided_at = InstantField(allow_null=True)
    stripe_id = BlankAsNullCharField(allow_null=True, help_text="Its Stripe id once pushed.")
    stripe_status = BlankAsNullCharField(allow_null=True, help_text="Its status at Stripe.")
    stripe_hosted_url = BlankAsNullCharField(
        allow_null=True, help_text="Stripe's page where the customer pays it, once pushed."
    )

    @extend_schema_field(serializers.CharField)
    def get_status(self, invoice) -> str:
        return invoice.status

    @extend_schema_field(BilledMoneyField)
    def get_credited(self, invoice) -> str:
        credited = sum(note.amount for note in invoice.credit_notes.all())
        return minor_text(credited, invoice.currency)

    @extend_schema_field(BilledMoneyField)
    def get_amount_due(self, invoice) -> str:
        notes = [note.amount for note in invoice.credit_notes.all()]
        return minor_text(amount_due(invoice.total, notes), invoice.currency)


class InvoiceDetailSerializer(InvoiceSerializer):
    """An invoice with its lines and credit notes."""

    lines = serializers.SerializerMethodField(help_text="In order of position.")
    credit_notes = serializers.SerializerMethodField(help_text="Oldest first.")

    @extend_schema_field(InvoiceLineSerializer(many=True))
    def get_lines(self, invoice) -> list:
        return list(InvoiceLineSerializer(invoice.lines.all(), many=True).data)

    @extend_schema_field(CreditNoteSerializer(many=True))
    def get_credit_notes(self, invoice) -> list:
        return list(CreditNoteSerializer(invoice.credit_notes.all(), many=True).data)


class InvoicePreviewSerializer(InvoiceDetailSerializer):
    """The invoice the current period would produce now (`InvoicePreview`), shaped as an
    invoice: its unsaved invoice with no number, status "preview", nothing credited, the
    preview's lines and no credit notes."""

    def to_representation(self, preview):
        return super().to_representation(preview.invoice)

    @extend_schema_field({"type": "string", "enum": ["preview"]})
    def get_status(self, invoice) -> str:
        return "preview"

    @extend_schema_field(BilledMoneyField)
    def get_credited(self, invoice) -> str:
        return minor_text(0, invoice.currency)

    @extend_schema_field(BilledMoneyField)
    def get_amount_due(self, invoice) -> str:
        return minor_text(amount_due(invoice.total, []), invoice.currency)

    @extend_schema_field(InvoiceLineSerializer(many=True))
    def get_lines(self, invoice) -> list:
        preview = self.instance  # the InvoicePreview: its lines, not the unsaved invoice's
        assert preview is not None
        return list(InvoiceLineSerializer(preview.lines, many=True).data)

    @extend_schema_field(CreditNoteSerializer(many=True))
    def get_credit_notes(self, invoice) -> list:
        return []


class LineEventSerializer(OutputSerializer):
    """An event a usage line covers, with what it was rated at: `amount` for per-event
    prices, `quantity` for tiered ones."""

    event_id = serializers.CharField(source="event.event_id")
    timestamp = InstantField(help_text="When the event happened.")
    model = serializers.CharField(source="event.model")
    feature = serializers.CharField(source="event.feature")
    metrics = MetricsField(source="event.metrics")
    amount = exact("Its money (per-event prices)", allow_null=True)
    quantity = exact("Its quantity (tiered prices)", allow_null=True)
    rated_at = InstantField(help_text="When it was rated.")
