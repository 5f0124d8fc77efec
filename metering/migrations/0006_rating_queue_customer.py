"""The rating queue names each event's customer (pending usage per customer, no join)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("metering", "0005_rating_queue")]

    operations = [
        migrations.AddField(
            model_name="unratedevent",
            name="customer_id",
            field=models.BigIntegerField(db_index=True, default=0),
            preserve_default=False,
        ),
        migrations.RunSQL(
            "UPDATE metering_unratedevent SET customer_id = ("
            "SELECT customer_id FROM metering_usageevent "
            "WHERE metering_usageevent.id = metering_unratedevent.event_id)"
            " WHERE EXISTS (SELECT 1 FROM metering_usageevent"
            " WHERE metering_usageevent.id = metering_unratedevent.event_id)",
            migrations.RunSQL.noop,
        ),
    ]
