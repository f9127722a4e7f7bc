"""Seed a fresh database for a fault-injection run; prints one JSON line (ids and the key).

python -m tests.servers.seed '{"deadline_ms": 5000}'
"""

from __future__ import annotations

import json
import sys

import django


def expiring(count: int) -> dict:
    """``count`` gate decisions of tenant acme holding money for 1 second (to be swept)."""
    from controlplane.tenancy.models import Tenant
    from tests.enforcement.helpers import gate_service

    tenant = Tenant.objects.get(slug="acme")
    for _ in range(count):
        gate_service(tenant, micros=10_000, ttl_seconds=1)
    return {"expiring": count}


def main(options: dict) -> dict:
    django.setup()
    if options.get("expiring"):
        return expiring(int(options["expiring"]))
    from tests import factories
    from tests.enforcement.helpers import set_gate_settings

    tenant = factories.make_tenant("acme")
    project = factories.make_project(tenant, "payments")
    set_gate_settings(tenant, modes={"*": {"prod": "hard", "nonprod": "hard"}})
    if options.get("deadline_ms"):
        from enforcement.models import Policy
        from enforcement.services.policies import policy_create_draft, policy_publish

        current = Policy.objects.get(tenant=tenant, state="published").document
        draft = policy_create_draft(
            tenant=tenant, data={**current, "decision_deadline_ms": options["deadline_ms"]}
        )
        policy_publish(tenant=tenant, version=draft.version)
    budget = factories.make_budget(tenant, options.get("budget_usd", "1000000.00"), project=project)
    grant = factories.make_grant(tenant, options.get("grant_usd", "100.00"))
    _, plaintext = factories.make_api_key(tenant)
    return {
        "tenant": tenant.id,
        "project": project.slug,
        "budget": budget.id,
        "grant": grant.id,
        "key": plaintext,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})))
