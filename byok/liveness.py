"""Liveness: re-probe every stored credential with bounded concurrency and per-provider breakers.

Probes (network) run in a thread pool and touch no database; the main thread reads the rows
first and records each outcome afterwards through ``byok.services.apply_probe_result`` (ledger
+ outbox on status change). A provider whose breaker is open is skipped, so a provider outage
costs one probe per half-open window, not one per credential. Redis errors from the breaker
are not swallowed: the run fails and is retried by the next beat tick, leaving statuses as
they were (the last recorded status keeps failing closed).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.db.models import Count

from byok import vault
from byok.crypto import DecryptionError
from byok.metrics import CREDENTIALS, PROBE_TOTAL
from byok.models import CredentialStatus, ProviderCredential
from byok.providers import (
    PROVIDER_FAULT_STATUSES,
    ProbeResult,
    ProbeStatus,
    get_adapter,
    provider_names,
)
from byok.redis_client import byok_redis
from byok.services import apply_probe_result, base_url_for
from controlplane.core.breaker import CircuitBreaker

log = structlog.get_logger(__name__)

# Results that are not a probe classification.
BREAKER_OPEN = "breaker_open"
DECRYPT_FAILED = "decrypt_failed"


@dataclass(frozen=True, slots=True)
class _Job:
    credential_id: str
    tenant_id: str
    provider: str
    ciphertext: bytes
    kek_version: int
    base_url: str = ""  # the credential's own upstream (checked when it was stored)


def breaker_for(provider: str) -> CircuitBreaker:
    """The shared (Redis) breaker guarding probes to ``provider``."""
    return CircuitBreaker(
        byok_redis(),
        name=f"byok:{provider}",
        failure_threshold=int(settings.BYOK_BREAKER_FAILURE_THRESHOLD),
        reset_timeout_seconds=float(settings.BYOK_BREAKER_RESET_SECONDS),
        trial_timeout_seconds=float(settings.BYOK_PROBE_TIMEOUT_SECONDS) * 2,
        key_prefix=settings.BYOK_BREAKER_KEY_PREFIX,
    )


def _probe_job(job: _Job, breaker: CircuitBreaker) -> ProbeResult | str:
    """Thread body: breaker gate, decrypt, probe, report to the breaker. No database access."""
    if not breaker.allow():
        return BREAKER_OPEN
    try:
        api_key = vault.keyring().decrypt(
            job.ciphertext, job.kek_version, aad=vault.aad_for(job.tenant_id, job.credential_id)
        )
    except DecryptionError:
        return DECRYPT_FAILED
    result = get_adapter(job.provider).probe(
        api_key,
        base_url=job.base_url or base_url_for(job.provider),
        timeout=float(settings.BYOK_PROBE_TIMEOUT_SECONDS),
    )
    del api_key
    if result.status in PROVIDER_FAULT_STATUSES:
        breaker.record_failure()
    elif result.status is not ProbeStatus.unverifiable:
        # valid, invalid and rate_limited all prove the provider is answering.
        breaker.record_success()
    return result


def credentials_probe(*, concurrency: int | None = None) -> dict[str, int]:
    """Probe every live, probe-able credential once; returns counts by result."""
    workers = max(1, int(concurrency or settings.BYOK_LIVENESS_CONCURRENCY))
    rows = (
        ProviderCredential.objects.exclude(
            status__in=[CredentialStatus.REVOKED, CredentialStatus.UNVERIFIABLE]
        )
        .order_by("last_validated_at", "id")
        .values_list("id", "tenant_id", "provider", "ciphertext", "kek_version", "base_url")
    )
    jobs = [
        _Job(pk, tenant_id, provider, bytes(blob), kek, base_url)
        for pk, tenant_id, provider, blob, kek, base_url in rows
    ]
    breakers = {provider: breaker_for(provider) for provider in {job.provider for job in jobs}}
    counts: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="byok-probe") as pool:
        futures = [(job, pool.submit(_probe_job, job, breakers[job.provider])) for job in jobs]
        for job, future in futures:
            outcome = future.result()
            if isinstance(outcome, str):
                PROBE_TOTAL.labels(provider=job.provider, result=outcome).inc()
                counts[outcome] += 1
                if outcome == DECRYPT_FAILED:
                    log.error(
                        "byok_credential_undecryptable",
                        credential_id=job.credential_id,
                        kek_version=job.kek_version,
                    )
                continue
            PROBE_TOTAL.labels(provider=job.provider, result=outcome.status.value).inc()
            counts[outcome.status.value] += 1
            apply_probe_result(
                credential_id=job.credential_id,
                result=outcome,
                actor="liveness",
                kind="byok.credential.probed",
            )
    refresh_credential_gauge()
    log.info("byok_liveness_run", probed=len(jobs), **dict(counts))
    return dict(counts)


def refresh_credential_gauge() -> None:
    """Set ``byok_credentials{provider,status}`` from the database (zeros included)."""
    found = {
        (row["provider"], row["status"]): row["n"]
        for row in ProviderCredential.objects.values("provider", "status").annotate(n=Count("id"))
    }
    for provider in provider_names():
        for status in CredentialStatus.values:
            CREDENTIALS.labels(provider=provider, status=status).set(
                found.get((provider, status), 0)
            )
