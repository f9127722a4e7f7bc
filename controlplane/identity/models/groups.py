"""Approver groups: named sets of users per tenant that approval routing refers to by name.

Identity providers manage them over SCIM (``/scim/v2/Groups``, the group's ``id`` is the SCIM id
and ``external_id`` the IdP's); operators can also manage them in the admin.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class ApproverGroup(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("apg"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="approver_groups"
    )
    name = models.CharField(
        max_length=150, help_text="The name approval routing refers to (e.g. 'finops')."
    )
    external_id = models.CharField(
        max_length=255, blank=True, default="", help_text="The identity provider's group id."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="approver_groups"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="approver_group_name_unique"),
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(external_id=""),
                name="approver_group_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant_id})"
