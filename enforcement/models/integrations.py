"""HCP Terraform run tasks: an integration (its HMAC key, sealed) and each run it evaluates."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

RUN_TASK_STATES = ["queued", "running", "passed", "failed", "errored"]


class RunTaskIntegration(models.Model):
    """One run task registered in HCP Terraform; its requests count against one project/env."""

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("rti"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="run_task_integrations"
    )
    name = models.CharField(max_length=100)
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="+")
    environment = models.CharField(max_length=63)
    # The HMAC key HCP Terraform signs with, sealed like BYOK keys (byok.vault's key ring).
    ciphertext = models.BinaryField(editable=False)
    kek_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kek_version__gte=1), name="run_task_kek_pos"),
            models.CheckConstraint(condition=~Q(environment=""), name="run_task_env_set"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class RunTaskResult(models.Model):
    """One run-task request: evaluated by a worker, answered by a PATCH to its callback."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        ERRORED = "errored"  # Tollgate could not answer (plan unreadable, callback refused)

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("rtr"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(
        RunTaskIntegration, on_delete=models.CASCADE, related_name="results"
    )
    task_result_id = models.CharField(max_length=100)
    run_id = models.CharField(max_length=100)
    stage = models.CharField(max_length=32)
    organization_name = models.CharField(max_length=200, blank=True, default="")
    workspace_name = models.CharField(max_length=200, blank=True, default="")
    plan_json_api_url = models.URLField(max_length=2000)
    callback_url = models.URLField(max_length=2000)
    # The run's short-lived access token, sealed; wiped once the callback is answered.
    token_ciphertext = models.BinaryField(editable=False)
    kek_version = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    message = models.TextField(blank=True, default="")
    decision = models.ForeignKey(
        "enforcement.Decision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    callback_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "task_result_id"], name="run_task_result_once"
            ),
            models.CheckConstraint(
                condition=Q(state__in=RUN_TASK_STATES), name="run_task_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.stage}: {self.state}"
