"""Rate-limit counters in an ``UNLOGGED`` table on PostgreSQL (docs/reliability.md).

Every API call and envelope of one token or key counts in the same row. In a logged table, each
count's commit waits for the WAL flush while holding that row's lock, so all the calls of one
token went through the disk one by one. An unlogged table writes no WAL: the statement's commit
does not wait for the flush, and the row is free again as soon as it is counted. After a crash
PostgreSQL empties the table (counts start again, as at the start of a window) and standbys do
not have it. Elsewhere, nothing to do.
"""

from django.db import migrations


def _alter(to: str):
    def alter(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(
            apps.get_model("accounts", "RateLimitWindow")._meta.db_table
        )
        schema_editor.execute(f"ALTER TABLE {table} SET {to}")

    return alter


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_ratelimit_window")]

    operations = [migrations.RunPython(_alter("UNLOGGED"), _alter("LOGGED"))]
