from django.urls import path

from . import views

urlpatterns = [
    path("customers/<str:external_id>/wallet", views.WalletView.as_view(), name="customer-wallet"),
    path(
        "customers/<str:external_id>/alert-settings",
        views.AlertSettingsView.as_view(),
        name="customer-alert-settings",
    ),
    path("customers/<str:external_id>/alerts", views.AlertsView.as_view(), name="customer-alerts"),
]
