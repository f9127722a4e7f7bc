"""BYOK credential writes and the one selection function every LLM path uses.

Fail closed: a key is stored only after the provider accepted it (or, for a provider with no
probe surface, after an explicit operator acknowledgement). Fail loud: a broken credential is
an explicit error, never a silent switch to platform keys. Network probes run outside database
transactions; each change is ledgered on the tenant control chain in its own transaction, and
status changes go to the outbox as ``byok.credential.status_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction

from billing import entitlements
from billing.catalog import BYOK
from billing.limits import check_limit
from byok import crypto, vault
from byok.egress import check_base_url
from byok.errors import ByokErrorCode
from byok.models import CredentialStatus, ProviderCredential, TenantByokSettings
from byok.providers import ProbeResult, ProbeStatus, UnknownProvider, get_adapter
from controlplane.audit.outbox import outbox_enqueue
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.ids import new_id
from controlplane.tenancy import plan_limits

log = structlog.get_logger(__name__)

STATUS_CHANGED_EVENT = "byok.credential.status_changed"
UNAVAILABLE_STATUSES = frozenset(
    {
        ProbeStatus.rate_limited,
        ProbeStatus.provider_error,
        ProbeStatus.timeout,
        ProbeStatus.unreachable,
    }
)


def base_url_for(provider: str) -> str | None:
    """Deployment override of a provider's base URL (``BYOK_PROVIDER_BASE_URLS``), or None."""
    return (settings.BYOK_PROVIDER_BASE_URLS or {}).get(provider) or None


def probe_key(provider: str, api_key: str, base_url: str = "") -> ProbeResult:
    """Run the provider's authenticated liveness probe with the configured timeout."""
    return get_adapter(provider).probe(
        api_key,
        base_url=base_url or base_url_for(provider),
        timeout=float(settings.BYOK_PROBE_TIMEOUT_SECONDS),
    )


def _adapter_or_400(provider: str):
    try:
        return get_adapter(provider)
    except UnknownProvider:
        raise TollgateError(
            ByokErrorCode.BYOK_UNKNOWN_PROVIDER,
            f"Unknown provider {provider!r}.",
            remediation="Use one of the providers listed in the API schema.",
            errors=[{"field": "provider", "message": "Unknown provider.", "code": "invalid"}],
        ) from None


def _gate(result: ProbeResult, *, provider: str, acknowledge_unverifiable: bool) -> None:
    """Raise unless a probe result allows storing the key (valid, or acknowledged unverifiable)."""
    if result.status is ProbeStatus.valid:
        return
    name = get_adapter(provider).display_name
    if result.status is ProbeStatus.invalid:
        raise TollgateError(
            ByokErrorCode.BYOK_CREDENTIAL_INVALID,
            f"{name} rejected the key: {result.detail}.",
            remediation="Check that you pasted the whole key, that it is not revoked at the "
            "provider and that it may list models; then send it again.",
            status=422,
            errors=[{"field": "api_key", "message": result.detail, "code": "invalid"}],
            extra={"provider": provider, "cause": result.status.value},
        )
    if result.status is ProbeStatus.unverifiable:
        if acknowledge_unverifiable:
            return
        raise TollgateError(
            ByokErrorCode.BYOK_CREDENTIAL_UNVERIFIABLE,
            f"{name} offers no way to verify a key, so it was not stored.",
            remediation="Resend with `acknowledge_unverifiable: true` to store it unverified; "
            "it is flagged and every use may fail at the provider.",
            status=422,
            errors=[
                {
                    "field": "acknowledge_unverifiable",
                    "message": "Required for a provider without a liveness check.",
                    "code": "required",
                }
            ],
            extra={"provider": provider, "cause": result.status.value},
        )
    headers = {}
    if result.status is ProbeStatus.rate_limited and result.retry_after_seconds is not None:
        headers["Retry-After"] = str(result.retry_after_seconds)
    raise TollgateError(
        ByokErrorCode.BYOK_PROVIDER_UNAVAILABLE,
        f"Could not verify the key: {name} is unavailable ({result.status.value}: "
        f"{result.detail}). Nothing was stored.",
        remediation="Retry later; the key is only stored once the provider has accepted it.",
        status=503,
        headers=headers,
        extra={
            "provider": provider,
            "cause": result.status.value,
            "retry_after_seconds": result.retry_after_seconds,
        },
    )


def _ledger(credential: ProviderCredential, kind: str, actor: str, **extra) -> None:
    payload = {
        "credential_id": credential.pk,
        "provider": credential.provider,
        "label": credential.label,
        "status": credential.status,
        "last4": credential.last4,
        "kek_version": credential.kek_version,
        "actor": actor,
    }
    payload.update(extra)
    ledger_append_control(tenant_id=credential.tenant_id, kind=kind, payload=payload)


def _status_changed(
    credential: ProviderCredential, previous: str | None, result: ProbeResult | None, cause: str
) -> None:
    """Outbox event (same transaction) when the status moved."""
    if previous == credential.status:
        return
    outbox_enqueue(
        tenant_id=credential.tenant_id,
        event_type=STATUS_CHANGED_EVENT,
        payload={
            "credential_id": credential.pk,
            "provider": credential.provider,
            "label": credential.label,
            "previous_status": previous,
            "status": credential.status,
            "cause": cause,
            "detail": result.detail if result is not None else "",
            "http_status": result.http_status if result is not None else None,
        },
    )


def _apply_key(credential: ProviderCredential, api_key: str, result: ProbeResult) -> None:
    envelope = vault.seal(api_key, tenant_id=credential.tenant_id, credential_id=credential.pk)
    credential.ciphertext = envelope.blob
    credential.kek_version = envelope.kek_version
    credential.fingerprint = vault.fingerprint(api_key)
    credential.last4 = crypto.last4(api_key)
    credential.masked_key = crypto.mask(api_key)
    credential.status = result.status.value
    credential.status_detail = result.detail[:300]
    credential.last_error_class = "" if result.is_valid else result.status.value
    credential.last_validated_at = db_now()


def credential_create(
    *,
    tenant,
    provider: str,
    api_key: str,
    label: str = "",
    acknowledge_unverifiable: bool = False,
    actor: str = "",
    base_url: str = "",
) -> ProviderCredential:
    """Probe the key, then store it encrypted; raises 422/503 and stores nothing otherwise.

    ``base_url``: an OpenAI-compatible server of the tenant's own (vLLM, Azure OpenAI), refused
    when it resolves to a private or link-local address (``byok.egress``)."""
    entitlements.require(tenant, BYOK)
    _adapter_or_400(provider)
    if base_url:
        check_base_url(base_url)
    if not api_key:
        raise TollgateError(
            "VALIDATION_FAILED",
            "A provider API key is required.",
            errors=[{"field": "api_key", "message": "Required.", "code": "required"}],
        )
    _refuse_if_live_exists(tenant, provider)
    # Checked before the probe (no provider call for a key the plan cannot hold) and again,
    # under the tenant lock, where the row is written.
    check_limit(tenant=tenant, limit="byok_providers", count=_live_credentials(tenant) + 1)
    result = probe_key(provider, api_key, base_url)
    log.info("byok_credential_probe", provider=provider, result=result.status.value, phase="create")
    _gate(result, provider=provider, acknowledge_unverifiable=acknowledge_unverifiable)
    credential = ProviderCredential(
        id=new_id("byok"),
        tenant=tenant,
        provider=provider,
        label=label,
        base_url=base_url,
        acknowledged_unverifiable=result.status is ProbeStatus.unverifiable,
    )
    _apply_key(credential, api_key, result)
    try:
        with transaction.atomic():
            plan_limits.enforce(
                tenant=tenant, limit="byok_providers", count=lambda: _live_credentials(tenant)
            )
            credential.save(force_insert=True)
            _ledger(credential, "byok.credential.created", actor)
            _status_changed(credential, None, result, "created")
    except IntegrityError:
        _refuse_if_live_exists(tenant, provider)
        raise
    log.info(
        "byok_credential_created",
        credential_id=credential.pk,
        provider=provider,
        status=credential.status,
    )
    return credential


def _live_credentials(tenant) -> int:
    """Providers with a live credential (one per provider): what the plan's limit counts."""
    return (
        ProviderCredential.objects.for_tenant(tenant)
        .exclude(status=CredentialStatus.REVOKED)
        .count()
    )


def _refuse_if_live_exists(tenant, provider: str) -> None:
    existing = (
        ProviderCredential.objects.for_tenant(tenant)
        .filter(provider=provider)
        .exclude(status=CredentialStatus.REVOKED)
        .first()
    )
    if existing is not None:
        raise TollgateError(
            ByokErrorCode.BYOK_CREDENTIAL_EXISTS,
            f"This tenant already has a {provider} credential ({existing.pk}).",
            remediation=f"Rotate it with POST /api/v1/byok/credentials/{existing.pk}/rotate, "
            "or revoke it first.",
            status=409,
            extra={"credential_id": existing.pk},
        )


def _refuse_revoked(credential: ProviderCredential) -> None:
    if credential.status == CredentialStatus.REVOKED:
        raise TollgateError(
            ByokErrorCode.BYOK_CREDENTIAL_REVOKED,
            f"Credential {credential.pk} is revoked.",
            remediation="Add a new credential with POST /api/v1/byok/credentials.",
            status=409,
        )


def apply_probe_result(
    *, credential_id: str, result: ProbeResult, actor: str, kind: str
) -> ProviderCredential | None:
    """Record a probe outcome on a credential (ledger + outbox on change); None if revoked."""
    with transaction.atomic():
        credential = ProviderCredential.objects.select_for_update().get(pk=credential_id)
        if credential.status == CredentialStatus.REVOKED:
            return None
        previous = credential.status
        if result.status is ProbeStatus.unverifiable and not credential.acknowledged_unverifiable:
            # Cannot happen for a stored key (the provider would have been unverifiable at
            # create); keep the constraint intact and say so loudly.
            credential.status = CredentialStatus.PROVIDER_ERROR
        else:
            credential.status = result.status.value
        credential.status_detail = result.detail[:300]
        credential.last_error_class = "" if result.is_valid else result.status.value
        credential.last_validated_at = db_now()
        credential.save(
            update_fields=[
                "status",
                "status_detail",
                "last_error_class",
                "last_validated_at",
                "updated_at",
            ]
        )
        _ledger(
            credential,
            kind,
            actor,
            previous_status=previous,
            http_status=result.http_status,
        )
        _status_changed(credential, previous, result, kind)
    if previous != credential.status:
        log.warning(
            "byok_credential_status_changed",
            credential_id=credential.pk,
            provider=credential.provider,
            previous_status=previous,
            status=credential.status,
        )
    return credential


def credential_validate(*, credential_id: str, actor: str = "") -> ProviderCredential:
    """Re-probe a stored key now and record the classified status."""
    credential = ProviderCredential.objects.get(pk=credential_id)
    _refuse_revoked(credential)
    try:
        api_key = vault.open_secret(credential)
    except crypto.DecryptionError:
        log.error(
            "byok_credential_undecryptable",
            credential_id=credential.pk,
            kek_version=credential.kek_version,
        )
        raise TollgateError(
            "SERVICE_UNAVAILABLE",
            "The stored key cannot be decrypted with the configured key-encryption keys.",
            remediation="Operators: make sure BYOK_KEKS still holds KEK version "
            f"{credential.kek_version} (see docs/byok.md, KEK rotation runbook).",
            status=503,
        ) from None
    result = probe_key(credential.provider, api_key, credential.base_url)
    del api_key
    updated = apply_probe_result(
        credential_id=credential.pk, result=result, actor=actor, kind="byok.credential.validated"
    )
    if updated is None:  # revoked while we probed
        _refuse_revoked(ProviderCredential.objects.get(pk=credential_id))
    return updated


def credential_rotate(
    *,
    credential_id: str,
    api_key: str,
    acknowledge_unverifiable: bool = False,
    actor: str = "",
) -> ProviderCredential:
    """Replace a credential's key only after the provider accepted the new one."""
    credential = ProviderCredential.objects.select_related("tenant").get(pk=credential_id)
    entitlements.require(credential.tenant, BYOK)
    _refuse_revoked(credential)
    if not api_key:
        raise TollgateError(
            "VALIDATION_FAILED",
            "A provider API key is required.",
            errors=[{"field": "api_key", "message": "Required.", "code": "required"}],
        )
    result = probe_key(credential.provider, api_key, credential.base_url)
    log.info(
        "byok_credential_probe",
        provider=credential.provider,
        result=result.status.value,
        phase="rotate",
    )
    _gate(result, provider=credential.provider, acknowledge_unverifiable=acknowledge_unverifiable)
    with transaction.atomic():
        credential = ProviderCredential.objects.select_for_update().get(pk=credential_id)
        _refuse_revoked(credential)
        previous = credential.status
        previous_last4 = credential.last4
        _apply_key(credential, api_key, result)
        credential.acknowledged_unverifiable = result.status is ProbeStatus.unverifiable
        credential.rotated_at = credential.last_validated_at
        credential.save()
        _ledger(credential, "byok.credential.rotated", actor, previous_last4=previous_last4)
        _status_changed(credential, previous, result, "rotated")
    log.info("byok_credential_rotated", credential_id=credential.pk, provider=credential.provider)
    return credential


def credential_revoke(*, credential_id: str, actor: str = "") -> ProviderCredential:
    """Revoke a credential and destroy its ciphertext (crypto-shred); idempotent."""
    with transaction.atomic():
        credential = ProviderCredential.objects.select_for_update().get(pk=credential_id)
        if credential.status == CredentialStatus.REVOKED:
            return credential
        previous = credential.status
        credential.status = CredentialStatus.REVOKED
        credential.revoked_at = db_now()
        credential.ciphertext = b""
        credential.status_detail = "revoked"
        credential.save()
        _ledger(credential, "byok.credential.revoked", actor, previous_status=previous)
        _status_changed(credential, previous, None, "revoked")
    log.info("byok_credential_revoked", credential_id=credential.pk, provider=credential.provider)
    return credential


def byok_settings_set(
    *, tenant, required_providers: list[str], daily_request_limit: int | None, actor: str = ""
) -> TenantByokSettings:
    """Set which providers require BYOK and the daily BYOK request quota (ledgered)."""
    for provider in required_providers:
        _adapter_or_400(provider)
    with transaction.atomic():
        row, _ = TenantByokSettings.objects.select_for_update().get_or_create(tenant=tenant)
        row.required_providers = sorted(set(required_providers))
        row.daily_request_limit = daily_request_limit
        row.save()
        ledger_append_control(
            tenant_id=tenant.pk,
            kind="byok.settings.changed",
            payload={
                "required_providers": row.required_providers,
                "daily_request_limit": daily_request_limit,
                "actor": actor,
            },
        )
    return row


# --- Selection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedCredential:
    """A usable BYOK credential; the key is decrypted only by ``reveal()`` at the adapter call."""

    credential_id: str
    tenant_id: str
    provider: str
    unverified: bool

    def reveal(self) -> str:
        """Decrypt the key; pass it straight to the adapter and do not keep it."""
        return vault.open_secret(ProviderCredential.objects.get(pk=self.credential_id))


def byok_required(tenant, provider: str) -> bool:
    """True when the tenant requires BYOK for ``provider``."""
    row = TenantByokSettings.objects.filter(tenant_id=getattr(tenant, "pk", tenant)).first()
    return row is not None and provider in (row.required_providers or [])


def resolve_credential(tenant, provider: str) -> ResolvedCredential | None:
    """The tenant's credential for ``provider`` (chosen explicitly by the caller), or None.

    None means the tenant has no BYOK credential for the provider and does not require one.
    When it has one that is not ``valid`` (or requires one and has none) this raises 424
    ``BYOK_CREDENTIAL_UNAVAILABLE`` naming the status: there is no fallback to a platform key.
    An ``unverifiable`` credential (stored only with an operator acknowledgement) comes back
    flagged ``unverified`` when BYOK is optional for the provider; when the tenant *requires*
    BYOK for it, only a ``valid`` credential is accepted, so unverifiable raises too.
    """
    _adapter_or_400(provider)
    credential = (
        ProviderCredential.objects.for_tenant(tenant)
        .filter(provider=provider)
        .exclude(status=CredentialStatus.REVOKED)
        .first()
    )
    required = byok_required(tenant, provider)
    if credential is None:
        if not required:
            return None
        revoked = (
            ProviderCredential.objects.for_tenant(tenant)
            .filter(provider=provider, status=CredentialStatus.REVOKED)
            .order_by("-revoked_at")
            .first()
        )
        _unavailable(provider, "revoked" if revoked else "missing", revoked)
    usable = credential.status == CredentialStatus.VALID or (
        credential.status == CredentialStatus.UNVERIFIABLE
        and credential.acknowledged_unverifiable
        and not required
    )
    if not usable:
        _unavailable(provider, credential.status, credential)
    return ResolvedCredential(
        credential_id=credential.pk,
        tenant_id=credential.tenant_id,
        provider=provider,
        unverified=credential.status == CredentialStatus.UNVERIFIABLE,
    )


def _unavailable(provider: str, status: str, credential: ProviderCredential | None) -> None:
    what = {
        "missing": "credential is missing",
        "revoked": "credential is revoked",
    }.get(status, f"credential is {status}")
    raise TollgateError(
        ByokErrorCode.BYOK_CREDENTIAL_UNAVAILABLE,
        f"The tenant's own {provider} key cannot be used: the {provider} BYOK {what}. The "
        "request was not sent and there is no fallback to a platform key.",
        remediation="Fix the credential (see docs/byok.md): validate it again, rotate it to a "
        "working key or add one with POST /api/v1/byok/credentials.",
        status=424,
        extra={
            "provider": provider,
            "credential_status": status,
            "credential_id": credential.pk if credential is not None else None,
        },
    )
