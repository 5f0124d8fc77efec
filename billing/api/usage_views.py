"""Rated usage over the API: thin; it parses, calls a selector and shapes the answer."""

from datetime import UTC, datetime

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer, FileDownloadView
from common.idempotency import idempotent
from contracts.api.views import customer_or_404

from ..exports import usage_csv
from ..periods import period_of
from ..rating.rerating import period_rerate
from ..selectors import usage_for_period
from . import examples
from .usage_serializers import RerateInSerializer, RerateSerializer, UsageSerializer


def _instant(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        at = None
    if at is None or at.utcoffset() is None:
        raise ValidationError(
            {field: ["Give an ISO 8601 instant with a timezone, e.g. 2026-10-15T00:00Z."]}
        )
    if at >= LATEST_INSTANT:  # its period must end within the calendar
        raise ValidationError({field: ["Give an instant before 9000-01-01T00:00Z."]})
    return at


# The calendar ends with 9999, and the period (up to a year) holding an instant must too.
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)


AT_PARAMETER = OpenApiParameter(
    "at",
    OpenApiTypes.DATETIME,
    description="An instant inside the period wanted, e.g. 2026-10-15T00:00:00Z (default: now).",
)
_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No customer with this external_id.")
_BAD_INSTANT = OpenApiResponse(
    FieldErrorsSerializer, description="An instant without a timezone, or past the calendar."
)


class UsageView(APIView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        summary="A customer's rated usage for a billing period",
        description=(
            "The period holding `at` (default: now) under the customer's contract, or the "
            "calendar month outside one. Money is exact text with 12 decimal places; it is "
            "rounded to the currency's minor unit only on the invoice. `total` = usage - "
            "discount - allowance used + fixed fees + minimum true-up. Unpriced and failed "
            "usage is listed, never counted as free. `pending_events` are the period's "
            "events stored and not yet rated (rating runs within about a second of "
            "ingestion), or waiting to be rated again after a terms change or a re-rate: "
            "until rated, they are in no other figure."
        ),
        parameters=[AT_PARAMETER],
        responses={200: UsageSerializer, 400: _BAD_INSTANT, 404: _NOT_FOUND},
        examples=[examples.USAGE],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        at = _instant(request.query_params.get("at"), "at")
        return Response(UsageSerializer(usage_for_period(customer=customer, at=at)).data)


BOTH_OR_NEITHER = "Give start and end together, or neither for the current period."


class UsageCsvView(FileDownloadView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        operation_id="usage_csv",
        summary="A customer's events as CSV, with what each was rated at",
        description=(
            "One line per event timestamped in [`start`, `end`), oldest first (default: the "
            "current billing period): tokens, `status` (rated, unpriced, failed, or pending "
            "while not yet rated), the price, rate card and version, and the `amount` "
            "(per-event prices) or `quantity` (tiered prices) with 12 decimal places. "
            "Streamed, whatever the number of events."
        ),
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="first instant"),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="end, exclusive"),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            400: OpenApiResponse(
                FieldErrorsSerializer,
                description="A bad instant, only one of start and end, or end not after start.",
            ),
            404: _NOT_FOUND,
        },
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        start = _instant(request.query_params.get("start"), "start")
        end = _instant(request.query_params.get("end"), "end")
        if start is None and end is None:
            start, end = period_of(customer=customer, at=timezone.now())
        elif start is None or end is None:
            raise ValidationError({"start" if start is None else "end": [BOTH_OR_NEITHER]})
        elif end <= start:
            raise ValidationError({"end": ["Give an instant after start."]})
        span = "-".join(f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}" for at in (start, end))
        name = f"usage-{customer.external_id}-{span}.csv"
        return StreamingHttpResponse(
            usage_csv(customer=customer, start=start, end=end),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


class RerateView(APIView):
    @extend_schema(
        summary="Preview re-rating a period from the event log",
        description=(
            "Rates the period's events again with today's prices and terms and shows, per "
            "line, the events, quantity and money now and after; nothing is stored."
        ),
        parameters=[AT_PARAMETER],
        responses={200: RerateSerializer, 400: _BAD_INSTANT, 404: _NOT_FOUND},
        examples=[examples.RERATE_PREVIEW],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        at = _instant(request.query_params.get("at"), "at") or timezone.now()
        return Response(RerateSerializer(period_rerate(customer=customer, at=at)).data)

    @extend_schema(
        summary="Re-rate a period from the event log",
        description=(
            'Body {"at": instant in the period}. Answers the same diff as the preview and '
            "queues the period's events for rating again; the usage endpoint shows the new "
            "figures once `pending_events` is back to 0."
        ),
        request=RerateInSerializer,
        responses={
            202: RerateSerializer,
            400: OpenApiResponse(FieldErrorsSerializer, description="No `at`, or a bad one."),
            404: _NOT_FOUND,
        },
        examples=[examples.RERATE_APPLIED],
    )
    @idempotent
    def post(self, request, external_id: str):
        customer = customer_or_404(external_id)
        given = request.data.get("at") if isinstance(request.data, dict) else None
        at = _instant(given, "at")
        if at is None:
            raise ValidationError({"at": ["Required: an instant inside the period to re-rate."]})
        diff = period_rerate(customer=customer, at=at, apply=True)
        return Response(RerateSerializer(diff).data, status=202)
