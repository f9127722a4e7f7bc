"""Drop the ``varchar_pattern_ops`` indexes Django adds to every string key on PostgreSQL.

They serve ``LIKE 'prefix%'`` lookups, which Tollgate never makes on ids (ids are compared whole).
On the tables a decision writes they were a third of the index inserts per decision (measured in
docs/performance.md). The regular b-tree indexes (primary keys, foreign keys, the composite ones)
stay. Backwards recreates them (same columns and operator class; the names are new).
"""

from django.db import migrations

COLUMNS = {
    "enforcement_decision": ("id", "project_id"),
    "enforcement_reservation": ("id", "decision_id", "tenant_id"),
    "enforcement_reservationallocation": ("reservation_id", "budget_period_id", "credit_grant_id"),
    "audit_ledgerentry": ("id", "tenant_id"),
    "audit_outboxevent": ("id", "tenant_id"),
}
FIND = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
    "AND tablename = ANY(%s) AND indexdef LIKE '%%varchar_pattern_ops%%' ORDER BY indexname"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FIND, [list(COLUMNS)])
        for name, _definition in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, columns in COLUMNS.items():
            for column in columns:
                cursor.execute(
                    f'CREATE INDEX IF NOT EXISTS "{table[:40]}_{column}_like" '
                    f'ON "{table}" ("{column}" varchar_pattern_ops)'
                )


class Migration(migrations.Migration):
    dependencies = [
        ("enforcement", "0009_i12_decision_answer_once"),
        ("audit", "0006_i17_verification_jobs"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
