"""Policy versions: drafts, publish (immutable), rollback, the default policy, the active one."""

from __future__ import annotations

from typing import Any

import structlog
import yaml
from django.db import transaction

from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.jsonlimits import unrepresentable
from controlplane.identity.selectors import existing_group_names
from controlplane.tenancy.models import Tenant
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Policy
from enforcement.policy.compiled import CompiledPolicy, compiled_for, default_policy
from enforcement.policy.document import (
    Issue,
    document_sha256,
    parse_text,
    validate_document,
)
from enforcement.policy.schema import DEFAULT_DOCUMENT

log = structlog.get_logger(__name__)

# Last policy each tenant was seen with, for answering by fail mode when the database is down.
_LAST_KNOWN: dict[str, CompiledPolicy] = {}


def _invalid(issues) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.POLICY_INVALID,
        f"The policy document has {len(issues)} error(s); nothing was saved.",
        remediation="Fix every listed field (see docs/policy-reference.md) and submit again.",
        errors=[issue.to_dict() for issue in issues],
    )


def validate_policy_input(
    *, text: str | None = None, data: Any = None, content_type: str = ""
) -> tuple[dict, list, str]:
    """Parse (if text) and validate; returns (document, warnings, source_text) or raises 400."""
    if text is not None:
        data, parse_issues = parse_text(text, content_type=content_type)
        if parse_issues:
            raise _invalid(parse_issues)
    if text is not None and "\x00" in text:
        raise _invalid([Issue("", "Null characters are not allowed.", "invalid_value")])
    bad = unrepresentable(data, nul=True)
    if bad is not None:  # NUL, 1e999 or "\ud800" cannot be hashed or stored: a 400, not a 500
        raise _invalid([Issue(bad[0], bad[1], "invalid_value")])
    result = validate_document(data, text=text)
    if not result.ok:
        raise _invalid(result.errors)
    source = text if text is not None else yaml.safe_dump(data, sort_keys=False)
    return result.document, [w.to_dict() for w in result.warnings], source


UNKNOWN_GROUP = "unknown_approver_group"


def _routings(document: dict) -> list[tuple[str, dict]]:
    """(field path, approvers) of every routing in a normalised document."""
    found = [("approval.approvers", document.get("approval", {}).get("approvers") or {})]
    for index, rule in enumerate(document.get("rules", [])):
        if rule.get("approvers"):
            found.append((f"rules[{index}].approvers", rule["approvers"]))
    return found


def routing_group_warnings(*, tenant: Tenant, document: dict) -> list[dict]:
    """Warnings for routings that name approver groups this tenant does not have.

    A warning, not an error: SCIM may create the group later. When a routing names no role
    either, nobody at all can decide what it routes, and the message says so.
    """
    routings = _routings(document)
    named = {g for _, approvers in routings for g in approvers.get("groups", [])}
    existing = existing_group_names(tenant_id=tenant.pk, names=named)
    warnings = []
    for path, approvers in routings:
        missing = [g for g in approvers.get("groups", []) if g not in existing]
        if not missing:
            continue
        roles = approvers.get("roles") or []
        consequence = (
            f"only the roles {', '.join(roles)} can decide what it routes"
            if roles
            else "nobody can decide what it routes: such requests wait until they expire"
        )
        warnings.append(
            {
                "field": f"{path}.groups",
                "message": f"Approver group(s) {', '.join(missing)} do not exist in this tenant; "
                f"{consequence}. Create them (admin: Approver groups, or SCIM) or fix the names.",
                "code": UNKNOWN_GROUP,
            }
        )
    return warnings


def _lock_tenant(tenant: Tenant) -> None:
    Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk", flat=True).first()


def _next_version(tenant: Tenant) -> int:
    last = (
        Policy.objects.filter(tenant=tenant).order_by("-version").values_list("version", flat=True)
    )
    return (last.first() or 0) + 1


@transaction.atomic
def policy_create_draft(
    *,
    tenant: Tenant,
    text: str | None = None,
    data: Any = None,
    content_type: str = "",
    created_by: str = "",
    description: str = "",
) -> Policy:
    """Validate a document and store it as the next draft version (drafts are immutable too)."""
    document, warnings, source = validate_policy_input(
        text=text, data=data, content_type=content_type
    )
    _lock_tenant(tenant)
    policy = Policy.objects.create(
        tenant=tenant,
        version=_next_version(tenant),
        state=Policy.State.DRAFT,
        document=document,
        source_text=source,
        source_format="json" if "json" in content_type else "yaml",
        sha256=document_sha256(document),
        warnings=[*warnings, *routing_group_warnings(tenant=tenant, document=document)],
        description=description or document.get("description", "")[:500],
        created_by=created_by,
    )
    log.info("policy_draft_created", tenant=tenant.id, version=policy.version, sha256=policy.sha256)
    return policy


def _get_version(tenant: Tenant, version: int) -> Policy:
    policy = Policy.objects.for_tenant(tenant).filter(version=version).first()
    if policy is None:
        raise TollgateError(
            EnforcementErrorCode.POLICY_NOT_FOUND,
            f"No policy version {version} in this tenant.",
            remediation="GET /api/v1/policies lists the versions.",
            status=404,
        )
    return policy


@transaction.atomic
def policy_publish(
    *, tenant: Tenant, version: int, published_by: str = "", notify: bool = True
) -> Policy:
    """Publish a draft; publishing a retired version rolls back (it becomes a new version).

    Returns the published row. The previous published version is retired; a ledger event on the
    tenant control chain and an outbox event record the change in the same transaction.
    """
    _lock_tenant(tenant)
    target = _get_version(tenant, version)
    if target.state == Policy.State.PUBLISHED:
        raise TollgateError(
            EnforcementErrorCode.POLICY_ALREADY_PUBLISHED,
            f"Policy version {version} is already the published version.",
            remediation="Create a new draft to change the policy.",
            status=409,
        )
    rolled_back_from = None
    if target.state == Policy.State.RETIRED:
        rolled_back_from = target.version
        target = Policy.objects.create(
            tenant=tenant,
            version=_next_version(tenant),
            state=Policy.State.DRAFT,
            document=target.document,
            source_text=target.source_text,
            source_format=target.source_format,
            sha256=target.sha256,
            warnings=target.warnings,
            description=f"Rollback to version {rolled_back_from}",
            rolled_back_from=rolled_back_from,
            created_by=published_by,
        )
    now = db_now()
    current = Policy.objects.filter(tenant=tenant, state=Policy.State.PUBLISHED).first()
    if current is not None:
        current.state = Policy.State.RETIRED
        current.retired_at = now
        current.save(update_fields=["state", "retired_at"])
    target.state = Policy.State.PUBLISHED
    target.published_at = now
    target.published_by = published_by
    # Groups may have been created (or removed) since the draft: warn about the state at publish.
    target.warnings = [
        *(w for w in target.warnings if w.get("code") != UNKNOWN_GROUP),
        *routing_group_warnings(tenant=tenant, document=target.document),
    ]
    target.save(update_fields=["state", "published_at", "published_by", "warnings"])
    payload = {
        "policy": target.id,
        "version": target.version,
        "sha256": target.sha256,
        "previous_version": current.version if current else None,
        "rolled_back_from": rolled_back_from,
        "published_by": published_by,
    }
    ledger_append_control(tenant_id=tenant.id, kind="policy.published", payload=payload)
    if notify:  # the default policy of a brand-new tenant has no subscribers to tell
        outbox_enqueue(tenant_id=tenant.id, event_type="policy.published", payload=payload)
    log.info("policy_published", tenant=tenant.id, version=target.version, sha256=target.sha256)
    return target


def policy_create_default(*, tenant: Tenant) -> Policy:
    """Every new tenant starts with the built-in default, published as version 1."""
    draft = policy_create_draft(
        tenant=tenant,
        text=yaml.safe_dump(DEFAULT_DOCUMENT, sort_keys=False),
        created_by="system",
        description="Default policy",
    )
    return policy_publish(tenant=tenant, version=draft.version, published_by="system", notify=False)


def active_policy(tenant_id: str) -> CompiledPolicy:
    """The tenant's published policy, compiled (cached per hash); the default when none."""
    row = (
        Policy.objects.filter(tenant_id=tenant_id, state=Policy.State.PUBLISHED)
        .values_list("version", "sha256")
        .first()
    )
    return published_policy(tenant_id, *(row or (None, None)))


def published_policy(tenant_id: str, version: int | None, sha256: str | None) -> CompiledPolicy:
    """The compiled policy for a published (version, hash) just read, remembered as the last
    known; the default when none is published. The document is read only on a cache miss."""
    if version is None:
        compiled = default_policy()
    else:
        compiled = compiled_for(
            sha256=sha256,
            version=version,
            load_document=lambda: Policy.objects.get(tenant_id=tenant_id, version=version).document,
        )
    remember_policy(tenant_id, compiled)
    return compiled


def remember_policy(tenant_id: str, compiled: CompiledPolicy) -> None:
    """Keep the policy a decision just used: the fail mode answers from it when the database
    cannot, and its deadline bounds the next decision's first lock waits."""
    _LAST_KNOWN[tenant_id] = compiled


def last_known_policy(tenant_id: str) -> CompiledPolicy:
    """For the fail path: no database access."""
    return _LAST_KNOWN.get(tenant_id) or default_policy()


def compiled_from_document(document: dict) -> CompiledPolicy:
    return compiled_for(
        sha256=document_sha256(document), version=None, load_document=lambda: document
    )


def compiled_for_row(policy: Policy) -> CompiledPolicy:
    return compiled_for(
        sha256=policy.sha256, version=policy.version, load_document=lambda: policy.document
    )
