"""SCIM state per tenant: bearer tokens, the identities an IdP provisioned, and their email index."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower, Upper

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class ScimToken(models.Model):
    """``tgscim_<prefix>_<secret>``: only the prefix and HMAC-SHA256(pepper, secret) are stored.

    The token is the tenant: whoever presents it provisions that tenant and no other.
    """

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("sct"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="scim_tokens"
    )
    name = models.CharField(max_length=200, help_text="Which identity provider uses it.")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the token was rotated with a grace period."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "SCIM token"
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="scim_token_digest_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"tgscim_{self.prefix}_…"

    def state(self, now) -> str:
        """``active``, ``rotated`` (works until ``expires_at``), ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None:
            return "expired" if self.expires_at <= now else "rotated"
        return "active"


class ScimUser(models.Model):
    """One person as a tenant's identity provider describes them, linked to a Tollgate user.

    ``attributes`` holds the SCIM document (writable attributes, schema spelling); the columns
    beside it are copies kept for uniqueness, filters and sorting. ``active`` is what the IdP
    stated: null (never stated) counts as active.
    """

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("scu"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="scim_users"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scim_identities"
    )
    user_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True, default="")
    display_name = models.CharField(max_length=255, blank=True, default="")
    active = models.BooleanField(null=True)
    attributes = models.JSONField(default=dict)
    owns_user = models.BooleanField(
        default=True,
        help_text="The Tollgate user was created by SCIM for this tenant (else an existing "
        "member was linked, whose profile and other tenants SCIM leaves alone).",
    )
    restore_role = models.CharField(
        max_length=16, default="member", help_text="The membership role reactivation restores."
    )
    deprovisioned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id", "created_at", "id"]
        verbose_name = "SCIM user"
        constraints = [
            models.UniqueConstraint(F("tenant"), Lower("user_name"), name="scim_user_name_unique"),
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~Q(external_id=""),
                name="scim_user_external_id_unique",
            ),
            models.UniqueConstraint(fields=["tenant", "user"], name="scim_user_one_per_user"),
            models.CheckConstraint(
                condition=Q(active=False, deprovisioned_at__isnull=False)
                | (Q(deprovisioned_at__isnull=True) & (Q(active=True) | Q(active__isnull=True))),
                name="scim_user_inactive_iff_deprovisioned",
            ),
            models.CheckConstraint(
                condition=Q(restore_role__in=["owner", "admin", "member"]),
                name="scim_user_restore_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_name} ({self.tenant_id})"

    @property
    def is_active(self) -> bool:
        return self.active is not False


class ScimUserEmail(models.Model):
    """An index of ``emails`` (filters like ``emails.value eq``); rewritten with the document."""

    scim_user = models.ForeignKey(ScimUser, on_delete=models.CASCADE, related_name="email_index")
    position = models.PositiveSmallIntegerField()
    # Null when the value has no such sub-attribute (unassigned is not the empty string).
    value = models.CharField(max_length=2048, null=True, blank=True)
    type = models.CharField(max_length=2048, null=True, blank=True)
    display = models.CharField(max_length=2048, null=True, blank=True)
    primary = models.BooleanField(null=True)

    class Meta:
        ordering = ["scim_user_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["scim_user", "position"], name="scim_user_email_position_unique"
            ),
        ]
        indexes = [models.Index(Upper("value"), name="scim_user_email_value_idx")]

    def __str__(self) -> str:
        return self.value
