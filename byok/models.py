"""BYOK vault rows: encrypted provider credentials and per-tenant BYOK settings.

The plaintext key is never a column: ``ciphertext`` is an AES-256-GCM envelope (byok.crypto)
bound to tenant + credential id, ``fingerprint`` an HMAC under a server pepper, ``last4`` the
display suffix.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from byok.providers import ProbeStatus, provider_names
from controlplane.core.ids import id_factory
from controlplane.tenancy.models import TenantScopedQuerySet


def _provider_choices() -> list[tuple[str, str]]:
    from byok.providers import get_adapter

    return [(name, get_adapter(name).display_name) for name in provider_names()]


class CredentialStatus(models.TextChoices):
    """Probe classifications plus ``revoked`` (operator action) and ``replaced`` (rotated out)."""

    VALID = ProbeStatus.valid.value
    INVALID = ProbeStatus.invalid.value
    RATE_LIMITED = ProbeStatus.rate_limited.value
    PROVIDER_ERROR = ProbeStatus.provider_error.value
    TIMEOUT = ProbeStatus.timeout.value
    UNREACHABLE = ProbeStatus.unreachable.value
    UNVERIFIABLE = ProbeStatus.unverifiable.value
    REVOKED = "revoked"


# Statuses of a credential that is still the tenant's current one for its provider.
LIVE_STATUSES = [s.value for s in CredentialStatus if s != CredentialStatus.REVOKED]


class ProviderCredential(models.Model):
    id = models.CharField(
        primary_key=True, max_length=32, default=id_factory("byok"), editable=False
    )
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.PROTECT, related_name="byok_credentials"
    )
    provider = models.CharField(max_length=32, choices=_provider_choices)
    label = models.CharField(max_length=200, blank=True, default="")
    ciphertext = models.BinaryField(editable=False)
    kek_version = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64)
    last4 = models.CharField(max_length=4, blank=True, default="")
    masked_key = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=CredentialStatus.choices)
    status_detail = models.CharField(max_length=300, blank=True, default="")
    last_validated_at = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=16, blank=True, default="")
    acknowledged_unverifiable = models.BooleanField(default=False)
    # An OpenAI-compatible upstream of this credential (self-hosted vLLM, Azure OpenAI); empty:
    # the provider's own API. Checked against the egress allowlist on every use (no SSRF).
    base_url = models.URLField(max_length=500, blank=True, default="")
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "provider"], name="byok_cred_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CredentialStatus]),
                name="byok_cred_status_valid",
            ),
            models.CheckConstraint(condition=Q(kek_version__gte=1), name="byok_cred_kek_pos"),
            models.CheckConstraint(
                condition=~Q(status=CredentialStatus.UNVERIFIABLE)
                | Q(acknowledged_unverifiable=True),
                name="byok_cred_unverifiable_acknowledged",
            ),
            models.CheckConstraint(
                condition=~Q(status=CredentialStatus.REVOKED) | Q(revoked_at__isnull=False),
                name="byok_cred_revoked_has_time",
            ),
            # One current credential per tenant and provider; revoked ones are history.
            models.UniqueConstraint(
                fields=["tenant", "provider"],
                condition=~Q(status=CredentialStatus.REVOKED),
                name="byok_cred_one_live_per_provider",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.label or self.masked_key} ({self.status})"


class TenantByokSettings(models.Model):
    """Which providers a tenant requires BYOK for, and its daily BYOK request quota."""

    tenant = models.OneToOneField(
        "tenancy.Tenant", on_delete=models.PROTECT, primary_key=True, related_name="byok_settings"
    )
    required_providers = models.JSONField(default=list, blank=True)
    # Providers for which the LLM gateway may use the platform's own key when the tenant has no
    # credential of its own: an explicit opt-in per provider, never a fallback.
    platform_providers = models.JSONField(default=list, blank=True)
    daily_request_limit = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        verbose_name = "tenant BYOK settings"
        verbose_name_plural = "tenant BYOK settings"

    def __str__(self) -> str:
        return f"BYOK settings of {self.tenant_id}"
