"""The sealer's queue keeps a batch's content hashes uncompressed (PostgreSQL).

A 1,000-event batch's hashes are 64 KB of hex digits. PostgreSQL tries to compress a
value that large by default; hashes do not compress, and the attempt cost about 1.1 ms
of the database's CPU per batch, a twentieth of the whole insert. Only the catalog
changes: rows already queued stay as they are, and the table is not rewritten.
"""

from django.db import migrations

TABLE = "metering_unsealedbatch"


def storage_set(storage: str):
    def change(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"ALTER TABLE {TABLE} ALTER COLUMN content_hashes SET STORAGE {storage}"
            )

    return change


class Migration(migrations.Migration):
    dependencies = [("metering", "0013_seed_tokenizer_rules")]
    operations = [migrations.RunPython(storage_set("EXTERNAL"), storage_set("EXTENDED"))]
