"""A settled hold's cost is what was drawn for its call (after discount, beyond the allowance)."""

import common.fields
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0006_alerts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="hold",
            name="settled_cost",
            field=common.fields.ExactDecimalField(
                blank=True,
                decimal_places=12,
                help_text="What was drawn for the call that settled it: its cost after discount "
                "beyond the allowance (null if the call could not be priced).",
                max_digits=32,
                null=True,
            ),
        ),
    ]
