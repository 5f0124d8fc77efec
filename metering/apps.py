from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering"

    def ready(self):
        # Every process, web ones included, knows the sealer's task by name: ingestion
        # asks for it after each commit (common.tasks).
        # The rating queue's figures join every /metrics scrape (common.metrics).
        from . import metrics, tasks  # noqa: F401
