"""Beat emails every 5 minutes the invoices a lost task left unsent (Stripe off),
editable in the admin's Periodic tasks."""

from django.db import migrations

from config.beat import interval_schedule

EMAIL = interval_schedule(
    name="Email invoices",
    task="billing.email_invoices",
    every=5,
    period="minutes",
    description="With Stripe off, email the invoices issued in the last day that are not emailed yet.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0015_usage_days"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(*EMAIL)]
