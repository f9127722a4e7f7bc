"""Stable error codes of the enforcement app."""

from enum import StrEnum

from controlplane.core.errors import register_error_codes


class EnforcementErrorCode(StrEnum):
    IDEMPOTENCY_KEY_REQUIRED = "IDEMPOTENCY_KEY_REQUIRED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_RESERVED = "IDEMPOTENCY_KEY_RESERVED"
    KEY_SCOPE_MISMATCH = "KEY_SCOPE_MISMATCH"
    COST_REQUIRED = "COST_REQUIRED"
    TTL_OUT_OF_RANGE = "TTL_OUT_OF_RANGE"
    GATE_UNAVAILABLE = "GATE_UNAVAILABLE"
    DECISION_CONFLICT = "DECISION_CONFLICT"
    RESERVATION_RESOLVED = "RESERVATION_RESOLVED"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    RESERVATION_NOT_COMMITTED = "RESERVATION_NOT_COMMITTED"
    BILL_FORMAT_INVALID = "BILL_FORMAT_INVALID"
    BUDGET_SCOPE_TAKEN = "BUDGET_SCOPE_TAKEN"
    GRANT_VOIDED = "GRANT_VOIDED"
    AMOUNT_OUT_OF_RANGE = "AMOUNT_OUT_OF_RANGE"
    POLICY_INVALID = "POLICY_INVALID"
    POLICY_NOT_FOUND = "POLICY_NOT_FOUND"
    POLICY_ALREADY_PUBLISHED = "POLICY_ALREADY_PUBLISHED"
    SIMULATION_WINDOW_INVALID = "SIMULATION_WINDOW_INVALID"
    APPROVAL_RESOLVED = "APPROVAL_RESOLVED"
    APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
    APPROVAL_ALREADY_VOTED = "APPROVAL_ALREADY_VOTED"
    APPROVER_NOT_AUTHORIZED = "APPROVER_NOT_AUTHORIZED"
    APPROVER_IS_REQUESTER = "APPROVER_IS_REQUESTER"
    APPROVER_IDENTITY_REQUIRED = "APPROVER_IDENTITY_REQUIRED"
    TENANT_AMBIGUOUS = "TENANT_AMBIGUOUS"
    TOKEN_INVALID = "TOKEN_INVALID"  # noqa: S105 - an error code, not a secret
    TOKEN_ALREADY_CONSUMED = "TOKEN_ALREADY_CONSUMED"  # noqa: S105 - an error code
    SIGNING_KEY_UNAVAILABLE = "SIGNING_KEY_UNAVAILABLE"
    INFRACOST_INVALID = "INFRACOST_INVALID"
    PLAN_CHANGED = "PLAN_CHANGED"
    RUN_TASK_SIGNATURE_INVALID = "RUN_TASK_SIGNATURE_INVALID"
    RUN_TASK_PAYLOAD_INVALID = "RUN_TASK_PAYLOAD_INVALID"
    ADMISSION_REVIEW_INVALID = "ADMISSION_REVIEW_INVALID"
    CLOUDEVENT_INVALID = "CLOUDEVENT_INVALID"
    ACTION_LEASE_LOST = "ACTION_LEASE_LOST"
    ACTION_RESOLVED = "ACTION_RESOLVED"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
    LLM_MODEL_UNKNOWN = "LLM_MODEL_UNKNOWN"
    LLM_PRICE_CATALOG_EMPTY = "LLM_PRICE_CATALOG_EMPTY"
    LLM_NO_CREDENTIAL = "LLM_NO_CREDENTIAL"
    LLM_UPSTREAM_UNAVAILABLE = "LLM_UPSTREAM_UNAVAILABLE"
    LLM_REQUEST_TOO_LARGE = "LLM_REQUEST_TOO_LARGE"
    LLM_REQUEST_INVALID = "LLM_REQUEST_INVALID"
    LLM_USAGE_INVALID = "LLM_USAGE_INVALID"
    LLM_TOKENS_RATE_LIMITED = "LLM_TOKENS_RATE_LIMITED"


register_error_codes(
    EnforcementErrorCode,
    {
        EnforcementErrorCode.IDEMPOTENCY_KEY_REQUIRED: "Send an `Idempotency-Key` header (or "
        "`idempotency_key` in the body) of 1..255 printable ASCII characters, e.g. your CI run id "
        "plus step.",
        EnforcementErrorCode.IDEMPOTENCY_KEY_REUSED: "Use a new idempotency key for a changed "
        "request.",
        EnforcementErrorCode.IDEMPOTENCY_KEY_RESERVED: "Use another idempotency key, e.g. your "
        "CI run id plus step (keys starting with `approval:` are Tollgate's own).",
        EnforcementErrorCode.KEY_SCOPE_MISMATCH: "Use a key bound to this project/environment, "
        "or omit `project`/`environment`.",
        EnforcementErrorCode.COST_REQUIRED: "Send estimated_cost_usd (what to reserve now) or "
        "monthly_delta_usd.",
        EnforcementErrorCode.TTL_OUT_OF_RANGE: "Send ttl_seconds within the policy's "
        "reservations.max_ttl_seconds, or omit it.",
        EnforcementErrorCode.GATE_UNAVAILABLE: "Retry with the same Idempotency-Key after "
        "`Retry-After`; nothing was reserved.",
        EnforcementErrorCode.DECISION_CONFLICT: "Retry with the same Idempotency-Key; if it "
        "persists, report the request_id.",
        EnforcementErrorCode.RESERVATION_RESOLVED: "Nothing to do: the reservation is already "
        "resolved (GET it to see its state).",
        EnforcementErrorCode.RESERVATION_EXPIRED: "Gate the spend again for a new reservation; "
        "a late commit is still recorded.",
        EnforcementErrorCode.RESERVATION_NOT_COMMITTED: "Commit the reservation first, then "
        "reconcile it.",
        EnforcementErrorCode.BILL_FORMAT_INVALID: "Send a FOCUS 1.x CSV (format=focus_csv) or an "
        "OpenAI costs page (format=openai_costs), UTF-8 encoded.",
        EnforcementErrorCode.BUDGET_SCOPE_TAKEN: "PATCH the existing budget (`budget_id`) "
        "instead of creating another.",
        EnforcementErrorCode.GRANT_VOIDED: "Nothing to do: the grant is already void.",
        EnforcementErrorCode.AMOUNT_OUT_OF_RANGE: "Send a realistic amount, or release/commit "
        "the outstanding holds.",
        EnforcementErrorCode.POLICY_INVALID: "Fix every listed field (see "
        "docs/policy-reference.md) and submit again.",
        EnforcementErrorCode.POLICY_NOT_FOUND: "GET /api/v1/policies lists the versions.",
        EnforcementErrorCode.POLICY_ALREADY_PUBLISHED: "Nothing to do: that version is the "
        "published one.",
        EnforcementErrorCode.SIMULATION_WINDOW_INVALID: "Send ISO 8601 `since` (and `until`) at "
        "most 93 days apart, since before until.",
        EnforcementErrorCode.APPROVAL_RESOLVED: "Nothing to do: the request is already resolved "
        "(`status` names how).",
        EnforcementErrorCode.APPROVAL_EXPIRED: "Gate the spend again to open a new approval "
        "request.",
        EnforcementErrorCode.APPROVAL_ALREADY_VOTED: "Ask another approver: quorum needs "
        "distinct people.",
        EnforcementErrorCode.APPROVER_NOT_AUTHORIZED: "Ask a member of an approver group the "
        "routing names (or a tenant owner/admin).",
        EnforcementErrorCode.APPROVER_IS_REQUESTER: "Ask another approver: separation of duties "
        "forbids approving your own spend.",
        EnforcementErrorCode.APPROVER_IDENTITY_REQUIRED: "Use an API key bound to a user, or "
        "the dashboard.",
        EnforcementErrorCode.TENANT_AMBIGUOUS: "Add `?tenant=<slug>` to the URL.",
        EnforcementErrorCode.TOKEN_INVALID: "Re-run with the approval token exactly as issued "
        "for this request; `detail` names the failed check.",
        EnforcementErrorCode.TOKEN_ALREADY_CONSUMED: "Gate again without the token (a new "
        "approval), or replay the original Idempotency-Key.",
        EnforcementErrorCode.SIGNING_KEY_UNAVAILABLE: "Operators: check "
        "SIGNING_KEY_ENCRYPTION_KEY, or rotate with `manage.py rotate_signing_key`.",
        EnforcementErrorCode.INFRACOST_INVALID: "Send the unmodified output of `infracost "
        "breakdown --format json` (USD), or monthly_delta_usd instead of `infracost`.",
        EnforcementErrorCode.PLAN_CHANGED: "The plan changed since it was gated: gate the new "
        "plan with a new run_id/stage (or drop expected_fingerprint on purpose).",
        EnforcementErrorCode.RUN_TASK_SIGNATURE_INVALID: "Set the run task's HMAC key in HCP "
        "Terraform to the `hmac_key` Tollgate returned when the integration was created.",
        EnforcementErrorCode.RUN_TASK_PAYLOAD_INVALID: "Point an HCP Terraform run task (API "
        "version 1) at this URL; the body must be its run-task request.",
        EnforcementErrorCode.ADMISSION_REVIEW_INVALID: "Register the endpoint as a validating "
        'webhook with admissionReviewVersions ["v1"] (deploy/k8s/validating-webhook.yaml).',
        EnforcementErrorCode.CLOUDEVENT_INVALID: "Send a CloudEvents 1.0 event (structured, "
        "binary or batch HTTP mode) whose `data` holds the gate request fields.",
        EnforcementErrorCode.ACTION_LEASE_LOST: "Stop working on this action: another worker "
        "holds a newer lease; lease again to continue.",
        EnforcementErrorCode.ACTION_RESOLVED: "Nothing to do: the action is already completed, "
        "failed for good or cancelled.",
        EnforcementErrorCode.BUDGET_EXCEEDED: "Ask for a smaller `max_tokens`, raise the "
        "budget, or add credits (docs/llm-gateway.md).",
        EnforcementErrorCode.APPROVAL_REQUIRED: "Have the call approved at `approval_url`, then "
        "send it again with the same Idempotency-Key.",
        EnforcementErrorCode.LLM_MODEL_UNKNOWN: "Use a model of the price catalog (GET "
        "/api/v1/prices/{model}); operators import prices with `manage.py import_prices`.",
        EnforcementErrorCode.LLM_PRICE_CATALOG_EMPTY: "Operators: import the price catalog "
        "with `manage.py import_prices` or set PRICE_CATALOG_SOURCE.",
        EnforcementErrorCode.LLM_NO_CREDENTIAL: "Add your own key for the provider (POST "
        "/api/v1/byok/credentials) or ask an operator to allow the platform key for it.",
        EnforcementErrorCode.LLM_UPSTREAM_UNAVAILABLE: "Retry with the same Idempotency-Key; "
        "nothing was charged beyond what the provider reported.",
        EnforcementErrorCode.LLM_REQUEST_TOO_LARGE: "Send a smaller prompt or `max_tokens` "
        "within the policy's llm caps (docs/llm-gateway.md#limits).",
        EnforcementErrorCode.LLM_REQUEST_INVALID: "Send the provider's request body: a JSON "
        "object with `model` and `messages` (or `input` for embeddings).",
        EnforcementErrorCode.LLM_USAGE_INVALID: "Send the provider's `usage` object as it "
        "came back, or `actual_cost_usd`.",
        EnforcementErrorCode.LLM_TOKENS_RATE_LIMITED: "Retry after `Retry-After` seconds, or "
        "ask for a higher tokens-per-minute limit.",
    },
)
