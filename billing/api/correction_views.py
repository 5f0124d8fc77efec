"""Price corrections over the API: thin; it parses, calls billing.corrections and shapes the
answer. Operator keys only: a customer's key is refused (no `customer_scoped`)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer, api_validation_error, key_author
from common.idempotency import idempotent
from contracts.models import RateCard
from contracts.selectors import rate_card_get

from ..corrections import price_correction_apply, price_correction_preview
from . import examples
from .correction_serializers import (
    PriceCorrectionAppliedSerializer,
    PriceCorrectionInSerializer,
    PriceCorrectionPreviewSerializer,
)


def _rate_card_or_404(name: str) -> RateCard:
    rate_card = rate_card_get(name=name)
    if rate_card is None:
        raise NotFound(f"No rate card named '{name}'.")
    return rate_card


class PriceCorrectionsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="price_corrections_create",
        summary="Correct a price from an instant in the past",
        description=(
            "Corrects one price of the rate card from `effective_from` (in the past) on: a "
            "new version for each version in force from then on, a copy of it with the "
            "price corrected. With `apply: false` (the default) it answers what the "
            "correction would change, per customer whose terms use the card at or after "
            "the instant and per period holding their usage since: events, quantity and "
            "money now and after, and for a period already invoiced what the next closing "
            "will credit (a credit note on its invoice) or bill (lines on the next "
            "invoice). Nothing is stored. With `apply: true` it makes the correction, "
            "recorded with the API key's name and the `reason`, and queues those periods' "
            "events to be rated again (201); the next closing corrects the invoiced ones, "
            "once. Operator keys only."
        ),
        tags=["rate cards"],
        request=PriceCorrectionInSerializer,
        responses={
            200: PriceCorrectionPreviewSerializer,
            201: PriceCorrectionAppliedSerializer,
            400: OpenApiResponse(
                FieldErrorsSerializer,
                description="Refused, with nothing stored: no reason, an instant in the "
                "future or before the card's first version, an unknown price or rate, a "
                "correction that changes nothing.",
            ),
            403: OpenApiResponse(ErrorSerializer, description="A customer's API key."),
            404: OpenApiResponse(ErrorSerializer, description="No rate card with this name."),
        },
        examples=[
            examples.CORRECTION_REQUEST,
            examples.CORRECTION_PREVIEW,
            examples.CORRECTION_APPLIED,
            OpenApiExample(
                "Refused",
                value={"reason": ["This field may not be blank."]},
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    @idempotent
    def post(self, request, name: str):
        rate_card = _rate_card_or_404(name)
        serializer = PriceCorrectionInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        apply = data.pop("apply")
        service = price_correction_apply if apply else price_correction_preview
        try:
            result = service(rate_card=rate_card, created_by=key_author(request), **data)
        except DjangoValidationError as error:
            raise api_validation_error(error) from None
        if apply:
            answer = PriceCorrectionAppliedSerializer(result).data
            return Response(answer, status=status.HTTP_201_CREATED)
        return Response(PriceCorrectionPreviewSerializer(result).data)
