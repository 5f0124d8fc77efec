"""Shapes of the metering API. Ingestion validates with `metering.intake` (bulk, no
serializer per item); the serializers here describe it in the OpenAPI schema and render
stored events."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import StrictSerializer
from metering.models import UsageEvent


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "integer"}, {"type": "string", "format": "decimal"}]
        },
        "example": {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 1000},
    }
)
class MetricsField(serializers.JSONField):
    """A stored event's metrics as stored: metric name → integer, or the shortest exact
    decimal string when not whole."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "example": {"environment": "production"},
    }
)
class PropertiesField(serializers.JSONField):
    """A stored event's properties as stored: name → text."""


class EventInSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=255, help_text="Idempotency key, per customer.")
    customer_id = serializers.CharField(help_text="The customer's external id.")
    timestamp = serializers.DateTimeField(help_text="RFC 3339 with offset or Z.")
    model = serializers.CharField(max_length=200)
    feature = serializers.CharField(max_length=200, required=False)
    metrics = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Metric name → non-negative integer or decimal string.",
    )
    provider = serializers.ChoiceField(["openai", "anthropic", "google"], required=False)
    usage = serializers.DictField(
        required=False, help_text="The provider's own usage object (with `provider`)."
    )
    text = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text='{"input": "...", "output": "..."}: counted by the tokenizer table.',
    )
    messages = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Chat messages, counted by the tokenizer table (with text.output for the reply).",
    )
    properties = serializers.DictField(child=serializers.CharField(), required=False)


class EventBatchInSerializer(serializers.Serializer):
    events = EventInSerializer(many=True)


class ItemErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class ItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(["accepted", "duplicate", "rejected"])
    # A field named `errors`: DRF takes it from the class, the stubs see Serializer.errors.
    errors = ItemErrorSerializer(many=True, required=False)  # type: ignore[assignment]
    tokenizer = serializers.CharField(
        required=False, help_text="An event sent as text: the tokenizer that counted it."
    )
    estimated = serializers.BooleanField(
        required=False, help_text="Whether that count is an estimate (not the model's own)."
    )


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    items = ItemResultSerializer(many=True)


class EventOutSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="customer.external_id")
    metrics = MetricsField(read_only=True)
    properties = PropertiesField(read_only=True)
    # The seal's sequence; null until the sealer chains the event's batch (seconds).
    seal = serializers.IntegerField(source="seal.sequence", read_only=True, allow_null=True)

    class Meta:
        model = UsageEvent
        fields = [
            "event_id",
            "customer_id",
            "timestamp",
            "model",
            "feature",
            "metrics",
            "properties",
            "counting",
            "provider",
            "tokenizer",
            "estimated",
            "received_at",
            "seal",
        ]


class TokenCountInSerializer(StrictSerializer):
    model = serializers.CharField(max_length=200)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    messages = serializers.ListField(child=serializers.DictField(), required=False)

    def validate(self, attrs):
        if ("text" in attrs) == ("messages" in attrs):
            raise serializers.ValidationError("send exactly one of text or messages")
        return attrs


class TokenCountOutSerializer(serializers.Serializer):
    model = serializers.CharField()
    tokenizer = serializers.CharField(help_text="The tokenizer that counted, e.g. o200k_base.")
    encoding = serializers.CharField(help_text="The same as tokenizer, for older clients.")
    estimated = serializers.BooleanField(
        help_text="True when the count is not by the model's own tokenizer and chat format."
    )
    tokens = serializers.IntegerField()
