from django.urls import path

from . import credit_views, views

urlpatterns = [
    path("customers/<str:external_id>/wallet", views.WalletView.as_view(), name="customer-wallet"),
    path(
        "customers/<str:external_id>/wallet/grants",
        credit_views.WalletGrantsView.as_view(),
        name="customer-wallet-grants",
    ),
    path(
        "customers/<str:external_id>/wallet/adjustments",
        credit_views.WalletAdjustmentsView.as_view(),
        name="customer-wallet-adjustments",
    ),
    path(
        "customers/<str:external_id>/wallet/holds",
        credit_views.WalletHoldsView.as_view(),
        name="customer-wallet-holds",
    ),
    path(
        "customers/<str:external_id>/wallet/ledger",
        credit_views.WalletLedgerView.as_view(),
        name="customer-wallet-ledger",
    ),
    path(
        "customers/<str:external_id>/alert-settings",
        views.AlertSettingsView.as_view(),
        name="customer-alert-settings",
    ),
    path("customers/<str:external_id>/alerts", views.AlertsView.as_view(), name="customer-alerts"),
]
