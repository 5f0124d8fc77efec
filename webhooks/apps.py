from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        # Every process knows webhooks' tasks by name (common.tasks sends them so).
        from . import tasks  # noqa: F401
