"""Customers over the REST API: validate the shape, call a service, shape the answer."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from common.api import (
    DUPLICATE_EXTERNAL_ID,
    CursorPages,
    ErrorSerializer,
    FieldErrorsSerializer,
    api_validation_error,
)
from common.idempotency import idempotent
from contracts.models import Customer
from contracts.selectors import customer_get, customer_list
from contracts.services import customer_create, customer_update

from .serializers import (
    CustomerCreateSerializer,
    CustomerListQuerySerializer,
    CustomerSerializer,
    CustomerUpdateSerializer,
)


def customer_or_404(external_id: str) -> Customer:
    """The customer known as `external_id`, or a 404 that names it (every API that takes one)."""
    customer = customer_get(external_id=external_id)
    if customer is None:
        raise NotFound(f"No customer with external_id '{external_id}'.")
    return customer


class CustomerPagination(CursorPages):
    """A cursor on external_id, which never changes."""

    ordering = "external_id"
    next_example = "https://tokentill.example/api/v1/customers?cursor=cD1hY21l"


# --- OpenAPI examples ---------------------------------------------------------------------

_ACME = {
    "external_id": "acme",
    "name": "Acme Corp",
    "currency": "USD",
    "email": "billing@acme.example",
    "legal_name": "Acme Corporation Ltd",
    "billing_address": "42 Main Street\nSpringfield 12345\nUnited States",
    "tax_id": "US-98-7654321",
    "status": "active",
    "created_at": "2025-01-15T09:30:00.000000Z",
    "updated_at": "2025-01-15T09:30:00.000000Z",
}
_EXAMPLE_CUSTOMER = OpenApiExample("Customer", value=_ACME, response_only=True)
_EXAMPLE_CREATE = OpenApiExample(
    "New customer",
    value={
        "external_id": "acme",
        "name": "Acme Corp",
        "currency": "USD",
        "email": "billing@acme.example",
        "legal_name": "Acme Corporation Ltd",
        "billing_address": "42 Main Street\nSpringfield 12345\nUnited States",
        "tax_id": "US-98-7654321",
    },
    request_only=True,
)
_EXAMPLE_CREATE_REFUSED = OpenApiExample(
    "Refused",
    value={
        "external_id": [DUPLICATE_EXTERNAL_ID],
        "currency": ["'usd' is not an ISO 4217 currency code."],
    },
    response_only=True,
    status_codes=["400"],
)
_EXAMPLE_UPDATE = OpenApiExample(
    "Suspend and rename",
    value={"name": "Acme Corporation", "status": "suspended"},
    request_only=True,
)
_EXAMPLE_UPDATE_BILL_TO = OpenApiExample(
    "New billing address",
    value={"billing_address": "7 Harbour Road\nPortsmouth PO1 3AA\nUnited Kingdom"},
    request_only=True,
)
_EXAMPLE_BILL_TO_REFUSED = OpenApiExample(
    "Bad tax id",
    value={
        "tax_id": [
            "Use 1-50 letters, digits, spaces or - . / (starting and ending with a letter or "
            "digit)."
        ]
    },
    response_only=True,
    status_codes=["400"],
)
_EXAMPLE_UPDATE_REFUSED = OpenApiExample(
    "Fixed field",
    value={"currency": ["This field cannot be changed after the customer is created."]},
    response_only=True,
    status_codes=["400"],
)
_EXAMPLE_NOT_FOUND = OpenApiExample(
    "Unknown customer",
    value={"detail": "No customer with external_id 'nobody'."},
    response_only=True,
    status_codes=["404"],
)
# A list operation's example is one item: drf-spectacular wraps it in a page.
_EXAMPLE_PAGE = OpenApiExample("A page", value=_ACME, response_only=True)
_EXAMPLE_BAD_STATUS = OpenApiExample(
    "Unknown status",
    value={"status": ['"gone" is not a valid choice.']},
    response_only=True,
    status_codes=["400"],
)
_NOT_FOUND = OpenApiResponse(
    response=ErrorSerializer, description="No customer with this external_id."
)
_REFUSED = OpenApiResponse(
    response=FieldErrorsSerializer,
    description="Validation errors as `{field: [messages]}`; `non_field_errors` for the "
    "request as a whole.",
)


class CustomerListView(GenericAPIView):
    serializer_class = CustomerSerializer
    pagination_class = CustomerPagination
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="customers_list",
        summary="List customers",
        description="Customers ordered by external_id, a page at a time (follow `next`).",
        tags=["customers"],
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=Customer.Status.values,
                description="Only customers with this status.",
            )
        ],
        responses={200: CustomerSerializer(many=True), 400: _REFUSED},
        examples=[_EXAMPLE_PAGE, _EXAMPLE_BAD_STATUS],
    )
    def get(self, request):
        query = CustomerListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customers = customer_list(status=query.validated_data.get("status"))
        page = self.paginate_queryset(customers)
        return self.get_paginated_response(CustomerSerializer(page, many=True).data)

    @extend_schema(
        operation_id="customers_create",
        summary="Create a customer",
        description=(
            "`external_id` and `currency` are fixed once the customer exists. `email` is the "
            "billing email (invoices are emailed there when Stripe is off); `legal_name`, "
            "`billing_address` and `tax_id` are printed on invoices under Bill to."
        ),
        tags=["customers"],
        request=CustomerCreateSerializer,
        responses={201: CustomerSerializer, 400: _REFUSED},
        examples=[_EXAMPLE_CREATE, _EXAMPLE_CUSTOMER, _EXAMPLE_CREATE_REFUSED],
    )
    @idempotent
    def post(self, request):
        serializer = CustomerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            customer = customer_create(**data)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailView(GenericAPIView):
    serializer_class = CustomerSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="customers_retrieve",
        summary="Get a customer",
        tags=["customers"],
        responses={200: CustomerSerializer, 404: _NOT_FOUND},
        examples=[_EXAMPLE_CUSTOMER, _EXAMPLE_NOT_FOUND],
    )
    def get(self, request, external_id: str):
        return Response(CustomerSerializer(customer_or_404(external_id)).data)

    @extend_schema(
        operation_id="customers_partial_update",
        summary="Change a customer's name, billing email, bill-to details or status",
        description=(
            "The fields sent change; `legal_name`, `billing_address` and `tax_id` are what "
            "invoices print under Bill to (an empty legal name prints the name). "
            "`external_id` and `currency` cannot be changed: sending a different value is "
            "refused with 400. A refused request changes nothing."
        ),
        tags=["customers"],
        request=CustomerUpdateSerializer,
        responses={200: CustomerSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[
            _EXAMPLE_UPDATE,
            _EXAMPLE_UPDATE_BILL_TO,
            _EXAMPLE_CUSTOMER,
            _EXAMPLE_UPDATE_REFUSED,
            _EXAMPLE_BILL_TO_REFUSED,
            _EXAMPLE_NOT_FOUND,
        ],
    )
    def patch(self, request, external_id: str):
        customer = customer_or_404(external_id)
        serializer = CustomerUpdateSerializer(customer, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data:
            try:
                customer = customer_update(customer=customer, **serializer.validated_data)
            except DjangoValidationError as exc:
                raise api_validation_error(exc) from exc
        return Response(CustomerSerializer(customer).data)
