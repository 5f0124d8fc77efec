from django.urls import path

from . import views

ENDPOINT = "webhook-endpoints/<int:endpoint_id>"

urlpatterns = [
    path("webhook-endpoints", views.EndpointListView.as_view(), name="webhook-endpoints"),
    path(ENDPOINT, views.EndpointDetailView.as_view(), name="webhook-endpoint"),
    path(
        f"{ENDPOINT}/disable", views.EndpointDisableView.as_view(), name="webhook-endpoint-disable"
    ),
    path(
        f"{ENDPOINT}/deliveries",
        views.EndpointDeliveriesView.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "webhook-deliveries/<int:delivery_id>/replay",
        views.DeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
]
