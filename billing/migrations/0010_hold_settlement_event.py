"""A hold settlement names the call's event (whose rating gives its period and cost) instead
of the cost before discount, so the draw-down pass settles the hold, when it draws that
period, at what the call added to the period's billable usage.

Settlements still queued (rated, their period not yet drawn: a pass's worth) are dropped:
their holds are released when they expire (TOKENTILL_HOLD_SECONDS), and their calls' usage is
drawn as any usage. The table is emptied first, so the new column needs no value."""

import django.db.models.deletion
from django.db import migrations, models


def settlements_drop(apps, schema_editor):
    apps.get_model("billing", "HoldSettlement").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_draw_down_queue_rows"),
        ("metering", "0006_rating_queue_customer"),
    ]

    operations = [
        migrations.RunPython(settlements_drop, migrations.RunPython.noop),
        migrations.RemoveField(model_name="holdsettlement", name="cost"),
        migrations.AddField(
            model_name="holdsettlement",
            name="event",
            field=models.ForeignKey(
                db_index=False,
                default=0,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="metering.usageevent",
            ),
            preserve_default=False,
        ),
    ]
