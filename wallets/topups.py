"""Paying the top-ups that wallets.alerts requests when a balance falls under its threshold.

Billing ops mark a request paid in the admin; with Stripe on, billing also charges each
open request by a Stripe invoice, and its payment calls the same `topup_mark_paid`.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import Customer

from .models import CreditGrant, TopUpRequest
from .services import _wallet_lock, credit_grant


def topup_mark_paid(*, request: TopUpRequest, created_by: str, reference: str = "") -> CreditGrant:
    """Grant the request's credits (source: purchased), once: a request already paid
    answers with its grant and grants nothing more, so a payment confirmed twice (a
    double click, a redelivered payment event) pays once. A cancelled or failed request
    is refused with nothing changed."""
    with transaction.atomic():
        request = _topup_lock(request)
        if request.status == TopUpRequest.Status.PAID:
            assert request.grant is not None  # paid with its grant, below
            return request.grant
        if request.status != TopUpRequest.Status.REQUESTED:
            raise ValidationError(f"This top-up is {request.get_status_display().lower()}.")
        # Granted while the request is still open, so the grant's own check does not ask
        # for another top-up in the same breath.
        grant = credit_grant(
            customer=request.wallet.customer,
            currency=request.wallet.currency,
            amount=request.amount,
            source=CreditGrant.Source.PURCHASED,
            reason=f"top-up {request.pk}" + (f" ({reference})" if reference else ""),
            created_by=created_by,
        )
        TopUpRequest.objects.filter(pk=request.pk).update(
            status=TopUpRequest.Status.PAID,
            paid_at=timezone.now(),
            grant=grant,
            closed_by=created_by,
            reference=reference,
        )
    return grant


def topup_cancel(*, request: TopUpRequest, created_by: str) -> bool:
    """Close an open request unpaid; False when it was not open. The next fall under the
    threshold requests again (clear the customer's top-up threshold to stop them)."""
    with transaction.atomic():
        request = _topup_lock(request)
        if request.status != TopUpRequest.Status.REQUESTED:
            return False
        TopUpRequest.objects.filter(pk=request.pk).update(
            status=TopUpRequest.Status.CANCELLED, closed_by=created_by
        )
    return True


def _topup_lock(request: TopUpRequest) -> TopUpRequest:
    """The request's row, locked after its customer and wallet (the lock order of
    docs/development/architecture.md)."""
    wallet = request.wallet
    Customer.objects.select_for_update(no_key=True).get(pk=wallet.customer_id)
    _wallet_lock(wallet)
    return (
        TopUpRequest.objects.select_for_update(of=("self",))
        .select_related("wallet__customer", "grant")
        .get(pk=request.pk)
    )
