"""The sealer's periodic run, as a django-celery-beat schedule billing ops can see in the
admin (Periodic tasks): it seals what a lost nudge left."""

from django.db import migrations

from config.beat import interval_schedule

seal, unseal = interval_schedule(
    name="Seal the event log",
    task="metering.seal_events",
    every=2,
    period="seconds",
    description="Chain every stored batch of events into the seal chain.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0007_unsealed_batches"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(seal, unseal)]
