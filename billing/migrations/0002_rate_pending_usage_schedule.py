"""Rating every 30 seconds, as a django-celery-beat schedule billing ops can see and change
in the admin (Periodic tasks): the safety net under the runs ingestion asks for."""

from django.db import migrations

from config.beat import interval_schedule

SCHEDULE = interval_schedule(
    name="Rate pending usage",
    task="billing.rate_pending_usage",
    every=30,
    period="seconds",
    description="Rate the events waiting in the rating queue (it catches up).",
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(*SCHEDULE)]
