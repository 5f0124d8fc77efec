from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets"

    def ready(self):
        # Every process knows wallets' tasks by name (common.tasks sends them so); failed
        # alert deliveries join every /metrics scrape (wallets.metrics).
        from . import metrics, tasks  # noqa: F401
