"""One row per LLM call committed through the gateway (proxy or ``/api/v1/llm/reservations``).

Written in the commit's transaction, next to the reservation it committed: which model and
catalog version priced it, who called (a person's key or a system key, and the end user the
caller named), the tokens it used, and whether its cost is estimated (usage never arrived: the
whole reservation was committed and the call waits for reconciliation).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class LlmCall(models.Model):
    class Actor(models.TextChoices):
        USER = "user"  # the API key acts for a person
        SYSTEM = "system"  # a service key (pipelines, agents)

    class Surface(models.TextChoices):
        PROXY = "proxy"
        API = "api"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("llm"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="llm_calls")
    reservation = models.OneToOneField(
        "enforcement.Reservation", on_delete=models.PROTECT, related_name="llm_call"
    )
    surface = models.CharField(max_length=8, choices=Surface.choices)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    catalog_version = models.PositiveIntegerField()
    catalog_sha256 = models.CharField(max_length=64)
    api_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=8, choices=Actor.choices)
    end_user = models.CharField(max_length=256, blank=True, default="")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_creation_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField()
    estimated = models.BooleanField(
        default=False, help_text="Usage never arrived: the whole reservation was committed."
    )
    needs_reconciliation = models.BooleanField(default=False)
    estimate_reason = models.CharField(max_length=64, blank=True, default="")
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["tenant", "created_at"],
                name="llm_call_reconcile_idx",
                condition=Q(needs_reconciliation=True),
            )
        ]
        constraints = [
            models.CheckConstraint(condition=Q(cost_micros__gte=0), name="llm_call_cost_nonneg"),
            models.CheckConstraint(
                condition=Q(estimated=False) | Q(needs_reconciliation=True),
                name="llm_call_estimated_reconciles",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.id}"
