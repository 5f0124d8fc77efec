"""Billing periods over the API for billing ops (operator keys only): a customer's periods
and where each stands, and closing what is due now. Thin: billing.invoicing.closing reads
and closes (recording in the audit trail what it closes when asked), the serializers shape
the answers.
"""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer, StrictSerializer
from common.idempotency import idempotent
from contracts.api.views import customer_or_404

from ..invoicing.closing import periods_close, periods_of
from . import examples
from .period_serializers import ClosingRunSerializer, PeriodsSerializer

TAGS = ["periods"]
_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No customer with this external_id.")


class CustomerPeriodsView(APIView):
    @extend_schema(
        operation_id="customer_periods",
        summary="A customer's billing periods and where they stand",
        description=(
            "Every period of the customer's contracts, from the one holding now back to the "
            "first: `open` until its end, `in_grace` for the grace after it (late events "
            "still land in it), `due` once the grace has passed, `closed` once invoiced, "
            "with its invoice and what it billed (rounded to the currency's minor unit). "
            "Operator keys only."
        ),
        tags=TAGS,
        responses={200: PeriodsSerializer, 404: _NOT_FOUND},
        examples=[examples.PERIODS, examples.PERIODS_NOT_FOUND],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        periods = {
            "customer": customer,
            "grace_hours": settings.TOKENTILL_PERIOD_GRACE_HOURS,
            "periods": periods_of(customer=customer, now=timezone.now()),
        }
        return Response(PeriodsSerializer(periods).data)


class ClosePeriodsInSerializer(StrictSerializer):
    customer = serializers.CharField(
        required=False, help_text="Only this customer's periods (external_id); default: all."
    )


class ClosePeriodsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="periods_close",
        summary="Close every billing period due now",
        description=(
            "What beat does every 5 minutes, now: rates what is queued, closes every period "
            "whose grace has passed (of every customer, or of `customer`) into its invoice, "
            "and bills the final corrections of customers whose contracts have all ended. "
            "Answers the invoices made; closing again makes nothing more. What it closes is "
            "recorded in the audit trail. Operator keys only."
        ),
        tags=TAGS,
        request=ClosePeriodsInSerializer,
        responses={
            200: ClosingRunSerializer,
            400: OpenApiResponse(FieldErrorsSerializer, description="An unknown field."),
            404: _NOT_FOUND,
        },
        examples=[
            examples.CLOSE_REQUEST,
            examples.CLOSED,
            examples.CLOSE_REFUSED,
            examples.PERIODS_NOT_FOUND,
        ],
    )
    @idempotent
    def post(self, request):
        serializer = ClosePeriodsInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        external_id = serializer.validated_data.get("customer")
        customer = customer_or_404(external_id) if external_id is not None else None
        run = periods_close(customer=customer)
        closing = {
            "customer_id": external_id,
            "invoices": run.invoices,
            "periods": run.periods,
            "corrections": run.corrections,
        }
        return Response(ClosingRunSerializer(closing).data)
