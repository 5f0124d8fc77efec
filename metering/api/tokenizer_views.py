"""The tokenizer table over the API, for operator keys only: which tokenizer counts which
models' text. Thin: reads and writes go through metering.tokenizer_rules. A rule with an
uploaded tokenizer.json is sent as multipart/form-data with the file in `file`."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import (
    ErrorSerializer,
    FieldErrorsSerializer,
    StrictSerializer,
    api_validation_error,
)
from metering.models import TokenizerRule
from metering.tokenizer_rules import (
    tokenizer_rule_create,
    tokenizer_rule_delete,
    tokenizer_rule_get,
    tokenizer_rule_update,
    tokenizer_rules_list,
)
from metering.tokenizers import MAX_UPLOAD_BYTES, PACKAGED

TAGS = ["tokens"]
_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such tokenizer rule.")
_REFUSED = OpenApiResponse(
    FieldErrorsSerializer, description="Refused values, as `{field: [messages]}`; nothing stored."
)
_KINDS = (
    "`kind`: `tiktoken` (`name` an encoding such as o200k_base), `packaged` (`name` one of "
    f"{', '.join(PACKAGED)}) or `uploaded` (`name` yours to choose; the tokenizer.json in "
    "`file`, loaded with Hugging Face's tokenizers before anything is stored). `pattern`: a "
    "model name or glob (`*`, `?`); the most specific matching pattern wins (an exact name, "
    "then the glob with more literal characters, then the older rule)."
)


class TokenizerRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = TokenizerRule
        fields = [
            "id",
            "pattern",
            "kind",
            "name",
            "estimated",
            "chat_format",
            "note",
            "sha256",
            "updated_at",
        ]


class TokenizerRuleInSerializer(StrictSerializer):
    pattern = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(TokenizerRule.Kind.choices)
    name = serializers.CharField(max_length=100)
    estimated = serializers.BooleanField(default=False)
    chat_format = serializers.ChoiceField(TokenizerRule.ChatFormat.choices)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)
    file = serializers.FileField(
        required=False, help_text="An uploaded rule's tokenizer.json (multipart/form-data)."
    )


def _saved(serializer: TokenizerRuleInSerializer, rule: TokenizerRule | None) -> TokenizerRule:
    serializer.is_valid(raise_exception=True)
    fields = dict(serializer.validated_data)
    upload = fields.pop("file", None)
    if upload is not None and upload.size > MAX_UPLOAD_BYTES:
        limit = f"{MAX_UPLOAD_BYTES:,}"
        raise ValidationError({"file": [f"at most {limit} bytes are accepted"]})
    data = upload.read() if upload is not None else None
    try:
        if rule is None:
            return tokenizer_rule_create(file=data, **fields)
        return tokenizer_rule_update(rule=rule, file=data, **fields)
    except DjangoValidationError as exc:
        raise api_validation_error(exc) from exc


def _rule_or_404(rule_id: int) -> TokenizerRule:
    rule = tokenizer_rule_get(rule_id=rule_id)
    if rule is None:
        raise NotFound(f"No tokenizer rule {rule_id}.")
    return rule


class TokenizerRuleListView(APIView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="tokenizer_rules_list",
        summary="The tokenizer table",
        description="Every rule, by pattern. Models no rule matches use the fallback.",
        tags=TAGS,
        responses={200: TokenizerRuleSerializer(many=True)},
    )
    def get(self, request):
        return Response(TokenizerRuleSerializer(tokenizer_rules_list(), many=True).data)

    @extend_schema(
        operation_id="tokenizer_rules_create",
        summary="Add a tokenizer rule",
        description=_KINDS,
        tags=TAGS,
        request={
            "application/json": TokenizerRuleInSerializer,
            "multipart/form-data": TokenizerRuleInSerializer,
        },
        responses={201: TokenizerRuleSerializer, 400: _REFUSED},
    )
    def post(self, request):
        rule = _saved(TokenizerRuleInSerializer(data=request.data), None)
        return Response(TokenizerRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class TokenizerRuleDetailView(APIView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="tokenizer_rules_retrieve",
        summary="A tokenizer rule",
        tags=TAGS,
        responses={200: TokenizerRuleSerializer, 404: _NOT_FOUND},
    )
    def get(self, request, rule_id: int):
        return Response(TokenizerRuleSerializer(_rule_or_404(rule_id)).data)

    @extend_schema(
        operation_id="tokenizer_rules_partial_update",
        summary="Change a tokenizer rule",
        description=(
            "The fields given; an uploaded rule keeps its file unless a new one is sent. "
            "Every process loads the new file the next time it counts for the rule."
        ),
        tags=TAGS,
        request={
            "application/json": TokenizerRuleInSerializer,
            "multipart/form-data": TokenizerRuleInSerializer,
        },
        responses={200: TokenizerRuleSerializer, 400: _REFUSED, 404: _NOT_FOUND},
    )
    def patch(self, request, rule_id: int):
        rule = _rule_or_404(rule_id)
        rule = _saved(TokenizerRuleInSerializer(data=request.data, partial=True), rule)
        return Response(TokenizerRuleSerializer(rule).data)

    @extend_schema(
        operation_id="tokenizer_rules_destroy",
        summary="Remove a tokenizer rule",
        description="Its models are counted by the next most specific rule, or the fallback.",
        tags=TAGS,
        responses={204: None, 404: _NOT_FOUND},
    )
    def delete(self, request, rule_id: int):
        tokenizer_rule_delete(rule=_rule_or_404(rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
