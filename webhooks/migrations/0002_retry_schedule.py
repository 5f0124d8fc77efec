"""Webhook deliveries that failed are tried again: a django-celery-beat schedule, every
minute, editable in the admin."""

from django.db import migrations

from config.beat import interval_schedule

SCHEDULE = interval_schedule(
    name="Retry webhook deliveries",
    task="webhooks.retry_deliveries",
    every=1,
    period="minutes",
    description="Send again the billing webhook deliveries that failed (with backoff) or were "
    "lost mid-send.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(*SCHEDULE)]
