from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing.demo import seed_billing_demo
        from billing.limits import check_limit
        from billing.services.plans import tenant_created_default_plan
        from controlplane.tenancy import plan_limits
        from controlplane.tenancy.management.commands.seed_demo import SEED_DEMO_TENANT_HOOKS
        from controlplane.tenancy.services import TENANT_CREATED_HOOKS

        plan_limits.register_limit_checker(check_limit)
        if tenant_created_default_plan not in TENANT_CREATED_HOOKS:
            TENANT_CREATED_HOOKS.append(tenant_created_default_plan)
        if seed_billing_demo not in SEED_DEMO_TENANT_HOOKS:
            SEED_DEMO_TENANT_HOOKS.append(seed_billing_demo)
