from django.urls import path

from .catalog_views import CatalogView, RateCardFromCatalogView
from .contract_views import (
    ContractAmendmentsView,
    ContractDetailView,
    ContractEndView,
    ContractListView,
)
from .rate_card_views import (
    PriceDetailView,
    RateCardCloneView,
    RateCardDetailView,
    RateCardListView,
    RateCardVersionsView,
    VersionPricesView,
)
from .views import CustomerDetailView, CustomerListView

CONTRACT = "customers/<str:external_id>/contracts/<int:contract_id>"
CARD = "rate-cards/<str:name>"
VERSION = f"{CARD}/versions/<int:version>"

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
    path("rate-cards", RateCardListView.as_view(), name="rate-card-list"),
    # Before the card's own path: a card cannot be named "from-catalog" over the API.
    path("rate-cards/from-catalog", RateCardFromCatalogView.as_view(), name="rate-card-catalog"),
    path(CARD, RateCardDetailView.as_view(), name="rate-card-detail"),
    path(f"{CARD}/clone", RateCardCloneView.as_view(), name="rate-card-clone"),
    path(f"{CARD}/versions", RateCardVersionsView.as_view(), name="rate-card-versions"),
    path(f"{VERSION}/prices", VersionPricesView.as_view(), name="rate-card-prices"),
    # A price's name may hold a /: it is the path's last part.
    path(f"{VERSION}/prices/<path:price>", PriceDetailView.as_view(), name="rate-card-price"),
    path("catalog", CatalogView.as_view(), name="catalog"),
]
