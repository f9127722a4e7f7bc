"""Append-only, hash-chained ledger. Rows are never updated or deleted (a DB trigger enforces it)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a ledger row."""


class AppendOnlyQuerySet(TenantScopedQuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Ledger entries are append-only.")

    def delete(self):
        raise AppendOnlyError("Ledger entries are append-only.")


class LedgerChain(models.Model):
    """The head of one hash chain; locked (FOR UPDATE) to append the next entry."""

    id = models.CharField(primary_key=True, max_length=80)  # "control:ten_…", "bp:bpr_…"
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default="0" * 64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(head_seq__gte=0), name="ledger_chain_seq_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.id}@{self.head_seq}"


class LedgerEntry(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("led"), editable=False
    )
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    chain = models.CharField(max_length=80)
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=64)
    payload = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    recorded_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["chain", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="ledger_entry_chain_seq_unique"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="ledger_entry_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["tenant", "recorded_at"], name="ledger_tenant_time_idx"),
            models.Index(fields=["tenant", "chain", "seq"], name="ledger_tenant_chain_idx"),
        ]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq} {self.kind}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Ledger entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are append-only.")


class LedgerCheckpoint(models.Model):
    """An Ed25519 signature over every chain head at one moment."""

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("ckp"), editable=False
    )
    heads = models.JSONField()  # {chain_id: [seq, hash]}
    heads_sha256 = models.CharField(max_length=64)
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)  # base64url
    created_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"checkpoint {self.id} ({len(self.heads)} chains)"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Checkpoints are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Checkpoints are append-only.")


class LedgerVerification(models.Model):
    """One ledger verification: requested (API), running in a worker, or done with its outcome.

    Admin, ``verify_ledger`` and the beat task verify synchronously and record a ``done`` row;
    ``POST /api/v1/ledger/verify`` queues a row that a worker runs (at most one queued or
    running per tenant).
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("lvr"), editable=False
    )
    tenant_id = models.CharField(max_length=32, blank=True, default="")  # "" = every tenant
    trigger = models.CharField(max_length=16)  # admin | command | task | api
    state = models.CharField(max_length=8, choices=State.choices, default=State.DONE)
    ok = models.BooleanField(null=True, blank=True)  # null until done
    chains_checked = models.IntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    checkpoints_checked = models.IntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    problems_truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "done", "failed"]),
                name="ledger_verification_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="done") | Q(ok__isnull=False),
                name="ledger_verification_done_has_result",
            ),
            models.UniqueConstraint(
                fields=["tenant_id"],
                condition=Q(state__in=["queued", "running"]),
                name="ledger_verification_one_active_per_tenant",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant_id", "state", "-created_at"], name="ledger_verif_tenant_idx"
            )
        ]

    def __str__(self) -> str:
        if self.state != self.State.DONE:
            return f"verification {self.id} ({self.state})"
        return f"verification {self.id} ({'intact' if self.ok else 'FAILED'})"
