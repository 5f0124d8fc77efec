from django.urls import path

from .views import CustomerDetailView, CustomerListView

urlpatterns = [
    path("customers", CustomerListView.as_view(), name="customer-list"),
    path("customers/<str:external_id>", CustomerDetailView.as_view(), name="customer-detail"),
]
