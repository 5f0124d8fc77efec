from django.urls import path

from . import authorization_views, views

urlpatterns = [
    path("customers/<str:external_id>/usage", views.UsageView.as_view(), name="customer-usage"),
    path(
        "customers/<str:external_id>/usage/rerate",
        views.RerateView.as_view(),
        name="customer-usage-rerate",
    ),
    path(
        "authorizations",
        authorization_views.AuthorizationsView.as_view(),
        name="authorizations",
    ),
    path("holds/<uuid:hold_id>", authorization_views.HoldView.as_view(), name="hold-detail"),
    path(
        "holds/<uuid:hold_id>/release",
        authorization_views.HoldReleaseView.as_view(),
        name="hold-release",
    ),
]
