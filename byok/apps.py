from django.apps import AppConfig


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = "BYOK"

    def ready(self) -> None:
        from byok import scopes  # noqa: F401 - registers the app's API key scopes
