"""Write the catalog's plans; tenants that had no plan keep everything they could do.

Before this migration a tenant without a plan had no paid features and no limits. Putting such
tenants on Enterprise (no limits) keeps every request they could make working after the upgrade;
operators move them to their real plan deliberately (docs/decisions/0006-subscription-states-and-tenant-lifecycle.md).
"""

from django.db import migrations


def seed(apps, schema_editor):
    from billing.catalog import PLANS

    Plan = apps.get_model("billing", "Plan")
    TenantPlan = apps.get_model("billing", "TenantPlan")
    Tenant = apps.get_model("tenancy", "Tenant")
    for spec in PLANS.values():
        Plan.objects.update_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "rank": spec.rank,
                "features": sorted(spec.entitlements),
                "limits": dict(spec.limits),
            },
        )
    planless = Tenant.objects.exclude(pk__in=TenantPlan.objects.values("tenant_id"))
    TenantPlan.objects.bulk_create(
        [TenantPlan(tenant_id=tenant_id, plan_id="enterprise") for tenant_id in planless.values_list("pk", flat=True)]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_i15_subscriptions_dunning"),
        ("tenancy", "0001_initial"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
