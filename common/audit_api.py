"""The audit trail over the API: operator keys read it, newest first, filtered by
customer, object or action (docs/guide/api.md, "Audit trail")."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from .api import (
    FieldErrorsSerializer,
    InstantField,
    NewestFirst,
    OutputSerializer,
    StrictSerializer,
)
from .models import AuditEntry


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "additionalProperties": {
            "nullable": True,
            "oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}],
            "description": "A field's value: money and figures as decimal text, instants "
            "in ISO 8601, structures as JSON text, relations as their keys.",
        },
    }
)
class FieldValuesField(serializers.JSONField):
    """An object's fields as the audit trail keeps them (`common.audit.snapshot`)."""


class AuditEntrySerializer(OutputSerializer):
    id = serializers.IntegerField()
    at = InstantField()
    actor = serializers.CharField(
        help_text="user:<username>, key:<name> (<prefix>), command:<name>."
    )
    action = serializers.CharField(help_text="What was done, e.g. `credit_grant.create`.")
    object_type = serializers.CharField(help_text="The object's kind, e.g. `wallets.creditgrant`.")
    object_id = serializers.CharField()
    object_repr = serializers.CharField(help_text="The object as the admin names it.")
    customer = serializers.CharField(help_text="The customer's external_id, when there is one.")
    before = FieldValuesField(help_text="The object before (null: it was created).")
    after = FieldValuesField(help_text="The object after (null: it was deleted).")
    reason = serializers.CharField(help_text="Why, where a reason is asked.")


class AuditQuerySerializer(StrictSerializer):
    customer = serializers.CharField(required=False, help_text="A customer's external_id.")
    object_type = serializers.CharField(required=False)
    object_id = serializers.CharField(required=False)
    action = serializers.CharField(required=False)
    actor = serializers.CharField(required=False)
    since = InstantField(required=False, help_text="Only changes at or after this instant.")
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=1000)


_EXAMPLE = OpenApiExample(
    "A grant made over the API",
    response_only=True,
    value={
        "id": 7,
        "at": "2026-12-01T09:00:00Z",
        "actor": "key:ops-bot (ab12cd34)",
        "action": "credit_grant.create",
        "object_type": "wallets.creditgrant",
        "object_id": "12",
        "object_repr": "acme USD: 100 (purchased)",
        "customer": "acme",
        "before": None,
        "after": {"id": 12, "source": "purchased", "amount": "100", "priority": 0},
        "reason": "PO 1234",
    },
)


class AuditTrailView(GenericAPIView):
    serializer_class = AuditEntrySerializer
    pagination_class = NewestFirst

    @extend_schema(
        operation_id="audit_list",
        summary="The audit trail",
        description=(
            "Every change made by ops, in the admin, over the API or with a command: who, "
            "when, what (the object before and after) and why; newest first, a page at a "
            "time (follow `next`). Operator keys only."
        ),
        tags=["audit"],
        parameters=[
            OpenApiParameter(name, str, description=f"Only entries with this {name}.")
            for name in ("customer", "object_type", "object_id", "action", "actor")
        ]
        + [OpenApiParameter("since", str, description="Only changes at or after this instant.")],
        responses={200: AuditEntrySerializer(many=True), 400: FieldErrorsSerializer},
        examples=[_EXAMPLE],
    )
    def get(self, request):
        query = AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        filters.pop("cursor", None)
        filters.pop("page_size", None)
        since = filters.pop("since", None)
        entries = AuditEntry.objects.filter(**filters)
        if since is not None:
            entries = entries.filter(at__gte=since)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(AuditEntrySerializer(page, many=True).data)
