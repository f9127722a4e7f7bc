"""Add the ``llm_gateway`` entitlement to the plans that include it (from the catalog)."""

from django.db import migrations


def sync(apps, schema_editor):
    from billing.catalog import PLANS

    Plan = apps.get_model("billing", "Plan")
    for spec in PLANS.values():
        Plan.objects.filter(code=spec.code).update(features=sorted(spec.entitlements))


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_i18_price_catalog")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
