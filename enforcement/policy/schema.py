"""The JSON Schema of a policy document (published at /api/v1/policies/schema)."""

from __future__ import annotations

USD = {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$"}
MODE = {"enum": ["shadow", "soft", "hard"]}
MODES_BY_CLASS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"prod": MODE, "nonprod": MODE},
}
APPROVERS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
        },
        "roles": {
            "type": "array",
            "items": {"enum": ["owner", "admin", "member"]},
            "uniqueItems": True,
        },
        "quorum": {"type": "integer", "minimum": 1, "maximum": 10},
        "separate_from_requester": {"type": "boolean"},
    },
}
RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "when", "then"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]{0,62}$"},
        "description": {"type": "string"},
        "when": {"type": "string", "minLength": 1, "maxLength": 4000},
        "then": {"enum": ["allow", "deny", "require_approval", "allow_with_credits_only"]},
        "reason_code": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]{1,63}$"},
        "message": {"type": "string", "maxLength": 500},
        "remediation": {"type": "string", "maxLength": 500},
        "approvers": APPROVERS,
    },
}
POLICY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:tollgate:policy:v1",
    "title": "Tollgate policy document",
    "type": "object",
    "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "version": {"const": 1, "description": "Document format version."},
        "description": {"type": "string"},
        "environments": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "prod": {
                    "type": "array",
                    "items": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,63}$"},
                    "uniqueItems": True,
                }
            },
        },
        "modes": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "default": MODES_BY_CLASS,
                "sources": {
                    "type": "object",
                    "propertyNames": {"pattern": r"^[a-z][a-z0-9_.-]{0,31}$"},
                    "additionalProperties": MODES_BY_CLASS,
                },
            },
        },
        "fail_modes": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "prod": {"enum": ["open", "closed"]},
                "nonprod": {"enum": ["open", "closed"]},
            },
        },
        "on_rule_error": {
            "type": "object",
            "additionalProperties": False,
            "description": "What a rule that fails at run time (or exceeds its evaluation "
            "budget) answers, per environment class: deny (default) or allow (flagged).",
            "properties": {
                "prod": {"enum": ["deny", "allow"]},
                "nonprod": {"enum": ["deny", "allow"]},
            },
        },
        "decision_deadline_ms": {"type": "integer", "minimum": 10, "maximum": 10000},
        "ceilings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "plan_usd": {"oneOf": [USD, {"type": "null"}]},
                "enterprise_usd": {"oneOf": [USD, {"type": "null"}]},
            },
        },
        "approval": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threshold_usd": {"oneOf": [USD, {"type": "null"}]},
                "approvers": APPROVERS,
                "ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 30 * 24 * 3600},
            },
        },
        "unbudgeted": {"enum": ["allow", "deny"]},
        "reservations": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "default_ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 30 * 24 * 3600},
                "max_ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 30 * 24 * 3600},
            },
        },
        "rules": {"type": "array", "items": RULE, "maxItems": 500},
        "llm": {
            "type": "object",
            "additionalProperties": False,
            "description": "Request-shape caps of LLM calls (the proxy and /api/v1/llm/"
            "reservations): checked before anything is reserved or sent.",
            "properties": {
                "max_prompt_bytes": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 64 * 1024 * 1024,
                    "description": "Largest prompt (UTF-8 bytes of messages and system); "
                    "never above the deployment's LLM_MAX_PROMPT_BYTES.",
                },
                "max_tokens": {
                    "type": "object",
                    "description": "Largest max_tokens per model id; '*' for every other "
                    "model. A call without max_tokens is bounded by this cap (else the "
                    "model's maximum output).",
                    "propertyNames": {"minLength": 1, "maxLength": 200},
                    "additionalProperties": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 10_000_000,
                    },
                    "maxProperties": 1000,
                },
            },
        },
        "unit_prices": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kubernetes": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "cpu_core_hour_usd": USD,
                        "memory_gib_hour_usd": USD,
                        "gpu_hour_usd": USD,
                        "hours_per_month": {"type": "integer", "minimum": 1, "maximum": 744},
                    },
                },
                "terraform": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "Monthly USD per resource a plan creates, by resource type "
                    "(HCP Terraform run tasks cost a plan's resource_changes with it).",
                    "properties": {
                        "resource_monthly_usd": {
                            "type": "object",
                            "propertyNames": {"pattern": r"^[a-z0-9_]{1,128}$"},
                            "additionalProperties": USD,
                        }
                    },
                },
            },
        },
        "kubernetes": {
            "type": "object",
            "additionalProperties": False,
            "description": "The admission webhook: which project/environment a namespace "
            "belongs to (objects may override with tollgate.io/project and "
            "tollgate.io/environment annotations) and how many nodes a DaemonSet runs on.",
            "properties": {
                "namespaces": {
                    "type": "object",
                    "propertyNames": {"pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["project", "environment"],
                        "properties": {
                            "project": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]{1,63}$"},
                            "environment": {
                                "type": "string",
                                "pattern": r"^[A-Za-z0-9_.-]{1,63}$",
                            },
                        },
                    },
                },
                "daemonset_node_count": {"type": "integer", "minimum": 1, "maximum": 100000},
            },
        },
    },
}

DEFAULT_DOCUMENT = {
    "version": 1,
    "description": "Default policy: hard enforcement everywhere, prod fails closed.",
    "environments": {"prod": ["prod", "production"]},
    "modes": {"default": {"prod": "hard", "nonprod": "hard"}, "sources": {}},
    "fail_modes": {"prod": "closed", "nonprod": "open"},
    "on_rule_error": {"prod": "deny", "nonprod": "deny"},
    "decision_deadline_ms": 250,
    "ceilings": {"plan_usd": None, "enterprise_usd": None},
    "approval": {
        "threshold_usd": None,
        "approvers": {"roles": ["owner", "admin"], "groups": [], "quorum": 1},
        "ttl_seconds": 86400,
    },
    "unbudgeted": "allow",
    "reservations": {"default_ttl_seconds": 900, "max_ttl_seconds": 7 * 24 * 3600},
    "rules": [],
    "unit_prices": {
        "kubernetes": {
            "cpu_core_hour_usd": "0.031611",
            "memory_gib_hour_usd": "0.004237",
            "gpu_hour_usd": "2.48",
            "hours_per_month": 730,
        }
    },
}
