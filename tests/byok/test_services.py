"""Credential create/validate/rotate/revoke and resolve_credential against a real fake provider."""

from __future__ import annotations

import pytest

from byok import services, vault
from byok.models import CredentialStatus, ProviderCredential
from byok.providers import ProviderAdapter
from byok.providers import registry as registry_module
from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry, OutboxEvent
from controlplane.core.errors import TollgateError
from tests import factories
from tests.byok.conftest import VALID_KEYS
from tests.fakes.provider_server import unused_port

pytestmark = pytest.mark.django_db

UNAVAILABLE_MODES = {
    "rate_limited": "rate_limited",
    "server_error": "provider_error",
    "unavailable": "provider_error",
    "overloaded": "provider_error",
    "hang": "timeout",
}


def _create(tenant, provider, key=None, **kw):
    return services.credential_create(
        tenant=tenant, provider=provider, api_key=key or VALID_KEYS[provider], **kw
    )


def _events(tenant, kind=None):
    qs = LedgerEntry.objects.filter(chain=control_chain(tenant.id)).order_by("seq")
    return [e for e in qs if kind is None or e.kind == kind]


def _status_events(tenant):
    return list(
        OutboxEvent.objects.filter(
            tenant_id=tenant.id, event_type="byok.credential.status_changed"
        ).order_by("id")
    )


def test_create_valid_stores_encrypted_and_ledgers(tenant, provider_server, provider):
    credential = _create(tenant, provider, label="prod")
    assert credential.status == CredentialStatus.VALID
    assert credential.last4 == VALID_KEYS[provider][-4:]
    assert credential.masked_key.endswith("..." + VALID_KEYS[provider][-4:])
    assert VALID_KEYS[provider].encode() not in bytes(credential.ciphertext)
    assert (
        vault.open_secret(ProviderCredential.objects.get(pk=credential.pk)) == VALID_KEYS[provider]
    )
    (created,) = _events(tenant, "byok.credential.created")
    assert created.payload["credential_id"] == credential.pk
    assert created.payload["status"] == "valid"
    (event,) = _status_events(tenant)
    assert event.payload["status"] == "valid" and event.payload["previous_status"] is None
    # The provider saw its own auth header style.
    (request,) = provider_server.requests
    if provider == "openai":
        assert request.headers["authorization"] == f"Bearer {VALID_KEYS[provider]}"
    else:
        assert request.headers["x-api-key"] == VALID_KEYS[provider]
        assert "anthropic-version" in request.headers


@pytest.mark.parametrize("mode", ["unauthorized", "forbidden"])
def test_create_invalid_key_is_422_and_stores_nothing(tenant, provider_server, provider, mode):
    provider_server.mode = mode
    with pytest.raises(TollgateError) as exc:
        _create(tenant, provider)
    assert exc.value.status_code == 422
    assert exc.value.code == "BYOK_CREDENTIAL_INVALID"
    assert exc.value.extra["cause"] == "invalid"
    assert not ProviderCredential.objects.exists()
    assert _events(tenant, "byok.credential.created") == []


def test_create_unknown_key_is_422(tenant, provider_server, provider):
    with pytest.raises(TollgateError) as exc:
        _create(tenant, provider, key="sk-not-a-key-the-provider-knows-0000")
    assert exc.value.code == "BYOK_CREDENTIAL_INVALID"
    assert not ProviderCredential.objects.exists()


@pytest.mark.parametrize("mode", sorted(UNAVAILABLE_MODES))
def test_create_provider_unavailable_is_503_naming_cause(tenant, provider_server, provider, mode):
    provider_server.mode = mode
    provider_server.retry_after = 17
    with pytest.raises(TollgateError) as exc:
        _create(tenant, provider)
    assert exc.value.status_code == 503
    assert exc.value.code == "BYOK_PROVIDER_UNAVAILABLE"
    assert exc.value.extra["cause"] == UNAVAILABLE_MODES[mode]
    assert UNAVAILABLE_MODES[mode] in exc.value.message
    if mode == "rate_limited":
        assert exc.value.headers["Retry-After"] == "17"
    assert not ProviderCredential.objects.exists()


def test_create_unreachable_is_503(tenant, provider_server, provider, settings):
    settings.BYOK_PROVIDER_BASE_URLS = {provider: f"http://127.0.0.1:{unused_port()}"}
    with pytest.raises(TollgateError) as exc:
        _create(tenant, provider)
    assert exc.value.status_code == 503
    assert exc.value.extra["cause"] == "unreachable"
    assert not ProviderCredential.objects.exists()


@pytest.fixture
def noprobe_provider():
    """A provider with no probe surface, registered only for this test."""

    class NoProbeAdapter(ProviderAdapter):
        name = "noprobe"
        display_name = "No Probe AI"
        default_base_url = "http://127.0.0.1:9"
        supports_probe = False

        def auth_headers(self, api_key):
            return {"authorization": f"Bearer {api_key}"}

    registry_module.register(NoProbeAdapter)
    yield "noprobe"
    registry_module._REGISTRY.pop("noprobe", None)


def test_unverifiable_needs_acknowledgement_and_is_flagged(tenant, noprobe_provider):
    with pytest.raises(TollgateError) as exc:
        _create(tenant, noprobe_provider, key="np-secret-key-123456")
    assert exc.value.code == "BYOK_CREDENTIAL_UNVERIFIABLE"
    assert exc.value.status_code == 422
    assert not ProviderCredential.objects.exists()
    credential = _create(
        tenant, noprobe_provider, key="np-secret-key-123456", acknowledge_unverifiable=True
    )
    assert credential.status == CredentialStatus.UNVERIFIABLE
    assert credential.acknowledged_unverifiable is True
    resolved = services.resolve_credential(tenant, noprobe_provider)
    assert resolved.unverified is True
    # where the tenant requires BYOK, only a validated key will do
    services.byok_settings_set(
        tenant=tenant, required_providers=[noprobe_provider], daily_request_limit=None
    )
    with pytest.raises(TollgateError) as exc:
        services.resolve_credential(tenant, noprobe_provider)
    assert exc.value.status_code == 424
    assert exc.value.extra["credential_status"] == "unverifiable"


def test_second_live_credential_for_provider_is_409(tenant, provider_server, provider):
    _create(tenant, provider)
    with pytest.raises(TollgateError) as exc:
        _create(tenant, provider)
    assert exc.value.status_code == 409
    assert exc.value.code == "BYOK_CREDENTIAL_EXISTS"


def test_create_without_entitlement_is_403(db, provider_server):
    tenant = factories.make_tenant("free")
    with pytest.raises(TollgateError) as exc:
        _create(tenant, "openai")
    assert exc.value.status_code == 403
    assert exc.value.code == "FEATURE_NOT_ENTITLED"
    assert provider_server.requests == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ok", "valid"),
        ("unauthorized", "invalid"),
        ("forbidden", "invalid"),
        ("rate_limited", "rate_limited"),
        ("server_error", "provider_error"),
        ("hang", "timeout"),
    ],
)
def test_validate_records_classified_status(tenant, provider_server, provider, mode, expected):
    credential = _create(tenant, provider)
    provider_server.mode = mode
    credential = services.credential_validate(credential_id=credential.pk, actor="test")
    assert credential.status == expected
    assert credential.last_error_class == ("" if expected == "valid" else expected)
    events = _status_events(tenant)
    if expected == "valid":
        assert len(events) == 1  # only the creation
    else:
        assert events[-1].payload["previous_status"] == "valid"
        assert events[-1].payload["status"] == expected
    assert _events(tenant, "byok.credential.validated")[-1].payload["status"] == expected


def test_rotate_validates_new_key_before_replacing(tenant, provider_server, provider):
    credential = _create(tenant, provider)
    new_key = f"sk-rotated-{provider}-key-9876wxyz"
    # The provider does not know the new key yet: rejected, old key stays.
    with pytest.raises(TollgateError) as exc:
        services.credential_rotate(credential_id=credential.pk, api_key=new_key)
    assert exc.value.code == "BYOK_CREDENTIAL_INVALID"
    stored = ProviderCredential.objects.get(pk=credential.pk)
    assert vault.open_secret(stored) == VALID_KEYS[provider]
    # Provider down: still the old key.
    provider_server.valid_keys.add(new_key)
    provider_server.mode = "unavailable"
    with pytest.raises(TollgateError) as exc:
        services.credential_rotate(credential_id=credential.pk, api_key=new_key)
    assert exc.value.code == "BYOK_PROVIDER_UNAVAILABLE"
    assert (
        vault.open_secret(ProviderCredential.objects.get(pk=credential.pk)) == VALID_KEYS[provider]
    )
    provider_server.mode = "ok"
    rotated = services.credential_rotate(credential_id=credential.pk, api_key=new_key)
    assert rotated.pk == credential.pk and rotated.last4 == "wxyz"
    assert rotated.rotated_at is not None
    assert vault.open_secret(ProviderCredential.objects.get(pk=credential.pk)) == new_key
    (entry,) = _events(tenant, "byok.credential.rotated")
    assert entry.payload["previous_last4"] == VALID_KEYS[provider][-4:]
    provider_server.valid_keys.discard(new_key)


def test_revoke_shreds_ciphertext_and_is_idempotent(tenant, provider_server, provider):
    credential = _create(tenant, provider)
    revoked = services.credential_revoke(credential_id=credential.pk, actor="test")
    assert revoked.status == CredentialStatus.REVOKED
    assert bytes(ProviderCredential.objects.get(pk=credential.pk).ciphertext) == b""
    services.credential_revoke(credential_id=credential.pk, actor="test")
    assert len(_events(tenant, "byok.credential.revoked")) == 1
    assert _status_events(tenant)[-1].payload["status"] == "revoked"
    with pytest.raises(TollgateError) as exc:
        services.credential_validate(credential_id=credential.pk)
    assert exc.value.code == "BYOK_CREDENTIAL_REVOKED"
    # A new credential may be added after revoking the old one.
    assert _create(tenant, provider).pk != credential.pk


# --- resolve_credential -----------------------------------------------------------------------

NON_VALID = [s for s in CredentialStatus.values if s not in ("valid", "unverifiable")]


def test_resolve_returns_valid_credential(tenant, provider_server, provider):
    credential = _create(tenant, provider)
    services.byok_settings_set(
        tenant=tenant, required_providers=[provider], daily_request_limit=None
    )
    resolved = services.resolve_credential(tenant, provider)
    assert resolved.credential_id == credential.pk
    assert resolved.reveal() == VALID_KEYS[provider]
    assert VALID_KEYS[provider] not in repr(resolved)


@pytest.mark.parametrize("status", NON_VALID)
@pytest.mark.parametrize("required", [True, False])
def test_resolve_raises_for_every_non_valid_status(
    tenant, provider_server, provider, status, required
):
    credential = _create(tenant, provider)
    if required:
        services.byok_settings_set(
            tenant=tenant, required_providers=[provider], daily_request_limit=None
        )
    if status == "revoked":
        services.credential_revoke(credential_id=credential.pk)
    else:
        ProviderCredential.objects.filter(pk=credential.pk).update(status=status)
    if status == "revoked" and not required:
        # No credential any more and BYOK not required: the tenant is simply not a BYOK user.
        assert services.resolve_credential(tenant, provider) is None
        return
    with pytest.raises(TollgateError) as exc:
        services.resolve_credential(tenant, provider)
    assert exc.value.status_code == 424
    assert exc.value.code == "BYOK_CREDENTIAL_UNAVAILABLE"
    assert exc.value.extra["credential_status"] == status
    assert status in exc.value.message


def test_resolve_required_without_credential_raises_missing(tenant, provider):
    services.byok_settings_set(
        tenant=tenant, required_providers=[provider], daily_request_limit=None
    )
    with pytest.raises(TollgateError) as exc:
        services.resolve_credential(tenant, provider)
    assert exc.value.status_code == 424
    assert exc.value.extra["credential_status"] == "missing"


def test_resolve_not_required_without_credential_is_none(tenant, provider):
    assert services.resolve_credential(tenant, provider) is None


def test_resolve_is_tenant_scoped(tenant, other_tenant, provider_server, provider):
    _create(tenant, provider)
    services.byok_settings_set(
        tenant=other_tenant, required_providers=[provider], daily_request_limit=None
    )
    with pytest.raises(TollgateError) as exc:
        services.resolve_credential(other_tenant, provider)
    assert exc.value.extra["credential_status"] == "missing"


def test_resolve_unknown_provider_is_400(tenant):
    with pytest.raises(TollgateError) as exc:
        services.resolve_credential(tenant, "gpt")
    assert exc.value.code == "BYOK_UNKNOWN_PROVIDER"


def test_validate_with_missing_kek_is_503_not_500(tenant, provider_server, settings):
    credential = _create(tenant, "openai")
    settings.BYOK_KEKS = "7:" + __import__("byok.crypto").crypto.generate_kek_b64()
    with pytest.raises(TollgateError) as exc:
        services.credential_validate(credential_id=credential.pk)
    assert exc.value.status_code == 503
    assert "KEK version 1" in exc.value.remediation
