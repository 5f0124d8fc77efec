from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from billing.stripe.webhook import stripe_webhook
from common.metrics import metrics_view
from metering.api.otlp import TracesView

# Patterns are tried in order: the ingest endpoint, called most by far, comes first.
urlpatterns = [
    path("api/v1/", include("metering.api.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("contracts.api.urls")),
    path("api/v1/", include("wallets.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("common.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("stripe/webhook", stripe_webhook, name="stripe-webhook"),
    path("portal/", include("portal.urls")),
    path("metrics", metrics_view, name="metrics"),
    # OTLP/HTTP's default path: an OpenTelemetry exporter's endpoint is tokentill's base URL.
    path("v1/traces", TracesView.as_view(), name="otlp-traces"),
]
