"""Approval requests, votes, one-time approval tokens and the keys that sign them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet

APPROVAL_STATES = ["pending", "approved", "denied", "expired", "cancelled"]


class ApprovalRequest(models.Model):
    """A REQUIRE_APPROVAL decision waiting for people; its reservation is held until it resolves."""

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("apr"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.PROTECT, related_name="approval_requests"
    )
    decision = models.OneToOneField(
        "enforcement.Decision", on_delete=models.PROTECT, related_name="approval"
    )
    reservation = models.OneToOneField(
        "enforcement.Reservation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval",
    )
    routing = models.JSONField(
        help_text="Routing trace: rule_id, groups, roles, quorum, separate_from_requester, ttl."
    )
    required_approvals = models.PositiveSmallIntegerField()
    requester = models.CharField(max_length=254, blank=True, default="")
    requester_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requester_creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person accountable for the requesting key (its creator chain): separation "
        "of duties excludes them as well as requester_user.",
    )
    requester_api_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    expires_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=APPROVAL_STATES), name="approval_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(required_approvals__gte=1), name="approval_quorum_positive"
            ),
            models.CheckConstraint(
                condition=Q(state="pending", resolved_at__isnull=True)
                | (~Q(state="pending") & Q(resolved_at__isnull=False)),
                name="approval_resolved_at_iff_resolved",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(state="pending"), name="approval_expiry_idx"
            ),
            models.Index(fields=["tenant", "state", "-id"], name="approval_tenant_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.state}"


class ApprovalVote(models.Model):
    class Vote(models.TextChoices):
        APPROVE = "approve"
        DENY = "deny"

    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("apv"), editable=False
    )
    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    vote = models.CharField(max_length=8, choices=Vote.choices)
    comment = models.TextField(blank=True, default="", max_length=2000)
    via = models.CharField(max_length=16, default="api", help_text="api | session | admin")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["request_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="approval_vote_once_per_user"),
            models.CheckConstraint(
                condition=Q(vote__in=["approve", "deny"]), name="approval_vote_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.user_id} {self.vote}"


class SigningKey(models.Model):
    """An Ed25519 key signing approval tokens; the private half is AES-GCM encrypted at rest."""

    class State(models.TextChoices):
        ACTIVE = "active"
        RETIRING = "retiring"
        RETIRED = "retired"

    kid = models.CharField(primary_key=True, max_length=40, editable=False)
    public_key = models.CharField(max_length=64, help_text="Raw Ed25519 public key, base64url.")
    private_key_encrypted = models.TextField(
        help_text="base64(nonce || AES-256-GCM ciphertext) under SIGNING_KEY_ENCRYPTION_KEY."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    verify_until = models.DateTimeField(
        null=True, blank=True, help_text="Retiring: the latest expiry of a token it signed."
    )
    created_at = models.DateTimeField()
    retiring_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["active", "retiring", "retired"]),
                name="signing_key_state_valid",
            ),
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="active"), name="signing_key_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.state})"


class ApprovalToken(models.Model):
    """The record of one issued approval token (never the token itself); consumed at most once."""

    jti = models.CharField(primary_key=True, max_length=64, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    request = models.OneToOneField(ApprovalRequest, on_delete=models.PROTECT, related_name="token")
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="tokens")
    claims = models.JSONField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    retrieved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the requester fetched it (it is shown once)."
    )
    consumed_at = models.DateTimeField(null=True, blank=True)
    consumed_by_decision = models.OneToOneField(
        "enforcement.Decision",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="consumed_approval_token",
    )
    consumed_via = models.CharField(max_length=16, blank=True, default="")

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(consumed_by_decision__isnull=True) | Q(consumed_at__isnull=False),
                name="approval_token_decision_needs_consumed",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("issued_at")),
                name="approval_token_exp_after_iat",
            ),
        ]

    def __str__(self) -> str:
        return self.jti
