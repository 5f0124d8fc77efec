from django.urls import path

from . import tokenizer_views, views

urlpatterns = [
    path("events", views.EventsView.as_view(), name="events"),
    path("tokens/count", views.TokenCountView.as_view(), name="tokens-count"),
    path(
        "tokenizer-rules", tokenizer_views.TokenizerRuleListView.as_view(), name="tokenizer-rules"
    ),
    path(
        "tokenizer-rules/<int:rule_id>",
        tokenizer_views.TokenizerRuleDetailView.as_view(),
        name="tokenizer-rule",
    ),
]
