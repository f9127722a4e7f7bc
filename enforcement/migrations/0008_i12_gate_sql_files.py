"""The gate's PostgreSQL functions now live in ``enforcement/sql/*.sql``: install them from there.

Same functions as 0004 at the time of this migration; from now on a change to a ``.sql`` file
ships with a migration that calls ``enforcement.sql.install`` again (reversing this one leaves
the functions as they are: 0004's backwards drops them).
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from enforcement.sql import install

    install(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("enforcement", "0007_i17_limits_and_jobs")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
