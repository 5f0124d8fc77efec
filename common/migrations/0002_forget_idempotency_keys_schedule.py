"""Idempotency keys are forgotten after their retention: a beat schedule, every hour."""

from django.db import migrations

from config.beat import interval_schedule

SCHEDULE = interval_schedule(
    name="Forget idempotency keys",
    task="common.forget_idempotency_keys",
    every=1,
    period="hours",
    description="Forget Idempotency-Keys older than TOKENTILL_IDEMPOTENCY_HOURS.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0001_idempotency_and_audit"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(*SCHEDULE)]
