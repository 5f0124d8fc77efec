from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Registers the rating task in every process, web ones included: ingestion asks
        # for it by name right after storing events (metering.services.rating_nudge).
        from . import tasks  # noqa: F401
