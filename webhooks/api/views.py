"""Billing webhooks over the API, for operator keys only (no view here is customer-scoped):
endpoints registered, changed and disabled; their deliveries listed and replayed. Thin:
reads go through webhooks.selectors, writes through webhooks.services."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer, api_validation_error
from common.idempotency import idempotent
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import deliveries_of, delivery_get, endpoint_get, endpoint_list
from webhooks.services import delivery_replay, endpoint_create, endpoint_disable, endpoint_update

from . import examples
from .serializers import (
    DeliveriesQuerySerializer,
    DeliverySerializer,
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
)

TAGS = ["webhooks"]
_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such endpoint or delivery.")
_REFUSED = OpenApiResponse(
    FieldErrorsSerializer, description="Refused values, as `{field: [messages]}`; nothing stored."
)


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoint_get(endpoint_id=endpoint_id)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def _delivery_or_404(delivery_id: int) -> WebhookDelivery:
    delivery = delivery_get(delivery_id=delivery_id)
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    return delivery


class EndpointListView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="Webhook endpoints",
        description="Every endpoint, oldest first, with its signing secret.",
        tags=TAGS,
        responses={200: EndpointSerializer(many=True)},
        examples=[examples.ENDPOINT],
    )
    def get(self, request):
        return Response(EndpointSerializer(endpoint_list(), many=True).data)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Register a webhook endpoint",
        description=(
            "Billing events (docs/guide/webhooks.md) are POSTed to `url` as JSON signed with "
            "the endpoint's `secret`, which tokentill makes and answers here. `event_types` "
            "names the events it takes; empty, all of them."
        ),
        tags=TAGS,
        request=EndpointCreateSerializer,
        responses={201: EndpointSerializer, 400: _REFUSED},
        examples=[examples.CREATE, examples.ENDPOINT, examples.REFUSED],
    )
    @idempotent
    def post(self, request):
        serializer = EndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = endpoint_create(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="A webhook endpoint",
        tags=TAGS,
        responses={200: EndpointSerializer, 404: _NOT_FOUND},
        examples=[examples.ENDPOINT, examples.NOT_FOUND],
    )
    def get(self, request, endpoint_id: int):
        return Response(EndpointSerializer(_endpoint_or_404(endpoint_id)).data)

    @extend_schema(
        operation_id="webhook_endpoints_partial_update",
        summary="Change a webhook endpoint",
        description="Its url, description, enabled flag or event types; the secret stays.",
        tags=TAGS,
        request=EndpointUpdateSerializer,
        responses={200: EndpointSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[examples.UPDATE, examples.ENDPOINT, examples.REFUSED, examples.NOT_FOUND],
    )
    def patch(self, request, endpoint_id: int):
        endpoint = _endpoint_or_404(endpoint_id)
        serializer = EndpointUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data:
            try:
                endpoint = endpoint_update(endpoint=endpoint, **serializer.validated_data)
            except DjangoValidationError as exc:
                raise api_validation_error(exc) from exc
        return Response(EndpointSerializer(endpoint).data)


class EndpointDisableView(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_disable",
        summary="Disable a webhook endpoint",
        description=(
            "It is sent nothing more: new events pass it by, and its waiting deliveries fail "
            "when they come due (replay them once it is enabled again with PATCH)."
        ),
        request=None,
        tags=TAGS,
        responses={200: EndpointSerializer, 404: _NOT_FOUND},
        examples=[examples.NOT_FOUND],
    )
    def post(self, request, endpoint_id: int):
        endpoint = endpoint_disable(endpoint=_endpoint_or_404(endpoint_id))
        return Response(EndpointSerializer(endpoint).data)


class EndpointDeliveriesView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_list",
        summary="An endpoint's deliveries",
        description=(
            "The latest deliveries, newest first, each with its event and every attempt "
            "(answer status, error, next attempt time)."
        ),
        parameters=[DeliveriesQuerySerializer],
        tags=TAGS,
        responses={200: DeliverySerializer(many=True), 400: _REFUSED, 404: _NOT_FOUND},
        examples=[examples.DELIVERIES, examples.NOT_FOUND],
    )
    def get(self, request, endpoint_id: int):
        endpoint = _endpoint_or_404(endpoint_id)
        query = DeliveriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        deliveries = deliveries_of(endpoint=endpoint, **query.validated_data)
        return Response(DeliverySerializer(deliveries, many=True).data)


class DeliveryReplayView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_replay",
        summary="Replay a delivery",
        description=(
            "Sends the delivery's event to its endpoint again, now: a new delivery of the "
            "same event, with the same event id, so a receiver that has it can tell; "
            "answered as created, sent once the request commits. Refused with 400 for a "
            "disabled endpoint."
        ),
        request=None,
        tags=TAGS,
        responses={201: DeliverySerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[examples.REPLAYED, examples.REPLAY_REFUSED, examples.NOT_FOUND],
    )
    @idempotent
    def post(self, request, delivery_id: int):
        try:
            replay = delivery_replay(delivery=_delivery_or_404(delivery_id))
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(DeliverySerializer(replay).data, status=status.HTTP_201_CREATED)
