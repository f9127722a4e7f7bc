from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing.demo import seed_billing_demo
        from controlplane.tenancy.management.commands.seed_demo import SEED_DEMO_HOOKS

        if seed_billing_demo not in SEED_DEMO_HOOKS:
            SEED_DEMO_HOOKS.append(seed_billing_demo)
