"""A validated policy document turned into what the hot path needs: compiled once per hash.

``compile_policy`` is called with a document that ``validate_document`` accepted (normalised,
defaults merged). CEL programs are compiled here and nowhere else; the per-process cache is
keyed by the document's sha256, so a published version is compiled at most once per process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cel

from controlplane.core.money import parse_usd
from enforcement.policy.document import document_sha256, validate_document
from enforcement.policy.schema import DEFAULT_DOCUMENT

CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    program: Any  # cel.Program
    then: str
    reason_code: str
    message: str
    remediation: str
    approvers: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    sha256: str
    version: int | None
    document: dict[str, Any]
    prod_environments: frozenset[str]
    modes_default: dict[str, str]
    modes_by_source: dict[str, dict[str, str]]
    fail_modes: dict[str, str]
    rule_error_answers: dict[str, str]
    deadline_ms: int
    plan_ceiling: int | None
    enterprise_ceiling: int | None
    approval_threshold: int | None
    approvers: dict[str, Any]
    approval_ttl_seconds: int
    unbudgeted: str
    default_ttl_seconds: int
    max_ttl_seconds: int
    rules: tuple[CompiledRule, ...]
    llm_max_prompt_bytes: int | None = None
    llm_max_tokens: dict[str, int] | None = None

    def llm_output_cap(self, model: str) -> int | None:
        """The policy's largest max_tokens for ``model`` (its own entry, else ``*``)."""
        caps = self.llm_max_tokens or {}
        return caps.get(model, caps.get("*"))

    def env_class(self, environment: str) -> str:
        return "prod" if environment in self.prod_environments else "nonprod"

    def mode(self, source: str, env_class: str) -> str:
        by_source = self.modes_by_source.get(source) or {}
        return by_source.get(env_class) or self.modes_default.get(env_class) or "hard"

    def fail_mode(self, env_class: str) -> str:
        return self.fail_modes.get(env_class, "closed")

    def on_rule_error(self, env_class: str) -> str:
        """``deny`` or ``allow``: the answer when a rule fails (never the gate's fail mode)."""
        return self.rule_error_answers.get(env_class, "deny")

    def approval_routing(self, *, rule_id: str | None, env_class: str) -> dict[str, Any]:
        """Who may approve: the matching rule's approvers, else the document's default."""
        rule = next((r for r in self.rules if r.id == rule_id), None) if rule_id else None
        # A rule's approvers replace the document's default approvers (no partial merge).
        approvers = rule.approvers if rule is not None and rule.approvers else self.approvers
        return {
            "rule_id": rule_id,
            "groups": list(approvers.get("groups", [])),
            "roles": list(approvers.get("roles", [])),
            "quorum": int(approvers.get("quorum", 1)),
            # Unless the document says otherwise: separation on for prod, off for nonprod.
            "separate_from_requester": bool(
                approvers.get("separate_from_requester", env_class == "prod")
            ),
            "ttl_seconds": self.approval_ttl_seconds,
        }


def _micros(value: str | None) -> int | None:
    return None if value is None else parse_usd(value)


def compile_policy(document: dict[str, Any], *, version: int | None = None) -> CompiledPolicy:
    """Compile a normalised, valid document (raises ValueError if a rule does not compile)."""
    rules = tuple(
        CompiledRule(
            id=rule["id"],
            program=cel.compile(rule["when"]),
            then=rule["then"],
            reason_code=rule.get("reason_code", ""),
            message=rule.get("message", ""),
            remediation=rule.get("remediation", ""),
            approvers=rule.get("approvers"),
        )
        for rule in document.get("rules", [])
    )
    modes = document["modes"]
    approval = document["approval"]
    reservations = document["reservations"]
    return CompiledPolicy(
        sha256=document_sha256(document),
        version=version,
        document=document,
        prod_environments=frozenset(document["environments"].get("prod", [])),
        modes_default=dict(modes.get("default", {})),
        modes_by_source={k: dict(v) for k, v in modes.get("sources", {}).items()},
        fail_modes=dict(document["fail_modes"]),
        # Documents stored before the setting existed deny on rule errors, like the default.
        rule_error_answers=dict(document.get("on_rule_error") or {}),
        deadline_ms=int(document["decision_deadline_ms"]),
        plan_ceiling=_micros(document["ceilings"].get("plan_usd")),
        enterprise_ceiling=_micros(document["ceilings"].get("enterprise_usd")),
        approval_threshold=_micros(approval.get("threshold_usd")),
        approvers=dict(approval.get("approvers", {})),
        approval_ttl_seconds=int(approval.get("ttl_seconds", 86400)),
        unbudgeted=document["unbudgeted"],
        default_ttl_seconds=int(reservations["default_ttl_seconds"]),
        max_ttl_seconds=int(reservations["max_ttl_seconds"]),
        rules=rules,
        llm_max_prompt_bytes=(document.get("llm") or {}).get("max_prompt_bytes"),
        llm_max_tokens=dict((document.get("llm") or {}).get("max_tokens") or {}) or None,
    )


_cache: OrderedDict[str, CompiledPolicy] = OrderedDict()
_lock = threading.Lock()


def compiled_for(*, sha256: str, version: int | None, load_document) -> CompiledPolicy:
    """The compiled policy for a hash; ``load_document()`` is only called on a cache miss."""
    key = f"{sha256}:{version}"
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    compiled = compile_policy(load_document(), version=version)
    with _lock:
        _cache[key] = compiled
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def default_policy() -> CompiledPolicy:
    """The built-in default (used by tenants that predate policies, and as the fallback)."""
    document = validate_document(DEFAULT_DOCUMENT).document
    assert document is not None
    sha = document_sha256(document)
    return compiled_for(sha256=sha, version=None, load_document=lambda: document)


def cache_clear() -> None:
    with _lock:
        _cache.clear()
