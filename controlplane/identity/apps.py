from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "controlplane.identity"
    label = "identity"
    verbose_name = "Identity (approver groups, SCIM)"
