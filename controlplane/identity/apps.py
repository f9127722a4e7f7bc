from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "controlplane.identity"
    label = "identity"
    verbose_name = "Identity (approver groups, SCIM)"

    def ready(self) -> None:
        from controlplane.identity import openapi  # noqa: F401 - registers the schema extension
        from controlplane.identity.demo import seed_identity_demo
        from controlplane.tenancy.management.commands.seed_demo import SEED_DEMO_HOOKS

        if seed_identity_demo not in SEED_DEMO_HOOKS:
            SEED_DEMO_HOOKS.append(seed_identity_demo)
