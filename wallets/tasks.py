"""Celery tasks for wallets: thin, safe to run twice or in two workers at once."""

from celery import shared_task

from .alerts import alert_deliveries_retry, alert_delivery_send
from .services import grants_credit_effective, grants_expire, grants_warn_expiring, holds_expire


@shared_task(name="wallets.credit_effective_grants", ignore_result=True)
def credit_effective_grants() -> int:
    """Credit the grants granted for later that have become effective (beat: every
    minute)."""
    return grants_credit_effective()


@shared_task(name="wallets.expire_grants", ignore_result=True)
def expire_grants() -> int:
    """Expire what is left of grants past their expiry (beat: every minute)."""
    return grants_expire()


@shared_task(name="wallets.warn_expiring_grants", ignore_result=True)
def warn_expiring_grants() -> int:
    """Warn customers of credits about to expire (beat: every hour)."""
    return grants_warn_expiring()


@shared_task(name="wallets.expire_holds", ignore_result=True)
def expire_holds() -> int:
    """Release the credits of holds that expired unused (beat: every minute)."""
    return holds_expire()


@shared_task(name="wallets.deliver_alert", ignore_result=True)
def deliver_alert(delivery_id: int) -> str | None:
    """Send an alert's delivery, just after the alert's transaction commits."""
    return alert_delivery_send(delivery_id=delivery_id)


@shared_task(name="wallets.retry_alert_deliveries", ignore_result=True)
def retry_alert_deliveries() -> int:
    """Send the deliveries due again after a failure, or lost mid-send (beat: every minute)."""
    return alert_deliveries_retry()
