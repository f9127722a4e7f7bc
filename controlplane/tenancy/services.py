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


def _validate_scopes(scopes: Iterable[str]) -> list[str]:
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
    return wanted


def _escalation(code: str, message: str, field: str) -> TollgateError:
    return TollgateError(
        code,
        message,
        remediation="A key issues only keys within its own scopes, binding, user and lifetime.",
        status=403,
        errors=[{"field": field, "message": message, "code": "escalation"}],
    )


def key_within(
    *, issuer: ApiKey, scopes, project_id, environment, expires_at, lifetime: bool = True
) -> None:
    """Raise 403 unless a key with these properties stays inside what ``issuer`` may do.

    The rule for issuing a key through the API, and for revoking one: scopes a subset, binding
    at least as narrow (same project, same environment when the issuer has one), lifetime no
    longer than the issuer's.
    """
    beyond = sorted(set(scopes) - set(issuer.scopes or []))
    if beyond:
        raise _escalation(
            TenancyErrorCode.SCOPE_ESCALATION,
            "A key cannot grant scopes it does not hold: " + ", ".join(beyond) + ".",
            "scopes",
        )
    if issuer.project_id is not None and project_id != issuer.project_id:
        raise _escalation(
            TenancyErrorCode.BINDING_ESCALATION,
            f"This key is bound to project {issuer.project.slug!r}: it only reaches keys bound "
            "to that project.",
            "project",
        )
    if issuer.environment and environment != issuer.environment:
        raise _escalation(
            TenancyErrorCode.BINDING_ESCALATION,
            f"This key is bound to environment {issuer.environment!r}: it only reaches keys "
            "bound to that environment.",
            "environment",
        )
    if (
        lifetime
        and issuer.expires_at is not None
        and (expires_at is None or expires_at > issuer.expires_at)
    ):
        raise _escalation(
            TenancyErrorCode.LIFETIME_ESCALATION,
            f"This key expires at {issuer.expires_at.isoformat()}: it cannot reach keys that "
            "live longer.",
            "expires_at",
        )


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
    parent: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext, which is never stored and shown once.

    With ``parent`` (a key issuing a key through the API) the new key inherits the parent's
    binding, user and expiry when not given, may not exceed any of them, and records the parent
    and the person accountable for the chain (``created_by``), which separation of duties uses.
    """
    if project is not None and project.tenant_id != tenant.pk:
        raise TollgateError(
            TenancyErrorCode.UNKNOWN_PROJECT,
            "No such project in this tenant.",
            status=400,
            errors=[{"field": "project", "message": "Unknown project.", "code": "invalid"}],
        )
    clean_scopes = _validate_scopes(scopes)
    plan_limits.enforce(tenant=tenant, limit="api_keys", count=lambda: _active_keys(tenant))
    environment = environment or ""
    if parent is not None:
        if parent.tenant_id != tenant.pk:
            raise ValueError("a key issues keys of its own tenant only")
        if user is not None and getattr(user, "pk", user) != parent.user_id:
            raise _escalation(
                TenancyErrorCode.BINDING_ESCALATION,
                "A key cannot issue a key that acts as another person.",
                "user",
            )
        project = project or parent.project
        environment = environment or parent.environment
        expires_at = expires_at or parent.expires_at
        key_within(
            issuer=parent,
            scopes=clean_scopes,
            project_id=project.pk if project else None,
            environment=environment,
            expires_at=expires_at,
        )
        # A child of a person's key stays that person's; the accountable person is inherited
        # from the root of the chain, so no key in it can approve what another one requested.
        user = parent.user
        created_by = parent.created_by or parent.user
    material = keys.generate()
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=material.prefix,
        digest=keys.digest(material.secret),
        scopes=clean_scopes,
        project=project,
        environment=environment,
        expires_at=expires_at,
        user=user,
        created_by=created_by,
        parent=parent,
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
            "user": getattr(user, "pk", None),
            "created_by": getattr(created_by, "pk", None),
            "parent": parent.id if parent else None,
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
    """Revoke a key and every key it issued (transitively); revoking again is a no-op."""
    api_key_revoke_tree(api_key=api_key)
    return ApiKey.objects.get(pk=api_key.pk)


@transaction.atomic
def api_key_revoke_tree(*, api_key: ApiKey) -> list[str]:
    """The one revocation path: ``api_key`` and every live key it issued, level by level, each
    with its ledger entry; returns the ids it revoked now (none for a revoked key)."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    now = db_now()
    revoked: list[str] = []
    level = [locked.pk]
    while level:
        rows = list(
            ApiKey.objects.select_for_update()
            .filter(pk__in=level, revoked_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ApiKey.objects.filter(pk__in=rows).update(revoked_at=now, updated_at=now)
        for key_id in rows:
            ledger_append_control(
                tenant_id=locked.tenant_id,
                kind="api_key.revoked",
                payload={
                    "api_key": key_id,
                    "cascade_from": None if key_id == locked.pk else locked.pk,
                },
            )
            log.info("api_key_revoked", tenant=locked.tenant_id, api_key_id=key_id)
        revoked += rows
        # Children of a key revoked earlier were revoked with it; only walk live branches.
        level = list(
            ApiKey.objects.filter(parent_id__in=rows, revoked_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
    return revoked


@transaction.atomic
def api_keys_revoke_for_person(*, tenant: Tenant, user) -> list[str]:
    """Revoke every key of ``tenant`` that acts as ``user`` and every key those keys issued
    (SCIM deprovisioning, removing a member); returns the revoked ids. Service keys the person
    was only accountable for (``created_by``) keep working: they belong to the tenant."""
    revoked: list[str] = []
    for key in (
        ApiKey.objects.select_for_update()
        .filter(tenant=tenant, user=user, revoked_at__isnull=True)
        .order_by("pk")
    ):
        revoked += api_key_revoke_tree(api_key=key)
    return revoked


def api_key_touch(*, api_key: ApiKey, now: datetime, resolution_seconds: int) -> None:
    """Record last use at most once per resolution window (a conditional UPDATE, no read)."""
    last = api_key.last_used_at
    if last is not None and (now - last).total_seconds() < resolution_seconds:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
