"""Metering endpoints: thin; they parse, call a service or selector, and shape the answer."""

from datetime import datetime

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer
from common.throttling import INGEST
from metering.intake import body_load
from metering.metrics import ingest_count
from metering.selectors import events_list
from metering.services import events_ingest
from metering.tokenizer_rules import counter_resolver
from metering.tokens import TokenizeError, count_messages, count_text

from . import serializers

EVENT_EXAMPLE = {
    "event_id": "req_8f2c",
    "customer_id": "acme",
    "timestamp": "2026-11-02T10:15:00Z",
    "model": "gpt-4o",
    "feature": "support-bot",
    "metrics": {"input_tokens": 1200, "output_tokens": 350, "cached_input_tokens": 1000},
    "properties": {"environment": "production", "inference": "batch"},
}
PROVIDER_EXAMPLE = {
    "event_id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "customer_id": "acme",
    "timestamp": "2026-11-02T10:15:00Z",
    "model": "claude-sonnet-4-5",
    "provider": "anthropic",
    "usage": {
        "input_tokens": 2095,
        "output_tokens": 503,
        "cache_read_input_tokens": 1800,
        "cache_creation_input_tokens": 0,
    },
}
TEXT_EXAMPLE = {
    "event_id": "req_9a01",
    "customer_id": "acme",
    "timestamp": "2026-11-02T10:16:00Z",
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Summarise this ticket."}],
    "text": {"output": "The customer cannot log in after the update."},
}


class PayloadTooLarge(ParseError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _ingest_items(request) -> tuple[list, bool]:
    """The body as a list of items (one event, or {"events": [...]}), and whether they may
    hold a number too large to read (`body_load`)."""
    try:
        body = request.body
    except RequestDataTooBig as error:
        raise PayloadTooLarge(
            f"the body is over {settings.TOKENTILL_INGEST_MAX_BODY_BYTES:,} bytes"
        ) from error
    try:
        data, out_of_range = body_load(body)
    except orjson.JSONDecodeError as error:
        raise ParseError(f"the body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ParseError('the body must be one event object or {"events": [...]}')
    if "events" not in data:
        return [data], out_of_range
    if set(data) != {"events"} or not isinstance(data["events"], list):
        raise ParseError('a batch is {"events": [...]} with no other fields')
    items = data["events"]
    if not items:
        raise ParseError("events is empty")
    if len(items) > settings.TOKENTILL_INGEST_MAX_BATCH:
        raise PayloadTooLarge(
            f"a batch holds at most {settings.TOKENTILL_INGEST_MAX_BATCH:,} events "
            f"({len(items):,} sent)"
        )
    return items, out_of_range


class EventPagination(CursorPagination):
    ordering = ("-timestamp", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class EventsView(ListAPIView):
    """Usage events: ingest (POST) and list what was stored (GET)."""

    throttle_scopes = {"POST": INGEST}

    parser_classes = []  # the body is parsed once, with orjson, in `_ingest_items`
    serializer_class = serializers.EventOutSerializer
    pagination_class = EventPagination

    def get_queryset(self):
        query = self.request.query_params
        return events_list(
            customer_external_id=query.get("customer_id"),
            event_id=query.get("event_id"),
            model=query.get("model"),
            feature=query.get("feature"),
            since=_query_time(query, "from"),
            until=_query_time(query, "to"),
        ).select_related("seal")

    @extend_schema(
        tags=["events"],
        summary="Ingest usage events",
        description=(
            'One event, or `{"events": [...]}` with up to '
            f"{settings.TOKENTILL_INGEST_MAX_BATCH} events. Each event carries exactly one of "
            "`metrics`, `usage` (with `provider`: openai, anthropic or google), `text` or "
            "`messages` (counted by the tokenizer table; the item says which `tokenizer`, and "
            "whether the count is `estimated`). Items are judged one by one: `accepted`, "
            "`duplicate` (same customer, event_id and content: nothing changes) or "
            "`rejected` with reasons (`conflict` when the event_id was used with other "
            "content, `out_of_range` for a number too large to read, such as 1e400). 202 "
            "when anything was accepted or a duplicate, 422 when all were refused, 400 for "
            "a body of the wrong shape, 413 past the size limits, 429 past the key's ingest "
            "budget (with `Retry-After`)."
        ),
        request={"application/json": serializers.EventBatchInSerializer},
        responses={
            202: serializers.IngestResultSerializer,
            422: serializers.IngestResultSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A body of the wrong shape."),
            413: OpenApiResponse(ErrorSerializer, description="Past the size limits."),
        },
        examples=[
            OpenApiExample("Batch", value={"events": [EVENT_EXAMPLE]}, request_only=True),
            OpenApiExample("Single event", value=EVENT_EXAMPLE, request_only=True),
            OpenApiExample("Provider usage", value=PROVIDER_EXAMPLE, request_only=True),
            OpenApiExample("Text, counted by tokentill", value=TEXT_EXAMPLE, request_only=True),
            OpenApiExample(
                "Answer",
                value={
                    "accepted": 1,
                    "duplicates": 1,
                    "rejected": 1,
                    "items": [
                        {"index": 0, "event_id": "req_8f2c", "status": "accepted"},
                        {"index": 1, "event_id": "req_8f2b", "status": "duplicate"},
                        {
                            "index": 2,
                            "event_id": "req_8f2d",
                            "status": "rejected",
                            "errors": [
                                {
                                    "field": "metrics.input_tokens",
                                    "code": "invalid",
                                    "message": "must not be negative",
                                }
                            ],
                        },
                    ],
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
    )
    def post(self, request):
        items, out_of_range = _ingest_items(request)
        result = events_ingest(items=items, out_of_range_possible=out_of_range)
        ingest_count(result=result)
        stored = result.count("accepted") + result.count("duplicate")
        code = status.HTTP_202_ACCEPTED if stored else status.HTTP_422_UNPROCESSABLE_ENTITY
        return Response(result.as_dict(), status=code)

    @extend_schema(
        tags=["events"],
        summary="List stored events",
        description="Newest first, with canonical metrics and how each event was counted.",
        parameters=[
            OpenApiParameter("customer_id", str),
            OpenApiParameter("event_id", str),
            OpenApiParameter("model", str),
            OpenApiParameter("feature", str),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="inclusive"),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="exclusive"),
            OpenApiParameter("limit", int, description="page size, at most 1000"),
        ],
        responses={
            200: serializers.EventOutSerializer(many=True),
            400: OpenApiResponse(FieldErrorsSerializer, description="A bad time filter."),
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _query_time(query, name: str) -> datetime | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError({name: [f"'{value}' is not an RFC 3339 timestamp with offset"]})
    return moment


class TokenCountView(APIView):
    throttle_scopes = {"POST": INGEST}

    @extend_schema(
        tags=["tokens"],
        summary="Count tokens before calling a model",
        description=(
            "Counts `text`, or chat `messages` with their family's formatting overhead, with "
            "the tokenizer the tokenizer table chooses for `model` (`GET "
            "/api/v1/tokenizer-rules`). The answer names it (`tokenizer`; `encoding` is the "
            "same name, kept for older clients) and says whether the count is `estimated`: "
            "a model no rule matches (Claude, Gemini…) is counted with the fallback, "
            f"{settings.TOKENTILL_DEFAULT_ENCODING}, and estimated."
        ),
        request=serializers.TokenCountInSerializer,
        responses={
            200: serializers.TokenCountOutSerializer,
            400: OpenApiResponse(FieldErrorsSerializer, description="A bad request."),
        },
        examples=[
            OpenApiExample(
                "Text", value={"model": "gpt-4o", "text": "Hello, world"}, request_only=True
            ),
            OpenApiExample(
                "Messages",
                value={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
                request_only=True,
            ),
            OpenApiExample(
                "Answer",
                value={
                    "model": "gpt-4o",
                    "tokenizer": "o200k_base",
                    "encoding": "o200k_base",
                    "estimated": False,
                    "tokens": 3,
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request):
        serializer = serializers.TokenCountInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = serializer.validated_data["model"]
        try:
            counter = counter_resolver()(model)
            if "text" in serializer.validated_data:
                count = count_text(counter=counter, text=serializer.validated_data["text"])
            else:
                count = count_messages(counter=counter, messages=request.data["messages"])
        except TokenizeError as error:
            raise ValidationError({error.path or "text": [error.message]}) from error
        answer = {"model": model, "tokenizer": count.tokenizer, "encoding": count.tokenizer}
        return Response(answer | {"estimated": count.estimated, "tokens": count.tokens})
