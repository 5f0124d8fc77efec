"""Celery tasks for billing: thin wrappers around services, safe to run twice or at once.

`rate_pending_usage` is asked for by ingestion right after events are stored (at most
every TOKENTILL_RATING_NUDGE_SECONDS per process) and runs every 30 seconds from
django-celery-beat ("Rate pending usage"), so rating catches up after any downtime.
"""

from celery import shared_task
from django.conf import settings

from .invoicing import periods_close_due
from .services import usage_rate_pending


@shared_task(name="billing.rate_pending_usage", ignore_result=True)
def rate_pending_usage() -> int:
    """Drain the rating queue; while there was work, look again shortly after.

    The second look rates events queued while this run was finishing, which asked for
    no run of their own (ingestion asks at most once per nudge interval).
    """
    rated = usage_rate_pending()
    if rated and not settings.CELERY_TASK_ALWAYS_EAGER:
        rate_pending_usage.apply_async(countdown=settings.TOKENTILL_RATING_NUDGE_SECONDS)
    return rated


@shared_task(name="billing.close_due_periods", ignore_result=True)
def close_due_periods() -> int:
    """Close every billing period whose grace has passed into its invoice (beat: every
    5 minutes)."""
    return periods_close_due()
