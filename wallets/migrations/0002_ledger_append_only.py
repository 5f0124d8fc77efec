"""On PostgreSQL the ledger refuses UPDATE and DELETE in the database too."""

from django.db import migrations

TABLE = "wallets_ledgerentry"


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # tokentill_append_only() is the event log's function (metering 0002).
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION tokentill_append_only()"
    )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_initial"), ("metering", "0002_append_only_triggers")]
    operations = [migrations.RunPython(create_trigger, drop_trigger)]
