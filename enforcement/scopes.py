"""API key scopes owned by the enforcement app."""

from controlplane.tenancy.scopes import register_scope

GATE_WRITE = register_scope("gate:write", "Ask the gate for decisions (reserves money).")
DECISIONS_READ = register_scope("decisions:read", "List and read decisions.")
RESERVATIONS_READ = register_scope("reservations:read", "Read reservations.")
RESERVATIONS_WRITE = register_scope(
    "reservations:write", "Commit, release, extend and reconcile reservations."
)
BUDGETS_READ = register_scope("budgets:read", "List and read budgets.")
BUDGETS_WRITE = register_scope("budgets:write", "Create budgets and change limits.")
CREDITS_READ = register_scope("credits:read", "List credit grants.")
CREDITS_WRITE = register_scope("credits:write", "Grant and void credits.")
POLICIES_READ = register_scope("policies:read", "List and read policy versions; simulate.")
POLICIES_WRITE = register_scope("policies:write", "Create policy drafts.")
POLICIES_PUBLISH = register_scope("policies:publish", "Publish or roll back policy versions.")
APPROVALS_READ = register_scope(
    "approvals:read", "List and read approval requests (the requester key also gets its token)."
)
APPROVALS_WRITE = register_scope(
    "approvals:write", "Approve or deny approval requests (the key must be bound to a user)."
)
INTEGRATIONS_READ = register_scope("integrations:read", "List HCP Terraform run-task integrations.")
INTEGRATIONS_WRITE = register_scope(
    "integrations:write", "Create HCP Terraform run-task integrations (returns their HMAC key)."
)
ACTIONS_READ = register_scope("actions:read", "List and read actions.")
ACTIONS_WRITE = register_scope(
    "actions:write", "Request actions, lease them as a worker, complete, fail or cancel them."
)
LLM_WRITE = register_scope(
    "llm:write", "Call LLMs through the gateway and reserve LLM calls (reserves money)."
)
