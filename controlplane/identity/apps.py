from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "controlplane.identity"
    label = "identity"
    verbose_name = "Identity (approver groups, SCIM)"

    def ready(self) -> None:
        from controlplane.identity import openapi  # noqa: F401 - registers the schema extension
