"""Periods close on schedule: a django-celery-beat task every 5 minutes, editable in the admin."""

from django.db import migrations

from config.beat import interval_schedule

SCHEDULE = interval_schedule(
    name="Close due billing periods",
    task="billing.close_due_periods",
    every=5,
    period="minutes",
    description="Close each billing period whose grace has passed into a finalized invoice.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_invoices"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(*SCHEDULE)]
