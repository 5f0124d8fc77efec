"""A customer's contracts over the REST API: validate the shape, call a service, answer
with the contract and the full history of its terms."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from common.api import (
    CursorPages,
    ErrorSerializer,
    FieldErrorsSerializer,
    api_validation_error,
    key_author,
)
from common.idempotency import idempotent
from contracts.models import Contract, Customer
from contracts.selectors import contract_get, contract_list
from contracts.services import (
    contract_amend,
    contract_create,
    contract_end,
    contract_payment_terms_set,
)

from .contract_serializers import (
    AmendmentCreateSerializer,
    ContractCreateSerializer,
    ContractEndSerializer,
    ContractSerializer,
    ContractUpdateSerializer,
)
from .views import customer_or_404

TAGS = ["contracts"]


def _contract_or_404(customer: Customer, contract_id: int) -> Contract:
    contract = contract_get(customer=customer, contract_id=contract_id)
    if contract is None:
        raise NotFound(f"No contract {contract_id} for customer '{customer.external_id}'.")
    return contract


def _contract_answer(contract: Contract, *, status_code=status.HTTP_200_OK) -> Response:
    fresh = contract_get(customer=contract.customer, contract_id=contract.pk)
    return Response(ContractSerializer(fresh).data, status=status_code)


class ContractPagination(CursorPages):
    """A customer's contracts by start, oldest first: starts never change and never repeat
    (a customer's contracts do not overlap)."""

    ordering = "starts_at"
    page_size = 50
    max_page_size = 200
    next_example = "https://tokentill.example/api/v1/customers/acme/contracts?cursor=cD0yMDI2"


# --- OpenAPI examples ---------------------------------------------------------------------

_TERMS_1 = {
    "number": 1,
    "effective_from": "2026-01-01T00:00:00Z",
    "rate_card": "Standard",
    "fixed_fee": "500.0000",
    "included_allowance": "200.0000",
    "overage_policy": "arrears",
    "credits_cover_arrears": True,
    "minimum_commitment": "0.0000",
    "discount_percent": "0.0000",
    "price_overrides": {},
    "note": "Signed on 18 December",
    "created_by": "API key crm (tt_k3x9a0qz_…)",
    "created_at": "2025-12-18T10:00:00.000000Z",
}
_CONTRACT = {
    "id": 7,
    "customer": "acme",
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": None,
    "billing_cycle": "monthly",
    "anchor_day": 1,
    "anchor_month": 1,
    "payment_terms_days": 14,
    "created_at": "2025-12-18T10:00:00.000000Z",
    "terms": [
        _TERMS_1,
        {
            **_TERMS_1,
            "number": 2,
            "effective_from": "2026-03-15T00:00:00Z",
            "discount_percent": "10.0000",
            "price_overrides": {"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}},
            "note": "Volume discount from mid-March",
            "created_at": "2026-03-10T16:20:00.000000Z",
        },
    ],
}
_EXAMPLE_CONTRACT = OpenApiExample("Contract", value=_CONTRACT, response_only=True)
_EXAMPLE_CREATE = OpenApiExample(
    "New contract",
    value={
        "starts_at": "2026-01-01T00:00:00Z",
        "billing_cycle": "monthly",
        "anchor_day": 1,
        "payment_terms_days": 14,
        "rate_card": "Standard",
        "fixed_fee": "500.00",
        "included_allowance": "200.00",
        "note": "Signed on 18 December",
    },
    request_only=True,
)
_EXAMPLE_AMEND = OpenApiExample(
    "Discount from mid-March",
    value={
        "effective_from": "2026-03-15T00:00:00Z",
        "discount_percent": "10",
        "price_overrides": {"gpt-4o": {"rate_in": {"amount": "2.00", "per": 1000000}}},
        "note": "Volume discount from mid-March",
    },
    request_only=True,
)
_EXAMPLE_PAYMENT_TERMS = OpenApiExample(
    "Due in 14 days", value={"payment_terms_days": 14}, request_only=True
)
_EXAMPLE_PAYMENT_TERMS_REFUSED = OpenApiExample(
    "Too long",
    value={"payment_terms_days": ["Ensure this value is less than or equal to 365."]},
    response_only=True,
    status_codes=["400"],
)
_EXAMPLE_END = OpenApiExample(
    "End at a period's end", value={"ends_at": "2026-07-01T00:00:00Z"}, request_only=True
)
_EXAMPLE_REFUSED = OpenApiExample(
    "Refused",
    value={
        "fixed_fee": ['Write the amount as a string, e.g. "500.00": money is never a JSON number.'],
        "starts_at": [
            "Give the UTC offset too, e.g. 2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00."
        ],
    },
    response_only=True,
    status_codes=["400"],
)
_EXAMPLE_AMEND_REFUSED = OpenApiExample(
    "Refused",
    value={"effective_from": ["Must be after the latest terms start (2026-03-15 00:00 UTC)."]},
    response_only=True,
    status_codes=["400"],
)
_EXAMPLE_NOT_FOUND = OpenApiExample(
    "Unknown contract",
    value={"detail": "No contract 8 for customer 'acme'."},
    response_only=True,
    status_codes=["404"],
)
_NOT_FOUND = OpenApiResponse(
    response=ErrorSerializer,
    description="No customer with this external_id, or no such contract of this customer.",
)
_REFUSED = OpenApiResponse(
    response=FieldErrorsSerializer,
    description="Validation errors as `{field: [messages]}`; `non_field_errors` for the "
    "request as a whole (e.g. a contract overlapping another of the customer).",
)


class ContractListView(GenericAPIView):
    serializer_class = ContractSerializer
    pagination_class = ContractPagination
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="contracts_list",
        summary="List a customer's contracts",
        description="Oldest first, each with the full history of its terms, a page at a time.",
        tags=TAGS,
        responses={200: ContractSerializer(many=True), 404: _NOT_FOUND},
        examples=[OpenApiExample("A page", value=_CONTRACT, response_only=True)],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        page = self.paginate_queryset(contract_list(customer=customer))
        return self.get_paginated_response(ContractSerializer(page, many=True).data)

    @extend_schema(
        operation_id="contracts_create",
        summary="Create a contract",
        description=(
            "A contract and its first terms. A customer has one contract at any instant. "
            "The billing cycle and anchor are fixed for the contract's life: to change "
            "them, end it and create a new one from that instant."
        ),
        tags=TAGS,
        request=ContractCreateSerializer,
        responses={201: ContractSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[_EXAMPLE_CREATE, _EXAMPLE_CONTRACT, _EXAMPLE_REFUSED],
    )
    @idempotent
    def post(self, request, external_id: str):
        customer = customer_or_404(external_id)
        serializer = ContractCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            contract = contract_create(
                customer=customer, created_by=key_author(request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return _contract_answer(contract, status_code=status.HTTP_201_CREATED)


class ContractDetailView(GenericAPIView):
    serializer_class = ContractSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="contracts_retrieve",
        summary="Get a contract",
        tags=TAGS,
        responses={200: ContractSerializer, 404: _NOT_FOUND},
        examples=[_EXAMPLE_CONTRACT, _EXAMPLE_NOT_FOUND],
    )
    def get(self, request, external_id: str, contract_id: int):
        contract = _contract_or_404(customer_or_404(external_id), contract_id)
        return Response(ContractSerializer(contract).data)

    @extend_schema(
        operation_id="contracts_partial_update",
        summary="Change a contract's payment terms",
        description=(
            "`payment_terms_days`: days from an invoice's issue to its due date for the "
            "invoices issued from now on (those already issued keep theirs); null: the "
            "default. Prices, fees and the cycle change by amendment, the end by `end`. A "
            "refused request changes nothing."
        ),
        tags=TAGS,
        request=ContractUpdateSerializer,
        responses={200: ContractSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[_EXAMPLE_PAYMENT_TERMS, _EXAMPLE_CONTRACT, _EXAMPLE_PAYMENT_TERMS_REFUSED],
    )
    def patch(self, request, external_id: str, contract_id: int):
        contract = _contract_or_404(customer_or_404(external_id), contract_id)
        serializer = ContractUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            contract = contract_payment_terms_set(contract=contract, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return _contract_answer(contract)


class ContractAmendmentsView(GenericAPIView):
    serializer_class = ContractSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="contracts_amend",
        summary="Amend a contract",
        description=(
            "New terms from `effective_from` on: the latest terms with the fields sent "
            "changed. Usage before the instant keeps the old terms, usage at or after it "
            "gets the new ones, also mid-period (fees and allowances are prorated). The "
            "instant comes after the latest terms start and before the contract ends. "
            "Answers with the contract, the new terms last."
        ),
        tags=TAGS,
        request=AmendmentCreateSerializer,
        responses={201: ContractSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[_EXAMPLE_AMEND, _EXAMPLE_CONTRACT, _EXAMPLE_AMEND_REFUSED],
    )
    @idempotent
    def post(self, request, external_id: str, contract_id: int):
        contract = _contract_or_404(customer_or_404(external_id), contract_id)
        serializer = AmendmentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            contract_amend(
                contract=contract, created_by=key_author(request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return _contract_answer(contract, status_code=status.HTTP_201_CREATED)


class ContractEndView(GenericAPIView):
    serializer_class = ContractSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="contracts_end",
        summary="End a contract, move its end, or re-open it",
        description=(
            "`ends_at` is exclusive and comes after the latest terms start; `null` re-opens "
            "the contract. It may not reach into the customer's next contract. Ending it "
            "where it already ends changes nothing."
        ),
        tags=TAGS,
        request=ContractEndSerializer,
        responses={200: ContractSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[_EXAMPLE_END, _EXAMPLE_CONTRACT],
    )
    @idempotent
    def post(self, request, external_id: str, contract_id: int):
        contract = _contract_or_404(customer_or_404(external_id), contract_id)
        serializer = ContractEndSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            contract = contract_end(contract=contract, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return _contract_answer(contract)
