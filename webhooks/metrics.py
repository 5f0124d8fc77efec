"""Deliveries' Prometheus figures, read at scrape time (common/metrics.py): the billing
webhooks' here, and `deliveries_collect` for wallets' alert deliveries, which keep the
same statuses (webhooks.models.Delivery)."""

from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet
from prometheus_client.core import GaugeMetricFamily, Metric

from common.metrics import metrics_collector_register

from .models import Delivery, WebhookDelivery

FAILED_HELP = (
    "Deliveries that gave up after every retry (status failed) and wait for a replay by "
    "hand, by kind: webhook (billing webhooks) or alert (alert emails and webhooks)."
)
RETRYING_HELP = (
    "Deliveries that failed at least once and will be tried again (pending, attempts > 0)."
)


def delivery_failures(deliveries: QuerySet[Delivery]) -> tuple[int, int]:
    """(failed, retrying) among `deliveries`, in one statement that reads the failed and
    pending rows by the (status, next_attempt_at) index every delivery table has: failed
    rows stay until replayed, pending ones are few; delivered ones are never read."""
    counts = deliveries.filter(
        status__in=[Delivery.Status.FAILED, Delivery.Status.PENDING]
    ).aggregate(
        failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
        retrying=Count("pk", filter=Q(status=Delivery.Status.PENDING, attempts__gt=0)),
    )
    return counts["failed"], counts["retrying"]


def deliveries_collect(kind: str, deliveries: QuerySet[Delivery]) -> Iterable[Metric]:
    failed, retrying = delivery_failures(deliveries)
    failed_family = GaugeMetricFamily("tokentill_deliveries_failed", FAILED_HELP, labels=["kind"])
    failed_family.add_metric([kind], failed)
    retrying_family = GaugeMetricFamily(
        "tokentill_deliveries_retrying", RETRYING_HELP, labels=["kind"]
    )
    retrying_family.add_metric([kind], retrying)
    return [failed_family, retrying_family]


def webhook_deliveries_collect() -> Iterable[Metric]:
    return deliveries_collect("webhook", WebhookDelivery.objects.all())


metrics_collector_register("webhooks", webhook_deliveries_collect)
