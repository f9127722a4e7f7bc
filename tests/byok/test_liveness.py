"""Liveness task: every classification, outbox + metrics on change, per-provider breakers."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from byok import liveness, services
from byok.models import CredentialStatus, ProviderCredential
from byok.tasks import credentials_probe_task
from controlplane.audit.models import OutboxEvent
from tests.byok.conftest import VALID_KEYS
from tests.fakes.provider_server import unused_port

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def _metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _create(tenant, provider):
    return services.credential_create(
        tenant=tenant, provider=provider, api_key=VALID_KEYS[provider]
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ok", "valid"),
        ("unauthorized", "invalid"),
        ("forbidden", "invalid"),
        ("rate_limited", "rate_limited"),
        ("server_error", "provider_error"),
        ("unavailable", "provider_error"),
        ("overloaded", "provider_error"),
        ("hang", "timeout"),
    ],
)
def test_task_classifies_each_outcome(
    tenant, provider_server, provider, byok_redis, mode, expected
):
    credential = _create(tenant, provider)
    before = _metric("byok_probe_total", provider=provider, result=expected)
    provider_server.mode = mode
    counts = credentials_probe_task()
    assert counts == {expected: 1}
    credential.refresh_from_db()
    assert credential.status == expected
    assert _metric("byok_probe_total", provider=provider, result=expected) == before + 1
    assert _metric("byok_credentials", provider=provider, status=expected) == 1
    events = OutboxEvent.objects.filter(
        tenant_id=tenant.id, event_type="byok.credential.status_changed"
    ).order_by("id")
    if expected == "valid":
        assert events.count() == 1  # creation only; no change, no event
    else:
        assert events.last().payload["previous_status"] == "valid"
        assert events.last().payload["status"] == expected
        assert events.last().payload["cause"] == "byok.credential.probed"


def test_task_unreachable(tenant, provider_server, provider, byok_redis, settings):
    credential = _create(tenant, provider)
    settings.BYOK_PROVIDER_BASE_URLS = {provider: f"http://127.0.0.1:{unused_port()}"}
    assert credentials_probe_task() == {"unreachable": 1}
    credential.refresh_from_db()
    assert credential.status == "unreachable"


def test_recovery_is_a_status_change_back_to_valid(tenant, provider_server, byok_redis):
    credential = _create(tenant, "openai")
    provider_server.mode = "server_error"
    liveness.credentials_probe()
    provider_server.mode = "ok"
    liveness.credentials_probe()
    credential.refresh_from_db()
    assert credential.status == "valid"
    statuses = list(
        OutboxEvent.objects.filter(event_type="byok.credential.status_changed")
        .order_by("id")
        .values_list("payload__status", flat=True)
    )
    assert statuses == ["valid", "provider_error", "valid"]


def test_revoked_and_unverifiable_are_not_probed(tenant, provider_server, byok_redis):
    credential = _create(tenant, "openai")
    services.credential_revoke(credential_id=credential.pk)
    provider_server.reset()
    assert liveness.credentials_probe() == {}
    assert provider_server.requests == []


def test_bounded_concurrency_probes_every_credential(provider_server, byok_redis, db):
    from tests import factories
    from tests.byok.conftest import entitle

    tenants = [factories.make_tenant(f"t{i}") for i in range(6)]
    for t in tenants:
        entitle(t)
        _create(t, "openai")
    provider_server.reset()
    assert liveness.credentials_probe(concurrency=2) == {"valid": 6}
    assert len(provider_server.requests) == 6


def test_breaker_opens_after_consecutive_failures_and_half_opens(
    provider_server, byok_redis, settings, db
):
    from tests import factories
    from tests.byok.conftest import entitle

    settings.BYOK_BREAKER_FAILURE_THRESHOLD = 2
    settings.BYOK_BREAKER_RESET_SECONDS = 60
    tenants = [factories.make_tenant(f"b{i}") for i in range(5)]
    for t in tenants:
        entitle(t)
        _create(t, "openai")
    _create(tenants[0], "anthropic")
    provider_server.reset()
    provider_server.mode = "server_error"
    # Serial probes: the first two failures open the OpenAI breaker; the rest are skipped.
    counts = liveness.credentials_probe(concurrency=1)
    assert counts["breaker_open"] >= 1
    assert liveness.breaker_for("openai").state() == "open"
    openai_calls = [r for r in provider_server.requests if "authorization" in r.headers]
    assert len(openai_calls) == 2
    # Skipped credentials keep their last recorded status.
    statuses = sorted(
        ProviderCredential.objects.filter(provider="openai").values_list("status", flat=True)
    )
    assert statuses.count("provider_error") == 2 and statuses.count("valid") == 3
    # Anthropic has its own breaker; one failure below threshold leaves it closed.
    assert liveness.breaker_for("anthropic").state() == "closed"

    # After the reset timeout exactly one half-open trial goes through; success closes it.
    breaker = liveness.breaker_for("openai")
    byok_redis.delete(breaker.keys[2])  # no sleeping: end the open window now
    assert breaker.state() == "half_open"
    provider_server.reset()
    counts = liveness.credentials_probe(concurrency=1)
    assert counts.get("valid", 0) >= 1
    assert breaker.state() == "closed"


def test_half_open_trial_failure_reopens(provider_server, byok_redis, settings, tenant):
    settings.BYOK_BREAKER_FAILURE_THRESHOLD = 1
    _create(tenant, "openai")
    provider_server.mode = "unavailable"
    liveness.credentials_probe(concurrency=1)
    breaker = liveness.breaker_for("openai")
    assert breaker.state() == "open"
    byok_redis.delete(breaker.keys[2])  # open window over -> half-open
    assert breaker.state() == "half_open"
    provider_server.reset()
    provider_server.mode = "unavailable"
    assert liveness.credentials_probe(concurrency=1) == {"provider_error": 1}
    assert breaker.state() == "open"
    assert ProviderCredential.objects.get().status == CredentialStatus.PROVIDER_ERROR


def test_invalid_key_does_not_trip_breaker(tenant, provider_server, byok_redis, settings):
    settings.BYOK_BREAKER_FAILURE_THRESHOLD = 1
    _create(tenant, "openai")
    provider_server.mode = "unauthorized"
    liveness.credentials_probe()
    assert liveness.breaker_for("openai").state() == "closed"


def test_task_is_in_the_beat_schedule(settings):
    entries = {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "byok.credentials_probe_task" in entries


def test_overlapping_runs_are_skipped(tenant, provider_server, byok_redis, settings):
    settings.BYOK_LIVENESS_INTERVAL_SECONDS = 60
    _create(tenant, "openai")
    provider_server.reset()
    byok_redis.set(settings.BYOK_LIVENESS_LOCK_KEY, "another-worker", px=60_000)
    try:
        assert credentials_probe_task() == {"skipped_locked": 1}
        assert provider_server.requests == []
    finally:
        byok_redis.delete(settings.BYOK_LIVENESS_LOCK_KEY)
    assert credentials_probe_task() == {"valid": 1}
    assert byok_redis.get(settings.BYOK_LIVENESS_LOCK_KEY) is None
