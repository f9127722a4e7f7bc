from django.apps import AppConfig


class EnforcementConfig(AppConfig):
    name = "enforcement"
    verbose_name = "Enforcement"

    def ready(self) -> None:
        from billing.gates.providers import register_usage_counter
        from controlplane.audit.outbox import outbox_register_payload
        from controlplane.identity.services.people import USER_DEPROVISION_HOOKS
        from controlplane.tenancy.management.commands.seed_demo import SEED_DEMO_HOOKS
        from controlplane.tenancy.services import TENANT_CREATED_HOOKS
        from enforcement import scopes  # noqa: F401 - registers the app's API key scopes
        from enforcement.demo import seed_enforcement_demo
        from enforcement.services.approvals import approval_votes_withdraw
        from enforcement.services.gate.answer import decision_event_data
        from enforcement.services.policies import policy_create_default
        from enforcement.usage import decisions_this_month

        register_usage_counter("decisions_per_month", decisions_this_month)

        outbox_register_payload("decision.created", decision_event_data)
        if seed_enforcement_demo not in SEED_DEMO_HOOKS:
            SEED_DEMO_HOOKS.append(seed_enforcement_demo)
        if policy_create_default not in TENANT_CREATED_HOOKS:
            TENANT_CREATED_HOOKS.append(policy_create_default)
        if approval_votes_withdraw not in USER_DEPROVISION_HOOKS:
            USER_DEPROVISION_HOOKS.append(approval_votes_withdraw)
