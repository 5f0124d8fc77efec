"""The customer page's wallet and alerts sections (contracts.admin.customers draws them):
balance, credits available, live grants, grants to come and active holds, with granting
and adjusting one click away; the latest alerts and where to change their settings."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from contracts.admin.customers import customer_page_section, with_next
from contracts.models import Customer
from pricing.money import money_label

from .models import AlertSettings
from .selectors import alerts_recent, grants_live, grants_pending, holds_active, wallet_for

ALERTS_SHOWN = 5


@customer_page_section(
    key="wallet",
    order=30,
    title="Prepaid credits",
    template="admin/contracts/customer/section_wallet.html",
)
def wallet_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    user = request.user
    if not user.has_perm("wallets.view_wallet"):
        return None
    currency = customer.currency
    wallet = wallet_for(customer=customer)
    may_grant = user.has_perm("wallets.add_creditgrant")
    context: dict[str, Any] = {
        "wallet": wallet,
        "grant_url": may_grant
        and with_next(reverse("admin:wallets_grant"), customer, customer=customer.pk),
    }
    if wallet is None:
        return context
    return {
        **context,
        "url": reverse("admin:wallets_wallet_change", args=[wallet.pk]),
        "adjust_url": may_grant
        and with_next(reverse("admin:wallets_adjust", args=[wallet.pk]), customer),
        "balance": money_label(wallet.balance, currency),
        "held": money_label(wallet.held, currency),
        "available": money_label(wallet.available, currency),
        "grants": [
            {
                "grant": grant,
                "amount": money_label(grant.amount, currency),
                "remaining": money_label(grant.remaining, currency),
            }
            for grant in grants_live(wallet=wallet)
        ],
        "pending": [
            {"grant": grant, "amount": money_label(grant.amount, currency)}
            for grant in grants_pending(wallet=wallet)
        ],
        "holds": [
            {"hold": hold, "amount": money_label(hold.amount, currency)}
            for hold in holds_active(wallet=wallet)
        ],
    }


@customer_page_section(
    key="alerts",
    order=60,
    title="Alerts",
    template="admin/contracts/customer/section_alerts.html",
)
def alerts_section(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    user = request.user
    if not user.has_perm("wallets.view_alert"):
        return None
    settings = AlertSettings.objects.filter(customer=customer).first()
    if settings is not None:
        settings_url = reverse("admin:wallets_alertsettings_change", args=[settings.pk])
    elif user.has_perm("wallets.add_alertsettings"):
        settings_url = f"{reverse('admin:wallets_alertsettings_add')}?customer={customer.pk}"
    else:
        settings_url = ""
    return {
        "alerts": list(alerts_recent(customer=customer, limit=ALERTS_SHOWN)),
        "all_url": f"{reverse('admin:wallets_alert_changelist')}?q={customer.external_id}",
        "settings_url": settings_url if user.has_perm("wallets.view_alertsettings") else "",
    }
