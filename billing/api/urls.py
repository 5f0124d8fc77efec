from django.urls import path

from . import views

urlpatterns = [
    path("customers/<str:external_id>/usage", views.UsageView.as_view(), name="customer-usage"),
    path(
        "customers/<str:external_id>/usage/rerate",
        views.RerateView.as_view(),
        name="customer-usage-rerate",
    ),
]
