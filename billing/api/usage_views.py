"""Rated usage over the API: thin; it parses, calls a selector and shapes the answer."""

from datetime import UTC, datetime

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import FileDownloadView
from contracts.api.views import customer_or_404
from pricing.money import exact_text

from ..exports import usage_csv
from ..periods import period_of
from ..rating.rerating import RerateDiff, period_rerate
from ..selectors import PeriodUsage, UsageGroup, usage_for_period


def _group(group: UsageGroup) -> dict:
    return {
        "name": group.name,
        **group.details,
        "events": group.events,
        "quantity": exact_text(group.quantity),
        "amount": exact_text(group.amount),
        "tokens": group.tokens,
    }


def usage_as_dict(usage: PeriodUsage) -> dict:
    charges = usage.charges
    return {
        "customer_id": usage.customer.external_id,
        "currency": usage.customer.currency,
        "period": {"start": usage.period_start, "end": usage.period_end},
        "usage": exact_text(usage.usage),
        "discount": exact_text(sum(charges.discounts)),
        "allowance": {
            "included": exact_text(sum(charges.allowances)),
            "used": exact_text(charges.allowance_used),
            "remaining": exact_text(sum(charges.allowances) - charges.allowance_used),
        },
        "fixed_fees": exact_text(sum(charges.fixed_fees)),
        "minimum_true_up": exact_text(charges.minimum_true_up),
        "total": exact_text(charges.total),
        "terms": [
            {
                "start": segment.start,
                "end": segment.end,
                "terms": terms.number if terms else None,
                "rate_card": terms.rate_card.name if terms else None,
            }
            for segment, terms in usage.segments
        ],
        "by_price": [_group(group) for group in usage.by_price],
        "by_model": [_group(group) for group in usage.by_model],
        "by_feature": [_group(group) for group in usage.by_feature],
        "unpriced": [_group(group) for group in usage.unpriced],
        "failed": [_group(group) for group in usage.failed],
        "pending_events": usage.pending_events,
    }


def rerate_as_dict(diff: RerateDiff) -> dict:
    return {
        "period": {"start": diff.period_start, "end": diff.period_end},
        "events": diff.events,
        "total": {"now": exact_text(diff.old_total), "after": exact_text(diff.new_total)},
        "applied": diff.applied,
        "lines": [
            {
                "line": line.label,
                "changed": line.changed,
                "now": {
                    "events": line.old_events,
                    "quantity": exact_text(line.old_quantity),
                    "amount": exact_text(line.old_amount),
                    "source": line.old_source,
                },
                "after": {
                    "events": line.new_events,
                    "quantity": exact_text(line.new_quantity),
                    "amount": exact_text(line.new_amount),
                    "source": line.new_source,
                },
            }
            for line in diff.lines
        ],
    }


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


class UsageView(APIView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        summary="A customer's rated usage for a billing period",
        description=(
            "The period holding `at` (default: now) under the customer's contract, or the "
            "calendar month outside one. Money is exact text with 12 decimal places; it is "
            "rounded to the currency's minor unit only on the invoice. `total` = usage - "
            "discount - allowance used + fixed fees + minimum true-up. Unpriced and failed "
            "usage is listed, never counted as free. `pending_events` are stored and not "
            "yet rated (rating runs within about a second of ingestion)."
        ),
        parameters=[AT_PARAMETER],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        at = _instant(request.query_params.get("at"), "at")
        return Response(usage_as_dict(usage_for_period(customer=customer, at=at)))


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
        responses={(200, "text/csv"): OpenApiTypes.STR, 400: OpenApiTypes.OBJECT},
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
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        at = _instant(request.query_params.get("at"), "at") or timezone.now()
        return Response(rerate_as_dict(period_rerate(customer=customer, at=at)))

    @extend_schema(
        summary="Re-rate a period from the event log",
        description=(
            'Body {"at": instant in the period}. Answers the same diff as the preview and '
            "queues the period's events for rating again; the usage endpoint shows the new "
            "figures once `pending_events` is back to 0."
        ),
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT},
    )
    def post(self, request, external_id: str):
        customer = customer_or_404(external_id)
        if not isinstance(request.data, dict) or "at" not in request.data:
            raise ValidationError({"at": ["Required: an instant inside the period to re-rate."]})
        at = _instant(request.data["at"], "at")
        diff = period_rerate(customer=customer, at=at, apply=True)
        return Response(rerate_as_dict(diff), status=202)
