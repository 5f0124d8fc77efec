"""A customer's wallet and alerts over the API: thin; reads go through selectors, writes
through the services."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import ErrorSerializer, FieldErrorsSerializer, api_validation_error
from contracts.api.views import customer_or_404
from wallets.alerts import alert_settings_update
from wallets.selectors import (
    alert_settings_for,
    alerts_recent,
    grants_live,
    holds_active,
    wallet_for,
)

from .serializers import (
    AlertSerializer,
    AlertSettingsSerializer,
    AlertsQuerySerializer,
    WalletSerializer,
)

_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No customer with this external_id.")
_REFUSED = OpenApiResponse(
    FieldErrorsSerializer, description="Refused values, as `{field: [messages]}`."
)

_WALLET = OpenApiExample(
    "Credits, one call held",
    response_only=True,
    value={
        "customer_id": "acme",
        "currency": "USD",
        "balance": "100.000000000000",
        "held": "0.011000000000",
        "available": "99.989000000000",
        "grants": [
            {
                "id": 1,
                "source": "purchased",
                "amount": "120.000000000000",
                "remaining": "100.000000000000",
                "priority": 0,
                "effective_at": "2026-11-01T00:00:00Z",
                "expires_at": None,
            }
        ],
        "holds": [
            {
                "id": "95192b08-ded8-40ac-bd0b-713dd6a4d946",
                "amount": "0.011000000000",
                "reference": "chat 42",
                "created_at": "2026-11-15T12:00:00Z",
                "expires_at": "2026-11-15T12:05:00Z",
            }
        ],
    },
)


class WalletView(APIView):
    customer_scoped = True  # a customer's own key may read it

    @extend_schema(
        summary="A customer's prepaid credits",
        description=(
            "The balance (the sum of the wallet's ledger), what is available to spend, and "
            "the live grants in the order they are drawn (priority, soonest expiry, oldest). "
            "`available` is the balance less the credits held for authorized calls (`held`, "
            "with the active `holds`). Money is exact text with 12 decimal places. A customer "
            "without credits has a balance of 0 and no grants."
        ),
        responses={200: WalletSerializer, 404: _NOT_FOUND},
        examples=[_WALLET],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        wallet = wallet_for(customer=customer)
        grants = list(grants_live(wallet=wallet)) if wallet else []
        holds = list(holds_active(wallet=wallet)) if wallet else []
        balance, held = (wallet.balance, wallet.held) if wallet else (0, 0)
        credits = {
            "customer": customer,
            "balance": balance,
            "held": held,
            "available": balance - held,
            "grants": grants,
            "holds": holds,
        }
        return Response(WalletSerializer(credits).data)


class AlertSettingsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A customer's alert settings",
        description="Defaults when never set: credit-share alerts to the customer's email.",
        responses={200: AlertSettingsSerializer, 404: _NOT_FOUND},
        tags=["alerts"],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        return Response(AlertSettingsSerializer(alert_settings_for(customer=customer)).data)

    @extend_schema(
        summary="Replace a customer's alert settings",
        description=(
            "Budget and balance alerts, their shares, where alerts go (emails, a signed "
            "webhook) and automatic top-ups. Money is a decimal string in the customer's "
            "currency. A field left out takes its default."
        ),
        request=AlertSettingsSerializer,
        responses={200: AlertSettingsSerializer, 400: _REFUSED, 404: _NOT_FOUND},
        tags=["alerts"],
    )
    def put(self, request, external_id: str):
        customer = customer_or_404(external_id)
        serializer = AlertSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            saved = alert_settings_update(customer=customer, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(AlertSettingsSerializer(saved).data)


class AlertsView(APIView):
    @extend_schema(
        summary="A customer's alerts",
        description=(
            "The latest alerts fired (budget shares, credit shares, low balance), newest "
            "first, each with its deliveries by email and webhook."
        ),
        parameters=[AlertsQuerySerializer],
        responses={200: AlertSerializer(many=True), 400: _REFUSED, 404: _NOT_FOUND},
        tags=["alerts"],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        query = AlertsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        alerts = alerts_recent(customer=customer, **query.validated_data)
        return Response(AlertSerializer(alerts, many=True).data)
