"""Celery tasks for webhooks: thin, safe to run twice or in two workers at once."""

from celery import shared_task

from .services import webhook_deliveries_retry, webhook_delivery_send


@shared_task(name="webhooks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> str | None:
    """Send a delivery, just after the transaction that wrote it commits."""
    return webhook_delivery_send(delivery_id=delivery_id)


@shared_task(name="webhooks.retry_deliveries", ignore_result=True)
def retry_deliveries() -> int:
    """Send the deliveries due again after a failure, or lost mid-send (beat: every minute)."""
    return webhook_deliveries_retry()
