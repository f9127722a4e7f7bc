"""Tenants, projects, memberships and API keys. Data and constraints only; writes live in services."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory


class TenantScopedQuerySet(models.QuerySet):
    """Every tenant-owned model uses this; API views read only through ``for_tenant``."""

    def for_tenant(self, tenant) -> TenantScopedQuerySet:
        """Restrict to one tenant's rows (NetBox ``restrict()`` in spirit)."""
        tenant_id = getattr(tenant, "pk", tenant)
        if tenant_id is None:
            return self.none()
        return self.filter(tenant_id=tenant_id)


class Tenant(models.Model):
    class Lifecycle(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        TERMINATED = "terminated"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("ten"), editable=False
    )
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(lifecycle__in=["active", "suspended", "terminated"]),
                name="tenant_lifecycle_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Project(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("prj"), editable=False
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="projects")
    slug = models.SlugField(max_length=63)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "slug"], name="project_slug_unique_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("mem"), editable=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "admin", "member"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id} ({self.role})"


class ApiKey(models.Model):
    """``tg_<prefix>_<secret>``: only the prefix and HMAC-SHA256(pepper, secret) are stored."""

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("key"), editable=False
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="api_keys"
    )
    environment = models.CharField(max_length=63, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="When set, the key acts as this user (e.g. to vote on approvals).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person accountable for the key: who issued it in the admin, or the person "
        "at the root of the chain of keys that issued it through the API.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The API key that issued this one (API issuance); revoking it revokes this one.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="api_key_digest_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (tg_{self.prefix}_…)"

    @property
    def masked(self) -> str:
        return f"tg_{self.prefix}_…"

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    @property
    def is_bound(self) -> bool:
        """Bound to a project and/or an environment: confined to it on every endpoint."""
        return self.project_id is not None or bool(self.environment)
