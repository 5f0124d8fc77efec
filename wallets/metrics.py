"""Wallets' Prometheus figures, read at scrape time (common/metrics.py): alert deliveries
that failed, counted as billing webhooks' are."""

from collections.abc import Iterable

from prometheus_client.core import Metric

from common.metrics import metrics_collector_register
from webhooks.metrics import deliveries_collect

from .models import AlertDelivery


def alert_deliveries_collect() -> Iterable[Metric]:
    return deliveries_collect("alert", AlertDelivery.objects.all())


metrics_collector_register("wallets", alert_deliveries_collect)
