"""Keep decision rows (about 2.5 kB: the answer, request, context, snapshot) inline in the heap.

With PostgreSQL's default ``toast_tuple_target`` (about 2 kB) every decision row was compressed
and moved to the TOAST table on insert: an extra heap insert and index insert per decision on
the gate's hot path, and a detoast on every read. Measured: about 10 % less PostgreSQL CPU per
decision (docs/performance.md). Rows over 8 kB are still TOASTed as usual.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE enforcement_decision SET (toast_tuple_target = 8160)", None
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE enforcement_decision RESET (toast_tuple_target)", None)


class Migration(migrations.Migration):
    dependencies = [("enforcement", "0004_gate_sql_functions")]
    operations = [migrations.RunPython(forwards, backwards)]
