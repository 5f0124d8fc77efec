"""Shapes of the webhooks API. As elsewhere, serializers check shape; the rules on values
(an http(s) URL, known event types, each once) are the model's, enforced by
webhooks.services, so the API and the admin refuse the same things with the same words."""

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import BlankAsNullCharField, InstantField, OutputSerializer, StrictSerializer
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery

EVENT_TYPES_HELP = f"Among {', '.join(EVENT_TYPES)}; empty: all of them."


def _event_types(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(), help_text=EVENT_TYPES_HELP, **kwargs
    )


class EndpointSerializer(OutputSerializer):
    """An endpoint billing events are POSTed to, signed with its secret."""

    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField(help_text="false: it is sent nothing.")
    event_types = _event_types()
    secret = serializers.CharField(
        help_text="Signs each delivery (Tokentill-Signature); made by tokentill."
    )
    created_at = InstantField()
    updated_at = InstantField()


class EndpointCreateSerializer(StrictSerializer):
    url = serializers.CharField(help_text="http(s) URL events are POSTed to.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    enabled = serializers.BooleanField(required=False, default=True)
    event_types = _event_types(required=False, default=list)


class EndpointUpdateSerializer(StrictSerializer):
    """The fields to change; those left out stay as they are."""

    url = serializers.CharField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    event_types = _event_types(required=False)


@extend_schema_field(
    {
        "type": "object",
        "description": "What the event tells, by type (docs/guide/webhooks.md): flat, money "
        "as text.",
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "integer"}],
            "nullable": True,
        },
    }
)
class EventDataField(serializers.JSONField):
    pass


class EventSerializer(OutputSerializer):
    """An event as every delivery of it POSTs it."""

    id = serializers.CharField(source="event_id", help_text="evt_…: the same at every delivery.")
    type = serializers.ChoiceField(list(EVENT_TYPES))
    created_at = InstantField()
    # A field named `data`: DRF takes it from the class, the stubs see Serializer.data.
    data = EventDataField()  # type: ignore[assignment]


class _HistoryInstantField(InstantField):
    def to_representation(self, value):
        return None if value is None else super().to_representation(parse_datetime(value))


class AttemptSerializer(OutputSerializer):
    at = _HistoryInstantField()
    response_status = serializers.IntegerField(
        allow_null=True, help_text="The receiver's answer; null when none came."
    )
    error = serializers.CharField(help_text="Empty when delivered.")
    next_attempt_at = _HistoryInstantField(
        allow_null=True, help_text="When it is tried again; null: delivered or failed."
    )


class DeliverySerializer(OutputSerializer):
    """An event sent to an endpoint, with every attempt."""

    id = serializers.IntegerField(help_text="Sent as the Tokentill-Delivery header.")
    endpoint = serializers.IntegerField(source="endpoint_id")
    event = EventSerializer()
    status = serializers.ChoiceField(WebhookDelivery.Status.values)
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    last_error = BlankAsNullCharField(allow_null=True)
    next_attempt_at = InstantField(allow_null=True)
    delivered_at = InstantField(allow_null=True)
    created_at = InstantField()
    replay_of = serializers.IntegerField(
        source="replay_of_id", allow_null=True, help_text="The delivery this one replays."
    )
    history = AttemptSerializer(many=True, help_text="Every attempt, oldest first.")


class DeliveriesQuerySerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
