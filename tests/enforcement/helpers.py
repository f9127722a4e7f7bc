"""Shared helpers for enforcement tests: gate behaviour is configured by publishing a policy."""

from __future__ import annotations

import copy
from typing import Any

from controlplane.core.money import format_usd
from enforcement.policy.schema import DEFAULT_DOCUMENT
from enforcement.services.policies import policy_create_draft, policy_publish


def publish_policy(tenant, document: dict[str, Any] | None = None, *, text: str | None = None):
    """Create a draft from a document (or YAML text) and publish it; returns the Policy row."""
    draft = policy_create_draft(tenant=tenant, data=document, text=text)
    return policy_publish(tenant=tenant, version=draft.version)


def policy_document(**overrides: Any) -> dict[str, Any]:
    """The default document with top-level sections merged with ``overrides``."""
    document = copy.deepcopy(DEFAULT_DOCUMENT)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return document


def set_gate_settings(
    tenant,
    *,
    modes: dict[str, dict[str, str]] | None = None,
    prod_environments: list[str] | None = None,
    fail_modes: dict[str, str] | None = None,
    approval_threshold_micros: int | None = None,
    plan_ceiling_micros: int | None = None,
    enterprise_ceiling_micros: int | None = None,
    unbudgeted: str | None = None,
    default_ttl_seconds: int | None = None,
    max_ttl_seconds: int | None = None,
    rules: list[dict[str, Any]] | None = None,
):
    """Publish a policy with these settings (``modes`` keyed by source, ``*`` = default)."""
    overrides: dict[str, Any] = {}
    if modes is not None:
        default = modes.get("*", {"prod": "hard", "nonprod": "hard"})
        sources = {k: v for k, v in modes.items() if k != "*"}
        overrides["modes"] = {"default": default, "sources": sources}
    if prod_environments is not None:
        overrides["environments"] = {"prod": prod_environments}
    if fail_modes is not None:
        overrides["fail_modes"] = fail_modes
    if approval_threshold_micros is not None:
        overrides["approval"] = {"threshold_usd": format_usd(approval_threshold_micros)}
    ceilings = {}
    if plan_ceiling_micros is not None:
        ceilings["plan_usd"] = format_usd(plan_ceiling_micros)
    if enterprise_ceiling_micros is not None:
        ceilings["enterprise_usd"] = format_usd(enterprise_ceiling_micros)
    if ceilings:
        overrides["ceilings"] = ceilings
    if unbudgeted is not None:
        overrides["unbudgeted"] = unbudgeted
    reservations = {}
    if default_ttl_seconds is not None:
        reservations["default_ttl_seconds"] = default_ttl_seconds
    if max_ttl_seconds is not None:
        reservations["max_ttl_seconds"] = max_ttl_seconds
    if reservations:
        overrides["reservations"] = reservations
    if rules is not None:
        overrides["rules"] = rules
    return publish_policy(tenant, policy_document(**overrides))
