"""Grants expire on time: a django-celery-beat schedule, every minute, editable in the admin."""

from django.db import migrations

NAME = "Expire credit grants"


def schedule(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(every=1, period="minutes")
    task_model.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "wallets.expire_grants",
            "interval": every,
            "description": "Expire what is left of each grant past its expiry, with a ledger entry.",
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0002_ledger_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(schedule, unschedule)]
