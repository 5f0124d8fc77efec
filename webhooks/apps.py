from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        # Every process knows webhooks' tasks by name (common.tasks sends them so); failed
        # deliveries join every /metrics scrape (webhooks.metrics).
        from . import metrics, tasks  # noqa: F401
