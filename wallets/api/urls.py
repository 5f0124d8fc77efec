from django.urls import path

from . import views

urlpatterns = [
    path("customers/<str:external_id>/wallet", views.WalletView.as_view(), name="customer-wallet"),
]
