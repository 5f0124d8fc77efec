"""The key table: (customer, event_id) unique across every month of the log, each with
its event's id, seal, timestamp and content hash, filled from the events stored so far
and append-only like them; then the log's own unique constraint goes (metering 0010
partitions it by month, and a partitioned table's unique keys must hold the month)."""

from django.db import migrations, models

BACKFILL = """
INSERT INTO metering_usageeventkey
    (customer_id, event_id, event_pk, seal_id, timestamp, content_hash)
SELECT customer_id, event_id, id, seal_id, timestamp, content_hash
FROM metering_usageevent ORDER BY customer_id, event_id
"""


def append_only_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE TRIGGER metering_usageeventkey_append_only BEFORE UPDATE OR DELETE "
            "ON metering_usageeventkey FOR EACH ROW EXECUTE FUNCTION tokentill_append_only()"
        )


def no_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS metering_usageeventkey_append_only ON metering_usageeventkey"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0008_seal_events_schedule"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventArchive",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "month",
                    models.DateField(help_text="The first day of the month (UTC).", unique=True),
                ),
                ("file_name", models.CharField(max_length=500)),
                ("row_count", models.BigIntegerField()),
                ("file_sha256", models.CharField(max_length=64)),
                ("dropped", models.BooleanField(default=False)),
                ("archived_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["month"],
            },
        ),
        migrations.CreateModel(
            name="UsageEventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "customer_id",
                        "event_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("customer_id", models.BigIntegerField()),
                ("event_id", models.CharField(max_length=255)),
                ("event_pk", models.BigIntegerField()),
                ("seal_id", models.UUIDField()),
                ("timestamp", models.DateTimeField()),
                ("content_hash", models.CharField(max_length=64)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunPython(append_only_trigger, no_trigger),
        migrations.RemoveConstraint(
            model_name="usageevent",
            name="usage_event_unique_id",
        ),
    ]
