"""HCP Terraform run tasks: integrations, signed requests, and the worker's evaluation.

HCP Terraform POSTs a run-task request signed with the integration's HMAC key; Tollgate answers
200 at once and a worker fetches the plan JSON, gates its resource_changes and PATCHes the
task-results callback (passed/failed) within HCP's 10-minute window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

import httpx
import structlog
from django.conf import settings
from django.db import IntegrityError, transaction

from byok import vault
from controlplane.audit.services import ledger_append_control
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.jobs import enqueue_on_commit
from controlplane.core.money import format_usd
from enforcement.errors import EnforcementErrorCode
from enforcement.integrations.terraform_plan import PlanError, plan_changes
from enforcement.models import RunTaskIntegration, RunTaskResult
from enforcement.services.gate import GateRequest
from enforcement.services.policies import active_policy

log = structlog.get_logger(__name__)
State = RunTaskResult.State
PING_TOKEN = "test-token"  # noqa: S105 - HCP Terraform's verification request, not a secret
CALLBACK_DEADLINE_S = 540  # HCP waits 10 minutes for the callback; leave a margin
MAX_OUTCOMES = 10
JSONAPI = "application/vnd.api+json"


def _aad(tenant_id: str, row_id: str, what: str) -> bytes:
    return f"runtask:{what}:{tenant_id}:{row_id}".encode()


def run_task_integration_create(*, tenant, name: str, project, environment: str):
    """A new integration and its HMAC key (returned once, stored sealed)."""
    key = secrets.token_urlsafe(32)
    with transaction.atomic():
        row = RunTaskIntegration(tenant=tenant, name=name, project=project, environment=environment)
        envelope = vault.keyring().encrypt(key, aad=_aad(tenant.id, row.id, "hmac"))
        row.ciphertext, row.kek_version = envelope.blob, envelope.kek_version
        row.save(force_insert=True)
        ledger_append_control(
            tenant_id=tenant.id,
            kind="run_task.integration_created",
            payload={"integration": row.id, "project": project.slug, "environment": environment},
        )
    return row, key


def run_task_integration_revoke(*, integration: RunTaskIntegration) -> RunTaskIntegration:
    """Stop accepting requests signed with this integration's key (idempotent)."""
    with transaction.atomic():
        row = RunTaskIntegration.objects.select_for_update().get(pk=integration.pk)
        if row.revoked_at is None:
            row.revoked_at = db_now()
            row.save(update_fields=["revoked_at"])
            ledger_append_control(
                tenant_id=row.tenant_id,
                kind="run_task.integration_revoked",
                payload={"integration": row.id},
            )
    return row


def _hmac_key(row: RunTaskIntegration) -> bytes:
    return (
        vault.keyring()
        .decrypt(bytes(row.ciphertext), row.kek_version, aad=_aad(row.tenant_id, row.id, "hmac"))
        .encode()
    )


def _signature_error(detail: str) -> TollgateError:
    return TollgateError(EnforcementErrorCode.RUN_TASK_SIGNATURE_INVALID, detail, status=401)


def verified_integration(*, integration_id: str, body: bytes, signature: str | None):
    """The integration whose key signed ``body`` (hex HMAC-SHA512, compared in constant time).

    An unknown or revoked integration and a bad signature are the same 401: the answer never
    tells which integrations exist."""
    row = (
        RunTaskIntegration.objects.select_related("tenant", "project")
        .filter(pk=integration_id or "", revoked_at__isnull=True)
        .first()
    )
    expected = hmac.new(_hmac_key(row) if row else b"\0", body, hashlib.sha512).hexdigest()
    given = (signature or "").strip().lower()
    if not hmac.compare_digest(expected, given) or row is None:
        raise _signature_error(
            "X-TFC-Task-Signature is missing or does not match this integration's HMAC key."
        )
    return row


def _payload_error(field: str, message: str) -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.RUN_TASK_PAYLOAD_INVALID,
        f"Not an HCP Terraform run-task request: {field}: {message}",
        errors=[{"field": field, "message": message, "code": "invalid"}],
    )


def _url(payload: dict, name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise _payload_error(name, "Expected an http(s) URL.")
    host = urlsplit(value).hostname or ""
    if host not in settings.RUN_TASK_ALLOWED_HOSTS:
        raise _payload_error(
            name, f"Host {host!r} is not in RUN_TASK_ALLOWED_HOSTS (Tollgate calls only those)."
        )
    return value[:2000]


def run_task_receive(*, integration: RunTaskIntegration, payload) -> RunTaskResult | None:
    """Store a run-task request and queue its evaluation (None for the verification ping).

    A request HCP Terraform sends twice (same task_result_id) is stored and evaluated once."""
    if not isinstance(payload, dict) or payload.get("payload_version") != 1:
        raise _payload_error("payload_version", "Expected 1.")
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise _payload_error("access_token", "Required.")
    if token == PING_TOKEN:
        return None
    for name in ("task_result_id", "run_id", "stage"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise _payload_error(name, "Required.")
    callback = _url(payload, "task_result_callback_url")
    plan_url = _url(payload, "plan_json_api_url", required=False)
    row = RunTaskResult(
        tenant_id=integration.tenant_id,
        integration=integration,
        task_result_id=payload["task_result_id"][:100],
        run_id=payload["run_id"][:100],
        stage=payload["stage"][:32],
        organization_name=str(payload.get("organization_name", ""))[:200],
        workspace_name=str(payload.get("workspace_name", ""))[:200],
        plan_json_api_url=plan_url or "",
        callback_url=callback,
    )
    envelope = vault.keyring().encrypt(token, aad=_aad(integration.tenant_id, row.id, "token"))
    row.token_ciphertext, row.kek_version = envelope.blob, envelope.kek_version
    from enforcement.tasks import run_task_evaluate_task

    try:
        with transaction.atomic():
            row.save(force_insert=True)
            enqueue_on_commit(
                run_task_evaluate_task, row.id, on_failure=lambda: _queue_failed(row.id)
            )
    except IntegrityError:  # redelivered: the first one is (being) evaluated
        return RunTaskResult.objects.get(integration=integration, task_result_id=row.task_result_id)
    return row


def _queue_failed(result_id: str) -> None:
    RunTaskResult.objects.filter(pk=result_id).update(
        state=State.ERRORED, message="The job queue is unreachable.", finished_at=db_now()
    )


# --- the worker ------------------------------------------------------------------------------


class _Unavailable(Exception):
    pass


def _backoff(attempt: int) -> float:
    return settings.RUN_TASK_RETRY_BACKOFF_S * (2**attempt)


def _with_retries(call, *, deadline: float):
    """``call()`` until it answers below 500, retrying 5xx and transport errors with backoff."""
    attempt = 0
    while True:
        try:
            response = call()
            if response.status_code < 500:
                return response, attempt + 1
            problem = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            problem = type(exc).__name__
        wait = _backoff(attempt)
        attempt += 1
        if attempt >= settings.RUN_TASK_MAX_ATTEMPTS or time.monotonic() + wait > deadline:
            raise _Unavailable(problem)
        time.sleep(wait)


def _claim(result_id: str) -> RunTaskResult | None:
    with transaction.atomic():
        row = (
            RunTaskResult.objects.select_for_update(skip_locked=True)
            .select_related("integration__project", "integration__tenant")
            .filter(pk=result_id, state=State.QUEUED)
            .first()
        )
        if row is None:
            return None
        row.state = State.RUNNING
        row.save(update_fields=["state"])
    return row


def _outcomes(answer: dict, changes, run: RunTaskResult) -> list[dict]:
    level = {"ALLOW": "info", "ALLOW_WITH_CREDITS": "info", "REQUIRE_APPROVAL": "warning"}.get(
        answer["outcome"], "error"
    )
    outcomes = [
        {
            "outcome-id": answer.get("decision_id") or f"{run.id}-decision",
            "description": f"Tollgate {answer['outcome']}: {answer.get('reason_code')}",
            "body": "\n\n".join(
                part for part in (answer.get("message"), answer.get("remediation")) if part
            )[:5000],
            "tags": {
                "Outcome": [{"label": answer["outcome"], "level": level}],
                "Monthly delta": [{"label": f"{format_usd(changes.monthly_micros)} USD"}],
            },
        }
    ]
    for kind, micros in sorted(changes.priced.items(), key=lambda kv: -abs(kv[1])):
        if len(outcomes) >= MAX_OUTCOMES:
            break
        outcomes.append(
            {
                "outcome-id": f"{run.id}-{kind}"[:100],
                "description": f"{kind}: {format_usd(micros)} USD per month",
                "tags": {"Resource type": [{"label": kind}]},
            }
        )
    return outcomes


def callback_body(*, status: str, message: str, outcomes: list[dict] | None = None) -> dict:
    """The JSON:API task-results document HCP Terraform's callback takes."""
    body: dict = {
        "data": {"type": "task-results", "attributes": {"status": status, "message": message}}
    }
    if outcomes:
        body["data"]["relationships"] = {
            "outcomes": {
                "data": [
                    {"type": "task-result-outcomes", "attributes": outcome}
                    for outcome in outcomes[:MAX_OUTCOMES]
                ]
            }
        }
    return body


def _evaluate(run: RunTaskResult, client: httpx.Client, deadline: float):
    """(status, message, outcomes, decision id) for one run."""
    from enforcement.api.gatecall import gate_call

    if not run.plan_json_api_url:
        return "passed", f"Nothing to gate at the {run.stage} stage (no plan yet).", [], None
    response, _ = _with_retries(lambda: client.get(run.plan_json_api_url), deadline=deadline)
    if response.status_code != 200:
        return (
            "failed",
            f"Tollgate could not read the plan (HTTP {response.status_code}).",
            [],
            None,
        )
    policy = active_policy(run.tenant_id)
    prices = ((policy.document.get("unit_prices") or {}).get("terraform") or {}).get(
        "resource_monthly_usd"
    ) or {}
    try:
        changes = plan_changes(response.json(), prices)
    except (PlanError, ValueError) as exc:
        return "failed", f"Tollgate could not read the plan JSON: {exc}"[:500], [], None
    integration = run.integration
    req = GateRequest(
        source="terraform",
        idempotency_key=f"terraform:{run.run_id}:{run.stage}",
        project=integration.project.slug,
        environment=integration.environment,
        action=f"terraform.{run.stage}",
        resource={
            "type": "terraform_run",
            "id": f"{run.organization_name}/{run.workspace_name}"[:500],
            "attributes": changes.attributes(),
        },
        monthly_micros=max(changes.monthly_micros, 0),
        requester=f"hcp-terraform:{run.organization_name}"[:254],
    )
    try:
        answer, _ = gate_call(tenant=integration.tenant, api_key=None, req=req)
    except TollgateError as exc:
        return "failed", f"Tollgate refused the run: {exc.message} ({exc.code})"[:500], [], None
    status = "passed" if answer["outcome"] in ("ALLOW", "ALLOW_WITH_CREDITS") else "failed"
    message = f"Tollgate {answer['outcome']}: {answer.get('message', '')}"
    if answer["outcome"] == "REQUIRE_APPROVAL":
        message += f" Approve at {(answer.get('approval') or {}).get('url', '')}."
    return status, message[:500], _outcomes(answer, changes, run), answer.get("decision_id")


def run_task_evaluate(*, result_id: str) -> str | None:
    """Evaluate one queued run and answer its callback (safe to deliver twice: claimed once)."""
    run = _claim(result_id)
    if run is None:
        return None
    deadline = time.monotonic() + CALLBACK_DEADLINE_S
    token = vault.keyring().decrypt(
        bytes(run.token_ciphertext), run.kek_version, aad=_aad(run.tenant_id, run.id, "token")
    )
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "tollgate-run-task/1"}
    with httpx.Client(
        headers=headers, timeout=settings.RUN_TASK_HTTP_TIMEOUT_S, follow_redirects=True
    ) as client:
        try:
            status, message, outcomes, decision_id = _evaluate(run, client, deadline)
        except _Unavailable as exc:
            status, message, outcomes, decision_id = (
                "failed",
                f"Tollgate could not fetch the plan ({exc}).",
                [],
                None,
            )
        body = callback_body(status=status, message=message, outcomes=outcomes)
        try:
            response, attempts = _with_retries(
                lambda: client.patch(
                    run.callback_url,
                    json=body,
                    headers={"Content-Type": JSONAPI, "Accept": JSONAPI},
                ),
                deadline=deadline,
            )
            final = State.PASSED if status == "passed" else State.FAILED
            if response.status_code >= 400:
                final, message = (
                    State.ERRORED,
                    f"The callback was refused: HTTP {response.status_code}",
                )
        except _Unavailable as exc:
            final, attempts = State.ERRORED, settings.RUN_TASK_MAX_ATTEMPTS
            message = f"The callback could not be delivered ({exc})."
    RunTaskResult.objects.filter(pk=run.pk).update(
        state=final,
        message=message,
        decision_id=decision_id,
        callback_attempts=attempts,
        finished_at=db_now(),
        token_ciphertext=b"",  # the run's token is not kept past its use
    )
    log.info("run_task_answered", result=run.pk, state=final, attempts=attempts)
    return final
