from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Every process, web ones included, knows billing's tasks by name: ingestion and
        # credits ask for the rater, closing for a Stripe push (common.tasks).
        from . import checks, tasks  # noqa: F401
