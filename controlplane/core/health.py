"""Liveness (/healthz), readiness (/readyz) and Prometheus metrics (/metrics)."""

from __future__ import annotations

import hmac
import time

import structlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from controlplane.core.errors import CoreErrorCode
from controlplane.core.problems import problem_response

log = structlog.get_logger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    started = time.perf_counter()
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_migrations() -> dict:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    return {"ok": not pending, "unapplied": pending}


def _check_redis() -> dict:
    import redis

    started = time.perf_counter()
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready when the database answers, migrations are applied and Redis (if configured) answers."""
    checks: dict[str, dict] = {}
    probes = [("database", _check_database), ("migrations", _check_migrations)]
    if settings.REDIS_URL:
        probes.append(("redis", _check_redis))
    for name, probe in probes:
        if name == "migrations" and not checks.get("database", {}).get("ok"):
            checks[name] = {"ok": False, "error": "skipped: database unavailable"}
            continue
        try:
            checks[name] = probe()
        except Exception as exc:  # any failure of a dependency means "not ready", never a 500
            log.warning("readiness_check_failed", check=name, error=type(exc).__name__)
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if all(check["ok"] for check in checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    failing = sorted(name for name, check in checks.items() if not check["ok"])
    return problem_response(
        request,
        status=503,
        code=CoreErrorCode.SERVICE_UNAVAILABLE,
        detail="Not ready: " + ", ".join(failing) + ".",
        remediation="See `checks` for the failing dependency.",
        extra={"status_text": "not_ready", "checks": checks},
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; protected by METRICS_TOKEN when one is configured."""
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return problem_response(
                request,
                status=401,
                code=CoreErrorCode.AUTHENTICATION_REQUIRED,
                detail="Metrics need `Authorization: Bearer <METRICS_TOKEN>`.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return ExportToDjangoView(request)
