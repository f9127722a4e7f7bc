from django.apps import AppConfig


class EnforcementConfig(AppConfig):
    name = "enforcement"
    verbose_name = "Enforcement"

    def ready(self) -> None:
        from enforcement import scopes  # noqa: F401 - registers the app's API key scopes
