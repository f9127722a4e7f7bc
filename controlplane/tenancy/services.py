"""The only write path for tenancy: tenants, projects, memberships, API keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog
from django.db import IntegrityError, transaction

from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.tenancy import keys, plan_limits
from controlplane.tenancy.errors import TenancyErrorCode
from controlplane.tenancy.models import ApiKey, Membership, Project, Tenant
from controlplane.tenancy.scopes import all_scopes, is_known_scope

log = structlog.get_logger(__name__)

# Hooks run inside the tenant_create transaction; higher layers register them (e.g. default policy).
TENANT_CREATED_HOOKS: list = []


@transaction.atomic
def tenant_create(*, slug: str, name: str) -> Tenant:
    """Create an active tenant and run the registered tenant-created hooks in the same transaction."""
    if Tenant.objects.filter(slug=slug).exists():
        raise TollgateError(
            TenancyErrorCode.TENANT_SLUG_TAKEN,
            f"A tenant with slug {slug!r} already exists.",
            remediation="Choose another slug.",
            status=409,
        )
    tenant = Tenant.objects.create(slug=slug, name=name)
    ledger_append_control(
        tenant_id=tenant.id, kind="tenant.created", payload={"slug": slug, "name": name}
    )
    for hook in TENANT_CREATED_HOOKS:
        hook(tenant=tenant)
    log.info("tenant_created", tenant=tenant.id, slug=slug)
    return tenant


@transaction.atomic
def tenant_set_lifecycle(*, tenant: Tenant, lifecycle: str) -> Tenant:
    """Move a tenant to active/suspended/terminated; terminated is final."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.lifecycle == Tenant.Lifecycle.TERMINATED and lifecycle != tenant.lifecycle:
        raise TollgateError(
            TenancyErrorCode.TENANT_TERMINATED,
            "A terminated tenant cannot be reactivated.",
            remediation="Create a new tenant.",
            status=409,
        )
    if lifecycle not in Tenant.Lifecycle.values:
        raise ValueError(f"unknown lifecycle {lifecycle!r}")
    previous = tenant.lifecycle
    tenant.lifecycle = lifecycle
    tenant.save(update_fields=["lifecycle", "updated_at"])
    ledger_append_control(
        tenant_id=tenant.id,
        kind="tenant.lifecycle_changed",
        payload={"from": previous, "to": lifecycle},
    )
    log.info("tenant_lifecycle_changed", tenant=tenant.id, lifecycle=lifecycle)
    return tenant


@transaction.atomic
def tenant_rename(*, tenant: Tenant, name: str) -> Tenant:
    """Change a tenant's display name (the slug never changes)."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.name != name:
        previous, tenant.name = tenant.name, name
        tenant.save(update_fields=["name", "updated_at"])
        ledger_append_control(
            tenant_id=tenant.id, kind="tenant.renamed", payload={"from": previous, "to": name}
        )
    return tenant


def project_create(*, tenant: Tenant, slug: str, name: str | None = None) -> Project:
    """Create a project whose slug is unique within the tenant."""
    try:
        with transaction.atomic():
            plan_limits.enforce(
                tenant=tenant,
                limit="projects",
                count=lambda: Project.objects.filter(tenant=tenant).count(),
            )
            project = Project.objects.create(tenant=tenant, slug=slug, name=name or slug)
            ledger_append_control(
                tenant_id=tenant.id,
                kind="project.created",
                payload={"project": project.id, "slug": slug},
            )
    except IntegrityError as exc:
        raise TollgateError(
            TenancyErrorCode.PROJECT_SLUG_TAKEN,
            f"Project {slug!r} already exists in this tenant.",
            remediation="Use the existing project or choose another slug.",
            status=409,
            errors=[{"field": "slug", "message": "Already taken.", "code": "unique"}],
        ) from exc
    log.info("project_created", tenant=tenant.id, project=project.id, slug=slug)
    return project


@transaction.atomic
def project_rename(*, project: Project, name: str) -> Project:
    """Change a project's display name (the slug never changes)."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.name != name:
        previous, project.name = project.name, name
        project.save(update_fields=["name", "updated_at"])
        ledger_append_control(
            tenant_id=project.tenant_id,
            kind="project.renamed",
            payload={"project": project.id, "from": previous, "to": name},
        )
    return project


@transaction.atomic
def membership_set(*, tenant: Tenant, user, role: str) -> Membership:
    """Add a user to a tenant or change their role."""
    membership, _ = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    ledger_append_control(
        tenant_id=tenant.id,
        kind="membership.set",
        payload={"user": user.pk, "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, tenant: Tenant, user, reason: str) -> str | None:
    """End a user's membership of a tenant; returns the role it had (None: was not a member)."""
    membership = Membership.objects.select_for_update().filter(tenant=tenant, user=user).first()
    if membership is None:
        return None
    role = membership.role
    membership.delete()
    ledger_append_control(
        tenant_id=tenant.id,
        kind="membership.removed",
        payload={"user": user.pk, "role": role, "reason": reason},
    )
    return role


def _validate_scopes(scopes: Iterable[str], *, issuer_scopes: Iterable[str] | None) -> list[str]:
    wanted = sorted(set(scopes))
    unknown = [scope for scope in wanted if not is_known_scope(scope)]
    if unknown:
        raise TollgateError(
            TenancyErrorCode.UNKNOWN_SCOPE,
            "Unknown scope(s): " + ", ".join(unknown) + ".",
            remediation="Known scopes: " + ", ".join(all_scopes()) + ".",
            errors=[
                {"field": "scopes", "message": f"Unknown scope {s!r}.", "code": "invalid"}
                for s in unknown
            ],
        )
    if issuer_scopes is not None:
        beyond = [scope for scope in wanted if scope not in set(issuer_scopes)]
        if beyond:
            raise TollgateError(
                TenancyErrorCode.SCOPE_ESCALATION,
                "A key cannot grant scopes it does not hold: " + ", ".join(beyond) + ".",
                remediation="Ask for a subset of the calling key's scopes.",
                status=403,
            )
    return wanted


@transaction.atomic
def api_key_issue(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    project: Project | None = None,
    environment: str = "",
    expires_at: datetime | None = None,
    user=None,
    created_by=None,
    issuer_scopes: Iterable[str] | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext, which is never stored and shown once."""
    if project is not None and project.tenant_id != tenant.pk:
        raise TollgateError(
            TenancyErrorCode.PROJECT_NOT_FOUND,
            "No such project in this tenant.",
            status=400,
            errors=[{"field": "project", "message": "Unknown project.", "code": "invalid"}],
        )
    clean_scopes = _validate_scopes(scopes, issuer_scopes=issuer_scopes)
    plan_limits.enforce(tenant=tenant, limit="api_keys", count=lambda: _active_keys(tenant))
    material = keys.generate()
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=material.prefix,
        digest=keys.digest(material.secret),
        scopes=clean_scopes,
        project=project,
        environment=environment or "",
        expires_at=expires_at,
        user=user,
        created_by=created_by,
    )
    ledger_append_control(
        tenant_id=tenant.id,
        kind="api_key.issued",
        payload={
            "api_key": api_key.id,
            "prefix": api_key.prefix,
            "scopes": clean_scopes,
            "project": project.id if project else None,
            "environment": api_key.environment,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "created_by": getattr(created_by, "pk", None),
        },
    )
    log.info("api_key_issued", tenant=tenant.id, api_key_id=api_key.id, prefix=material.prefix)
    return api_key, material.plaintext


def _active_keys(tenant: Tenant) -> int:
    """Keys that still authenticate (not revoked, not expired): what the plan limit counts."""
    from django.db.models import Q

    return (
        ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=db_now()))
        .count()
    )


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; revoking a revoked key is a no-op (DELETE stays idempotent)."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked_at is None:
        locked.revoked_at = db_now()
        locked.save(update_fields=["revoked_at", "updated_at"])
        ledger_append_control(
            tenant_id=locked.tenant_id, kind="api_key.revoked", payload={"api_key": locked.id}
        )
        log.info("api_key_revoked", tenant=locked.tenant_id, api_key_id=locked.id)
    return locked


def api_key_touch(*, api_key: ApiKey, now: datetime, resolution_seconds: int) -> None:
    """Record last use at most once per resolution window (a conditional UPDATE, no read)."""
    last = api_key.last_used_at
    if last is not None and (now - last).total_seconds() < resolution_seconds:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
