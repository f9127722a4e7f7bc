"""``rotate_byok_kek``: every credential stays decryptable; resumable, idempotent, no plaintext."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from byok import crypto, services, vault
from byok.models import ProviderCredential
from controlplane.audit.models import LedgerEntry
from tests import factories
from tests.byok.conftest import VALID_KEYS, entitle

pytestmark = pytest.mark.django_db

KEK1 = "1:dGVzdC1vbmx5LWJ5b2sta2VrLXZlcnNpb24tMS0zMmI="
KEK2 = "2:" + crypto.generate_kek_b64()


@pytest.fixture
def credentials(provider_server, settings):
    settings.BYOK_KEKS = KEK1
    made = []
    for i in range(7):
        tenant = factories.make_tenant(f"k{i}")
        entitle(tenant)
        for provider in ("openai", "anthropic"):
            made.append(
                (
                    services.credential_create(
                        tenant=tenant, provider=provider, api_key=VALID_KEYS[provider]
                    ),
                    VALID_KEYS[provider],
                )
            )
    services.credential_revoke(credential_id=made[0][0].pk)
    return made


def _run(*args):
    out = StringIO()
    call_command("rotate_byok_kek", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_rotation_rewraps_everything_and_keeps_it_decryptable(credentials, settings):
    settings.BYOK_KEKS = f"{KEK1},{KEK2}"
    before = {
        c.pk: bytes(ProviderCredential.objects.get(pk=c.pk).ciphertext) for c, _ in credentials
    }
    with pytest.raises(CommandError):
        _run("--check")
    output = _run("--batch-size", "4")
    assert "batch 1: re-wrapped 4" in output
    assert "Re-wrapped 14 credential(s) to KEK version 2; 0 remaining." in output
    assert set(ProviderCredential.objects.values_list("kek_version", flat=True)) == {2}
    for credential, key in credentials[1:]:
        row = ProviderCredential.objects.get(pk=credential.pk)
        assert vault.open_secret(row) == key
        # Only the wrapped DEK changed; the secret's ciphertext body is byte-identical.
        assert (
            bytes(row.ciphertext)[crypto.CIPHERTEXT_OFFSET :]
            == before[credential.pk][crypto.CIPHERTEXT_OFFSET :]
        )
        assert key not in output
    # The old KEK can now be dropped: everything still decrypts with version 2 alone.
    settings.BYOK_KEKS = KEK2
    for credential, key in credentials[1:]:
        assert vault.open_secret(ProviderCredential.objects.get(pk=credential.pk)) == key
    assert "All credentials are on the active KEK version." in _run("--check")
    assert LedgerEntry.objects.filter(kind="byok.credential.rewrapped").count() == 14
    # Idempotent: a second run has nothing to do and writes nothing.
    assert "Re-wrapped 0 credential(s)" in _run()
    assert LedgerEntry.objects.filter(kind="byok.credential.rewrapped").count() == 14


def test_rotation_is_resumable_after_an_interruption(credentials, settings):
    from byok import rotation

    settings.BYOK_KEKS = f"{KEK1},{KEK2}"

    class Stop(Exception):
        pass

    def stop_after_first_batch(_message):
        raise Stop

    with pytest.raises(Stop):
        rotation.rotate_kek(batch_size=5, progress=stop_after_first_batch)
    assert ProviderCredential.objects.filter(kek_version=2).count() == 5
    report = rotation.rotate_kek(batch_size=5)
    assert report.rewrapped == 9 and report.remaining == 0
    for credential, key in credentials[1:]:
        assert vault.open_secret(ProviderCredential.objects.get(pk=credential.pk)) == key


def test_unknown_kek_version_is_reported_not_lost(credentials, settings):
    settings.BYOK_KEKS = KEK2  # version 1 missing from the ring
    with pytest.raises(CommandError, match="could not be re-wrapped"):
        _run()
    assert ProviderCredential.objects.filter(kek_version=1).exclude(ciphertext=b"").count() == 13
