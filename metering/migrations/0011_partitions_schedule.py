"""The event log's partitions kept created ahead, daily, as a django-celery-beat schedule
billing ops can see and change in the admin (Periodic tasks)."""

from django.db import migrations

from config.beat import interval_schedule

SCHEDULE = interval_schedule(
    name="Create the event log's partitions",
    task="metering.create_event_partitions",
    every=1,
    period="days",
    description="Create the event log's monthly partitions for the coming months (PostgreSQL).",
)


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0010_partition_event_log"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(*SCHEDULE)]
