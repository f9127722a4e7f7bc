from django.apps import AppConfig


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = "BYOK"

    def ready(self) -> None:
        from byok import scopes  # noqa: F401 - registers the app's API key scopes
        from byok.demo import seed_byok_demo
        from controlplane.tenancy.management.commands.seed_demo import SEED_DEMO_HOOKS

        if seed_byok_demo not in SEED_DEMO_HOOKS:
            SEED_DEMO_HOOKS.append(seed_byok_demo)
