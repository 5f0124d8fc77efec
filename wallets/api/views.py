"""A customer's wallet over the API: thin; it reads through selectors and shapes the answer."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.api.views import customer_or_404
from wallets.selectors import grants_live, holds_active, wallet_for


def _money(value) -> str:
    return f"{value:.12f}"


class WalletView(APIView):
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
                "balance": _money(balance),
                "held": _money(held),
                "available": _money(balance - held),
                "grants": [
                    {
                        "id": grant.pk,
                        "source": grant.source,
                        "amount": _money(grant.amount),
                        "remaining": _money(grant.remaining),
                        "priority": grant.priority,
                        "effective_at": grant.effective_at,
                        "expires_at": grant.expires_at,
                    }
                    for grant in grants
                ],
                "holds": [
                    {
                        "id": str(hold.pk),
                        "amount": _money(hold.amount),
                        "reference": hold.reference,
                        "created_at": hold.created_at,
                        "expires_at": hold.expires_at,
                    }
                    for hold in holds
                ],
            }
        )
