"""Invoices over the API: a customer's invoices and their lines, the events of a usage line,
the current period's preview, and credit notes. Thin: billing.selectors reads,
billing.invoicing.credit_notes writes, invoice_serializers shapes the answers (money is
text, never a float: see there).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import (
    ErrorSerializer,
    FieldErrorsSerializer,
    FileDownloadView,
    StrictSerializer,
    api_validation_error,
    key_author,
)
from common.idempotency import idempotent
from contracts.api.views import customer_or_404
from contracts.models import Customer
from pricing.money import RATED_PLACES

from ..invoicing.credit_notes import credit_note_issue, invoice_void
from ..invoicing.pdf.credit_note import credit_note_pdf
from ..invoicing.pdf.invoice import invoice_pdf
from ..invoicing.preview import invoice_preview
from ..models import CreditNote, Invoice
from ..selectors import LINES_WITH_EVENTS, invoice_get, invoice_list, line_events
from . import examples
from .invoice_serializers import (
    CreditNoteSerializer,
    InvoiceDetailSerializer,
    InvoicePreviewSerializer,
    InvoiceSerializer,
    LineEventSerializer,
)

TAGS = ["invoices"]


def _invoice_or_404(customer: Customer, number: str) -> Invoice:
    invoice = invoice_get(customer=customer, number=number)
    if invoice is None:
        raise NotFound(f"No invoice {number} for customer '{customer.external_id}'.")
    return invoice


class InvoicePagination(CursorPagination):
    """Newest period first: a customer has one invoice per period start."""

    ordering = ("-period_start", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class EventPagination(CursorPagination):
    """A line's events oldest first, by timestamp (ties in a stable order)."""

    ordering = ("timestamp", "event_id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


_NOT_FOUND = OpenApiResponse(
    response=ErrorSerializer, description="No such customer, or no such invoice of theirs."
)


class InvoiceListView(GenericAPIView):
    customer_scoped = True  # a customer's own key may read it
    pagination_class = InvoicePagination

    @extend_schema(
        operation_id="invoices_list",
        summary="A customer's invoices",
        description="Newest first, a page at a time (follow `next`); each without its lines.",
        tags=TAGS,
        responses={200: InvoiceSerializer(many=True), 404: _NOT_FOUND},
        examples=[examples.INVOICE_IN_LIST],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        page = self.paginate_queryset(invoice_list(customer=customer))
        return self.get_paginated_response(InvoiceSerializer(page, many=True).data)


class InvoiceDetailView(APIView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        operation_id="invoices_retrieve",
        summary="An invoice with its lines and credit notes",
        description=(
            "Each line is rounded once, half up, to the currency's minor unit (`amount`) "
            "from its exact money (`exact_amount`); the total is the sum of the lines. A "
            "usage line names its price, rate card version and terms, the events it covers "
            "and their time span; list them at `lines/{position}/events`."
        ),
        tags=TAGS,
        responses={200: InvoiceDetailSerializer, 404: _NOT_FOUND},
        examples=[examples.INVOICE_DETAIL],
    )
    def get(self, request, external_id: str, number: str):
        invoice = _invoice_or_404(customer_or_404(external_id), number)
        return Response(InvoiceDetailSerializer(invoice).data)


class LineEventsView(GenericAPIView):
    customer_scoped = True  # a customer's own key may read it
    pagination_class = EventPagination

    @extend_schema(
        operation_id="invoice_line_events",
        summary="The events a usage line covers",
        description=(
            "Oldest first, a page at a time (`limit` up to 1000; follow `next`), each with "
            "what it was rated at: `amount` for per-event prices, `quantity` for tiered ones."
        ),
        tags=TAGS,
        parameters=[OpenApiParameter("limit", int, description="page size, at most 1000")],
        responses={200: LineEventSerializer(many=True), 404: _NOT_FOUND},
        examples=[examples.LINE_EVENT],
    )
    def get(self, request, external_id: str, number: str, position: int):
        invoice = _invoice_or_404(customer_or_404(external_id), number)
        line = next((line for line in invoice.lines.all() if line.position == position), None)
        if line is None or line.kind not in LINES_WITH_EVENTS:
            raise NotFound(f"Invoice {number} has no usage line {position}.")
        events = line_events(line=line).annotate(timestamp=F("event__timestamp"))
        page = self.paginate_queryset(events)
        return self.get_paginated_response(LineEventSerializer(page, many=True).data)


class InvoicePdfView(FileDownloadView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        operation_id="invoice_pdf",
        summary="An invoice as a PDF file",
        description=(
            "The invoice's lines, total and credit notes, each amount as billed (rounded to "
            "the currency's minor unit, as in the invoice's JSON), as an attachment named "
            "after its number."
        ),
        tags=TAGS,
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            404: _NOT_FOUND,
        },
    )
    def get(self, request, external_id: str, number: str):
        invoice = _invoice_or_404(customer_or_404(external_id), number)
        return HttpResponse(
            invoice_pdf(invoice=invoice),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
        )


class CreditNotePdfView(FileDownloadView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        operation_id="credit_note_pdf",
        summary="A credit note as a PDF file",
        description=(
            "The credit note issued against the invoice: the seller, whom it is made out to, "
            "its number and date, the invoice it credits, the reason, the amount as credited "
            "and where the credit went, as an attachment named after its number."
        ),
        tags=TAGS,
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            404: _NOT_FOUND,
        },
    )
    def get(self, request, external_id: str, number: str, note_number: str):
        invoice = _invoice_or_404(customer_or_404(external_id), number)
        note = next(
            (note for note in invoice.credit_notes.all() if note.number == note_number), None
        )
        if note is None:
            raise NotFound(f"Invoice {number} has no credit note {note_number}.")
        return HttpResponse(
            credit_note_pdf(credit_note=note),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{note.number}.pdf"'},
        )


class InvoicePreviewView(APIView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        operation_id="invoice_preview",
        summary="The invoice the current period would produce now",
        description=(
            "The period holding now, drafted from its rated usage as closing would (late "
            "usage of closed periods and prepaid credits included). Shaped as an invoice, "
            'with `number: null` and `status: "preview"`; nothing is stored.'
        ),
        tags=TAGS,
        responses={200: InvoicePreviewSerializer, 404: _NOT_FOUND},
        examples=[examples.INVOICE_PREVIEW],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        preview = invoice_preview(customer=customer, at=timezone.now())
        return Response(InvoicePreviewSerializer(preview).data)


class CreditNoteInSerializer(StrictSerializer):
    reason = serializers.ChoiceField(
        [CreditNote.Reason.GOODWILL.value, CreditNote.Reason.VOID.value]
    )
    amount = serializers.DecimalField(
        max_digits=32,
        decimal_places=RATED_PLACES,
        required=False,
        help_text='Goodwill only: money in the currency\'s minor unit, e.g. "10.00". A void '
        "credits what is left of the invoice.",
    )
    memo = serializers.CharField(max_length=300)
    destination = serializers.ChoiceField(CreditNote.Destination.values)

    def validate(self, attrs):
        if attrs["reason"] == CreditNote.Reason.GOODWILL and "amount" not in attrs:
            raise serializers.ValidationError({"amount": ["Required for goodwill."]})
        if attrs["reason"] == CreditNote.Reason.VOID and "amount" in attrs:
            raise serializers.ValidationError(
                {"amount": ["A void credits what is left of the invoice: leave amount out."]}
            )
        return attrs


class CreditNotesView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="credit_notes_create",
        summary="Credit an invoice: goodwill, or void it",
        description=(
            "`goodwill` credits `amount`; `void` credits what is left of the total (the total "
            "less earlier credit notes) and marks the invoice void. The invoice itself is "
            "never edited. Credit notes never take an invoice past its total, and a draft or "
            "void invoice takes none: both are refused with 400 and nothing is stored. "
            "`destination`: `wallet` grants the credit back as prepaid credits at once, "
            "`stripe` leaves it for the Stripe sync to push against the invoice, `none` "
            "records it only."
        ),
        tags=TAGS,
        request=CreditNoteInSerializer,
        responses={
            201: CreditNoteSerializer,
            400: OpenApiResponse(
                FieldErrorsSerializer,
                description="A bad request, or a credit the invoice cannot take; nothing stored.",
            ),
            404: _NOT_FOUND,
        },
        examples=[examples.CREDIT_NOTE_ISSUED],
    )
    @idempotent
    def post(self, request, external_id: str, number: str):
        invoice = _invoice_or_404(customer_or_404(external_id), number)
        serializer = CreditNoteInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        by = key_author(request)
        try:
            if data.pop("reason") == CreditNote.Reason.VOID:
                note = invoice_void(invoice=invoice, created_by=by, **data)
            else:
                note = credit_note_issue(invoice=invoice, created_by=by, **data)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(CreditNoteSerializer(note).data, status=status.HTTP_201_CREATED)
