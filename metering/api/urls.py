from django.urls import path

from . import views

urlpatterns = [
    path("events", views.EventsView.as_view(), name="events"),
    path("tokens/count", views.TokenCountView.as_view(), name="tokens-count"),
]
