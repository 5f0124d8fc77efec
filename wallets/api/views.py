"""A customer's wallet and alerts over the API: thin; reads go through selectors, writes
through the services."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import api_validation_error
from contracts.api.views import customer_or_404
from pricing.money import exact_text
from wallets.alerts import alert_settings_update
from wallets.selectors import (
    alert_settings_for,
    alerts_recent,
    grants_live,
    holds_active,
    wallet_for,
)

from .serializers import AlertSerializer, AlertSettingsSerializer, AlertsQuerySerializer


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
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        wallet = wallet_for(customer=customer)
        grants = list(grants_live(wallet=wallet)) if wallet else []
        holds = list(holds_active(wallet=wallet)) if wallet else []
        balance, held = (wallet.balance, wallet.held) if wallet else (0, 0)
        return Response(
            {
                "customer_id": customer.external_id,
                "currency": customer.currency,
                "balance": exact_text(balance),
                "held": exact_text(held),
                "available": exact_text(balance - held),
                "grants": [
                    {
                        "id": grant.pk,
                        "source": grant.source,
                        "amount": exact_text(grant.amount),
                        "remaining": exact_text(grant.remaining),
                        "priority": grant.priority,
                        "effective_at": grant.effective_at,
                        "expires_at": grant.expires_at,
                    }
                    for grant in grants
                ],
                "holds": [
                    {
                        "id": str(hold.pk),
                        "amount": exact_text(hold.amount),
                        "reference": hold.reference,
                        "created_at": hold.created_at,
                        "expires_at": hold.expires_at,
                    }
                    for hold in holds
                ],
            }
        )


class AlertSettingsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A customer's alert settings",
        description="Defaults when never set: credit-share alerts to the customer's email.",
        responses={200: AlertSettingsSerializer},
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
        responses={200: AlertSettingsSerializer},
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
        responses={200: AlertSerializer(many=True)},
        tags=["alerts"],
    )
    def get(self, request, external_id: str):
        customer = customer_or_404(external_id)
        query = AlertsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        alerts = alerts_recent(customer=customer, **query.validated_data)
        return Response(AlertSerializer(alerts, many=True).data)
