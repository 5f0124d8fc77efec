from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering"

    def ready(self):
        # The rating queue's figures join every /metrics scrape (common.metrics).
        from . import metrics  # noqa: F401
