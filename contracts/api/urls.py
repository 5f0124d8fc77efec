from django.urls import path

from .contract_views import (
    ContractAmendmentsView,
    ContractDetailView,
    ContractEndView,
    ContractListView,
)
from .views import CustomerDetailView, CustomerListView

CONTRACT = "customers/<str:external_id>/contracts/<int:contract_id>"

urlpatterns = [
    path("customers", CustomerListView.as_view(), name="customer-list"),
    path("customers/<str:external_id>", CustomerDetailView.as_view(), name="customer-detail"),
    path(
        "customers/<str:external_id>/contracts",
        ContractListView.as_view(),
        name="contract-list",
    ),
    path(CONTRACT, ContractDetailView.as_view(), name="contract-detail"),
    path(f"{CONTRACT}/amendments", ContractAmendmentsView.as_view(), name="contract-amendments"),
    path(f"{CONTRACT}/end", ContractEndView.as_view(), name="contract-end"),
]
