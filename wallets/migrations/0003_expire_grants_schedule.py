"""Grants expire on time: a django-celery-beat schedule, every minute, editable in the admin."""

from django.db import migrations

from config.beat import interval_schedule

SCHEDULE = interval_schedule(
    name="Expire credit grants",
    task="wallets.expire_grants",
    every=1,
    period="minutes",
    description="Expire what is left of each grant past its expiry, with a ledger entry.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0002_ledger_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(*SCHEDULE)]
