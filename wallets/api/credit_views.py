"""A customer's credits over the API for billing ops (operator keys only): grants made and
listed, manual adjustments, holds and the ledger. Thin: wallets.selectors reads,
wallets.services writes (and records each change in the audit trail); money is text.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import (
    ErrorSerializer,
    FieldErrorsSerializer,
    NewestFirst,
    api_validation_error,
    key_author,
)
from common.idempotency import idempotent
from contracts.api.views import customer_or_404
from pricing.money import plain
from wallets.models import CreditGrant, Hold, LedgerEntry, Wallet
from wallets.selectors import grants_all, grants_state, holds_of, ledger_of, wallet_for
from wallets.services import InsufficientCredits, credit_grant, wallet_adjust

from . import examples
from .serializers import (
    AdjustmentRequestSerializer,
    AdjustmentSerializer,
    GrantDetailSerializer,
    GrantRequestSerializer,
    HoldRecordSerializer,
    HoldsQuerySerializer,
    LedgerEntrySerializer,
    LedgerQuerySerializer,
    PageQuerySerializer,
)

TAGS = ["credits"]
_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No customer with this external_id.")
_REFUSED = OpenApiResponse(
    FieldErrorsSerializer, description="Refused values, as `{field: [messages]}`; nothing stored."
)
_BAD_QUERY = OpenApiResponse(FieldErrorsSerializer, description="A refused query parameter.")
_PAGE_SIZE = OpenApiParameter("page_size", int, description="Up to 1000; 100 by default.")


class HoldPagination(NewestFirst):
    ordering = ("-created_at", "-id")  # a hold's id is a UUID: its time orders it


def _query(serializer_class, request) -> dict:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return {
        name: value
        for name, value in query.validated_data.items()
        if name not in ("cursor", "page_size")
    }


class WalletGrantsView(GenericAPIView):
    pagination_class = NewestFirst
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="wallet_grants_list",
        summary="A customer's credit grants",
        description=(
            "Every grant, newest first, a page at a time (follow `next`): pending (effective "
            "later), live, used and expired alike, each with what is left (`remaining`) and "
            "what expired. Operator keys only."
        ),
        tags=TAGS,
        parameters=[_PAGE_SIZE],
        responses={200: GrantDetailSerializer(many=True), 400: _BAD_QUERY, 404: _NOT_FOUND},
        examples=[examples.GRANT_IN_LIST, examples.NOT_FOUND],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        _query(PageQuerySerializer, request)
        page = self.paginate_queryset(grants_all(wallet=wallet_for(customer=customer)))
        states = grants_state(grants=page or [])
        return self.get_paginated_response(GrantDetailSerializer(states, many=True).data)

    @extend_schema(
        operation_id="wallet_grants_create",
        summary="Grant credits to a customer",
        description=(
            "Credits in the customer's currency, usable at once or from `effective_at` (in the "
            "future: until then they are not in the wallet, and nothing draws or holds them), "
            "until `expires_at`. `amount` is a decimal string greater than 0 with at most 12 "
            "places. Recorded in the audit trail, with the key as `created_by`. Refused "
            "values are 400 and nothing is stored."
        ),
        tags=TAGS,
        request=GrantRequestSerializer,
        responses={201: GrantDetailSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[
            examples.GRANT_REQUEST,
            examples.GRANT_PENDING,
            examples.GRANT_REFUSED,
            examples.NOT_FOUND,
        ],
    )
    @idempotent
    def post(self, request, external_id: str):
        customer = customer_or_404(external_id)
        serializer = GrantRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            grant = credit_grant(
                customer=customer, created_by=key_author(request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        answer = GrantDetailSerializer(grants_state(grants=[grant])[0]).data
        return Response(answer, status=status.HTTP_201_CREATED)


class WalletAdjustmentsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="wallet_adjustments_create",
        summary="Adjust a customer's credits by hand",
        description=(
            "A signed amount with a reason. A positive one is a grant of its own (source "
            "`adjustment`, usable at once); a negative one is taken from the grants in "
            "draw-down order and must be covered in full, or nothing is taken (400). "
            "Recorded on the ledger and in the audit trail with the key as `created_by`."
        ),
        tags=TAGS,
        request=AdjustmentRequestSerializer,
        responses={201: AdjustmentSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        examples=[
            examples.ADJUSTMENT_REQUEST,
            examples.ADJUSTMENT,
            examples.ADJUSTMENT_REFUSED,
            examples.NOT_FOUND,
        ],
    )
    @idempotent
    def post(self, request, external_id: str):
        customer = customer_or_404(external_id)
        serializer = AdjustmentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        amount, reason = serializer.validated_data["amount"], serializer.validated_data["reason"]
        wallet = wallet_for(customer=customer)
        if wallet is None and Decimal(amount) < 0:
            raise ValidationError(
                {
                    "amount": [
                        f"{external_id} has no credits; {plain(-Decimal(amount))} was asked for."
                    ]
                }
            )
        by = key_author(request)
        try:
            made = wallet_adjust(
                # A positive adjustment is a grant, which creates the wallet on first use.
                wallet=wallet or Wallet(customer=customer, currency=customer.currency),
                amount=amount,
                reason=reason,
                created_by=by,
            )
        except InsufficientCredits as exc:
            raise ValidationError({"amount": [str(exc)]}) from exc
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        after = wallet_for(customer=customer)
        assert after is not None  # it was adjusted
        grant = grants_state(grants=[made])[0] if isinstance(made, CreditGrant) else None
        adjustment = {
            "customer": customer,
            "currency": after.currency,
            "amount": Decimal(amount),
            "reason": reason,
            "created_by": by,
            "grant": grant,
            "balance": after.balance,
            "available": after.available,
        }
        return Response(AdjustmentSerializer(adjustment).data, status=status.HTTP_201_CREATED)


class WalletHoldsView(GenericAPIView):
    pagination_class = HoldPagination

    @extend_schema(
        operation_id="wallet_holds_list",
        summary="A customer's holds",
        description=(
            "The holds authorizations placed on the wallet, newest first, a page at a time "
            "(follow `next`), all of them or those of one `status`. Operator keys only."
        ),
        tags=TAGS,
        parameters=[
            OpenApiParameter("status", str, enum=Hold.Status.values, description="Only these."),
            _PAGE_SIZE,
        ],
        responses={200: HoldRecordSerializer(many=True), 400: _BAD_QUERY, 404: _NOT_FOUND},
        examples=[examples.HOLD, examples.HOLDS_REFUSED, examples.NOT_FOUND],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        query = _query(HoldsQuerySerializer, request)
        holds = holds_of(wallet=wallet_for(customer=customer), **query)
        page = self.paginate_queryset(holds)
        return self.get_paginated_response(HoldRecordSerializer(page, many=True).data)


class WalletLedgerView(GenericAPIView):
    pagination_class = NewestFirst

    @extend_schema(
        operation_id="wallet_ledger_list",
        summary="A customer's credits ledger",
        description=(
            "Every movement of the wallet, newest first, a page at a time (follow `next`), "
            "all of them or those of one `kind`: grants, draw-downs, expiries and adjustments "
            "move the balance; holds and releases what is held. Entries are never changed. "
            "Operator keys only."
        ),
        tags=TAGS,
        parameters=[
            OpenApiParameter("kind", str, enum=LedgerEntry.Kind.values, description="Only these."),
            _PAGE_SIZE,
        ],
        responses={200: LedgerEntrySerializer(many=True), 400: _BAD_QUERY, 404: _NOT_FOUND},
        examples=[examples.LEDGER_ENTRY, examples.LEDGER_REFUSED, examples.NOT_FOUND],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        query = _query(LedgerQuerySerializer, request)
        entries = ledger_of(wallet=wallet_for(customer=customer), **query)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(LedgerEntrySerializer(page, many=True).data)
