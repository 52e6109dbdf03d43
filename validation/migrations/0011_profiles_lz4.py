"""Profiles (hundreds of kB of JSON text each) are compressed with lz4 instead of PostgreSQL's default pglz.

Every verdict writes two (the run's profile and its day's merged profile), and pglz spent 20 to 45 ms on each
write of a 1M-row batch's profile (PostgreSQL's log, bench/verdict.py): the validate step's recording had doubled
once the quantile sketch became exact (issue 12). Only new values are compressed with lz4; old ones stay readable.
PostgreSQL 14 or later built with lz4 (Debian's is); on SQLite this does nothing.
"""
from django.db import migrations

COLUMNS = [("validation_baseline", "profile"), ("validation_validationrun", "profile"),
           ("validation_dailyprofile", "profile")]


def _set(compression: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column in COLUMNS:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {compression}')
    return run


class Migration(migrations.Migration):
    dependencies = [("validation", "0010_sourcepolicy")]

    operations = [migrations.RunPython(_set("lz4"), _set("pglz"))]
