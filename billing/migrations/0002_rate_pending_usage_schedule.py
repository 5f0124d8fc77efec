"""Rating every 30 seconds, as a django-celery-beat schedule billing ops can see and change
in the admin (Periodic tasks): the safety net under the runs ingestion asks for."""

from django.db import migrations

NAME = "Rate pending usage"


def schedule(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(every=30, period="seconds")
    task_model.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "billing.rate_pending_usage",
            "interval": every,
            "description": "Rate the events waiting in the rating queue (it catches up).",
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(schedule, unschedule)]
