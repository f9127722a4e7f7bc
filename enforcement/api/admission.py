"""Kubernetes admission: ``admission.k8s.io/v1`` AdmissionReview in and out (API.md).

The API server authenticates with a tenant API key (Bearer, from the webhook's kubeconfig).
Every answer to a well-formed review is a review (HTTP 200): a refusal is ``allowed: false``
with ``status.code/message``, never an HTTP error the API server would turn into its
failurePolicy. Only a body that is not a review at all is a 400 problem.
"""

from __future__ import annotations

import re

import structlog
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework.response import Response

from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, TenantScopedAPIView
from enforcement import scopes
from enforcement.api.gatecall import gate_call
from enforcement.errors import EnforcementErrorCode
from enforcement.integrations import kubernetes as k8s
from enforcement.services.gate import GateRequest
from enforcement.services.policies import active_policy
from enforcement.services.workloads import workload_release

log = structlog.get_logger(__name__)
SOURCE = "kubernetes"
API_VERSION = "admission.k8s.io/v1"
MAX_WARNING = 120  # the API server drops longer warnings
DEFAULT_TIMEOUT_S = 10  # the API server's default timeoutSeconds
DEFAULT_DAEMONSET_NODES = 3
_TIMEOUT = re.compile(r"^([0-9]{1,4})(ms|s)$")


def _invalid(detail: str, field: str = "request") -> TollgateError:
    return TollgateError(
        EnforcementErrorCode.ADMISSION_REVIEW_INVALID,
        detail,
        errors=[{"field": field, "message": detail, "code": "invalid"}],
    )


def _deadline_ms(timeout: str | None) -> int:
    """Half the API server's own timeout (``?timeout=10s``, which it appends to the URL)."""
    match = _TIMEOUT.fullmatch(timeout or "")
    if match is None:
        return DEFAULT_TIMEOUT_S * 1000 // 2
    value, unit = int(match[1]), match[2]
    ms = value if unit == "ms" else value * 1000
    return max(10, ms // 2)


def _warning(text: str) -> str:
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 1] + "…"


def _review(
    uid: str, *, allowed: bool, code: int = 200, message: str = "", warnings=(), audit=None
):
    response: dict = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "message": message or "Denied by Tollgate."}
    if warnings:
        response["warnings"] = [_warning(w) for w in warnings if w]
    if audit:
        response["auditAnnotations"] = {k: str(v)[:1024] for k, v in audit.items()}
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _scope(obj: dict, namespace: str, document: dict) -> tuple[str | None, str | None]:
    notes = k8s.annotations(obj)
    mapped = ((document.get("kubernetes") or {}).get("namespaces") or {}).get(namespace) or {}
    project = notes.get(k8s.ANNOTATION_PROJECT) or mapped.get("project")
    environment = notes.get(k8s.ANNOTATION_ENVIRONMENT) or mapped.get("environment")
    return project, environment


def _resource_id(kind: str, namespace: str, obj: dict, request: dict) -> str:
    meta = obj.get("metadata") or {}
    name = request.get("name") or meta.get("name") or f"{meta.get('generateName', '')}*"
    return f"{kind}/{namespace}/{name}"[:500]


def _controller(obj: dict) -> str | None:
    """``Kind/name`` of the object's controller (its owner already paid for it), else None."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _gib(amount) -> str:
    return f"{amount / k8s.GIB:.3f}"


class KubernetesAdmissionView(TenantScopedAPIView):
    required_scopes = {"POST": scopes.GATE_WRITE}
    # The gate refuses a project/environment outside the key's binding; here that refusal is
    # a denied review (status.code 403), like every other refusal.
    bound_keys = {"POST": CHECKED_IN_VIEW}

    @extend_schema(
        operation_id="gate_k8s_admission",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "timeout",
                str,
                OpenApiParameter.QUERY,
                description="Set by the API server (e.g. `10s`); Tollgate decides in half.",
            )
        ],
        description="A validating admission webhook: AdmissionReview (admission.k8s.io/v1) "
        "in and out. The monthly cost of the pod template (requests x replicas x the policy's "
        "unit_prices.kubernetes x hours) is gated; UPDATE charges the delta against oldObject, "
        "DELETE releases the object's pending reservations, dryRun reserves nothing.",
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
            raise _invalid("The body is not an AdmissionReview.", "kind")
        if body.get("apiVersion") != API_VERSION:
            raise _invalid(f"Only {API_VERSION} reviews are answered.", "apiVersion")
        review = body.get("request")
        if not isinstance(review, dict) or not isinstance(review.get("uid"), str):
            raise _invalid("The review has no request with a uid.", "request.uid")
        uid = review["uid"][:128]
        try:
            return Response(self._answer(review, uid, request))
        except TollgateError as exc:
            if exc.code == EnforcementErrorCode.ADMISSION_REVIEW_INVALID and exc.status_code == 400:
                raise  # not a review we can answer (the envelope): a problem, not a review
            log.info("admission_refused", code=exc.code, uid=uid)
            return Response(
                _review(
                    uid,
                    allowed=False,
                    code=exc.status_code,
                    message=f"Tollgate: {exc.message} ({exc.code})"
                    + (f" {exc.remediation}" if exc.remediation else ""),
                    audit={"code": exc.code},
                )
            )

    def _answer(self, review: dict, uid: str, request) -> dict:
        operation = review.get("operation")
        kind = (
            (review.get("kind") or {}).get("kind") if isinstance(review.get("kind"), dict) else None
        )
        if kind not in k8s.WORKLOAD_KINDS or operation not in ("CREATE", "UPDATE", "DELETE"):
            return _review(uid, allowed=True, audit={"costed": "false"})
        namespace = str(review.get("namespace") or "")
        new = review.get("object") if isinstance(review.get("object"), dict) else None
        old = review.get("oldObject") if isinstance(review.get("oldObject"), dict) else None
        current = new or old
        if current is None:
            raise _invalid("The review carries neither object nor oldObject.", "request.object")
        rid = _resource_id(kind, namespace, current, review)
        owner = _controller(current)
        if owner is not None:  # a Deployment's ReplicaSet, a ReplicaSet's pods: costed once
            return _review(uid, allowed=True, audit={"costed": "false", "owner": owner})
        if operation == "DELETE":
            if review.get("dryRun"):
                return _review(uid, allowed=True, audit={"released": "0"})
            released = workload_release(tenant=self.tenant, resource_id=rid, api_key=request.auth)
            return _review(uid, allowed=True, audit={"released": ",".join(released) or "none"})
        policy = active_policy(self.tenant.id)
        settings = policy.document.get("kubernetes") or {}
        nodes = int(settings.get("daemonset_node_count", DEFAULT_DAEMONSET_NODES))
        prices = k8s.UnitPrices.from_policy(policy.document)
        try:
            cost = k8s.workload_cost(new, prices, daemonset_nodes=nodes)
            before = (
                k8s.workload_cost(old, prices, daemonset_nodes=nodes)
                if operation == "UPDATE" and old is not None
                else None
            )
        except k8s.ManifestError as exc:
            raise TollgateError(
                EnforcementErrorCode.ADMISSION_REVIEW_INVALID,
                f"The object cannot be costed: {exc.field}: {exc.message}",
                status=422,
            ) from exc
        delta = cost.monthly_micros - (before.monthly_micros if before else 0)
        audit = {"monthly-cost-usd": format_usd(cost.monthly_micros)}
        if before is not None:
            audit["monthly-delta-usd"] = format_usd(delta)
        if delta <= 0:  # nothing new to pay for (a scale-down, an unchanged template)
            return _review(uid, allowed=True, audit=audit)
        project, environment = _scope(current, namespace, policy.document)
        total = cost.total
        gate_request = GateRequest(
            source=SOURCE,
            idempotency_key=f"k8s:{uid}",
            project=project,
            environment=environment,
            action=f"kubernetes.{operation.lower()}",
            resource={
                "type": kind,
                "id": rid,
                "attributes": {
                    "namespace": namespace,
                    "pods": cost.pods,
                    "cpu_cores": str(total.cpu),
                    "memory_gib": _gib(total.memory),
                    "gpus": str(total.gpu),
                    "annotated_cost": cost.overridden,
                },
            },
            monthly_micros=delta,
            requester=str((review.get("userInfo") or {}).get("username", ""))[:254],
            approval_token=k8s.annotations(current).get(k8s.ANNOTATION_TOKEN) or None,
            dry_run=bool(review.get("dryRun")),
            deadline_ms=_deadline_ms(request.query_params.get("timeout")),
        )
        answer, _status = gate_call(tenant=self.tenant, api_key=request.auth, req=gate_request)
        return self._from_answer(uid, answer, audit)

    def _from_answer(self, uid: str, answer: dict, audit: dict) -> dict:
        audit = {
            **audit,
            "decision": answer.get("decision_id") or "none",
            "outcome": answer["outcome"],
            "reason-code": answer["reason_code"],
        }
        outcome = answer["outcome"]
        message = answer.get("message") or ""
        if outcome in ("ALLOW", "ALLOW_WITH_CREDITS"):
            warnings = []
            if answer.get("fail_open"):
                warnings.append(f"Tollgate fail-open: {message}")
            elif answer.get("breach"):
                warnings.append(f"Tollgate ({answer['mode']} mode) would refuse: {message}")
            return _review(uid, allowed=True, warnings=warnings, audit=audit)
        if outcome == "REQUIRE_APPROVAL":
            url = (answer.get("approval") or {}).get("url", "")
            return _review(
                uid,
                allowed=False,
                code=403,
                message=f"Tollgate: approval required ({message}). Once {url} is approved, "
                f"apply again with the annotation {k8s.ANNOTATION_TOKEN} set to the token.",
                audit=audit,
            )
        return _review(
            uid,
            allowed=False,
            code=403,
            message=f"Tollgate: {message} {answer.get('remediation') or ''}".strip(),
            audit=audit,
        )
