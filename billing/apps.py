from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Every process, web ones included, knows billing's tasks by name: ingestion and
        # credits ask for the rater, closing for a Stripe push (common.tasks). The draw-down
        # queue's and Stripe's figures join every /metrics scrape (billing.metrics).
        from . import checks, metrics, tasks  # noqa: F401
