"""Database-enforced append-only ledger: UPDATE and DELETE on ledger tables raise."""

from django.db import migrations

TABLES = ("audit_ledgerentry", "audit_ledgercheckpoint")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION tollgate_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tollgate: % on % is forbidden: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION, None)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tollgate_append_only();"
            )
    elif vendor == "sqlite":
        for table in TABLES:
            for op in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'tollgate: the ledger is append-only'); END;"
                )


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        elif vendor == "sqlite":
            for op in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op};")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS tollgate_append_only();")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_ledger")]
    operations = [migrations.RunPython(forwards, backwards)]
