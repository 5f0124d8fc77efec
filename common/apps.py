from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process knows common's tasks by name (common.tasks sends them so).
        from . import checks, tasks  # noqa: F401
        from .metrics import celery_queues_collect, metrics_collector_register

        # The broker's queue depths join every /metrics scrape.
        metrics_collector_register("celery", celery_queues_collect)
