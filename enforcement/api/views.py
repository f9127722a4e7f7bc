"""Gate, reservation, budget, credit and decision endpoints: thin adapters over services."""

from __future__ import annotations

import structlog
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from billing.catalog import CREDIT_GRANTS, INVOICE_RECONCILIATION
from billing.entitlements import EntitledViewMixin
from controlplane.core.clock import db_now
from controlplane.core.errors import TollgateError
from controlplane.core.params import (
    ENVIRONMENT_RE,
    SLUG_RE,
    choice_param,
    pattern_param,
    timestamp_param,
)
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, Confine, TenantScopedAPIView
from controlplane.tenancy.selectors import project_get
from enforcement import scopes
from enforcement.api import serializers as s
from enforcement.api.fastparse import gate_body_fast
from enforcement.api.gatecall import gate_call, gate_request_from
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Budget, CreditGrant, Decision, Reservation
from enforcement.models.decisions import OUTCOMES
from enforcement.selectors.budgets import budget_current_periods
from enforcement.selectors.decisions import DecisionFilters, decision_list
from enforcement.services import budgets as budget_services
from enforcement.services import reservations as reservation_services
from enforcement.services.policies import active_policy

log = structlog.get_logger(__name__)

# Keys Tollgate writes itself (``services.continuation``); a client key there would collide.
RESERVED_IDEMPOTENCY_PREFIXES = ("approval:",)
# A gate body holds at most 16 KiB of attributes, 64 labels and a few short fields: anything
# far larger is refused before it is parsed (the global limit is MAX_REQUEST_BODY_BYTES).
GATE_MAX_BODY_BYTES = 64 * 1024
DECISION_BINDING = Confine(project="project", environment="environment")
RESERVATION_BINDING = Confine(project="decision__project", environment="decision__environment")


def _idempotency_key(request, body: dict) -> str:
    header = request.headers.get("Idempotency-Key")
    key = header if header is not None else body.get("idempotency_key")
    if not key:
        problem = ("Required.", "required", "Gate calls need an idempotency key.")
    elif not isinstance(key, str) or not key.isascii() or not key.isprintable():
        problem = (
            "Invalid: only printable ASCII characters.",
            "invalid",
            "The idempotency key is invalid: it must be printable ASCII.",
        )
    elif len(key) > 255:
        problem = (
            "Too long: at most 255 characters.",
            "max_length",
            f"The idempotency key is too long ({len(key)} characters; at most 255).",
        )
    elif key.startswith(RESERVED_IDEMPOTENCY_PREFIXES):
        raise TollgateError(
            EnforcementErrorCode.IDEMPOTENCY_KEY_RESERVED,
            f"Idempotency keys starting with {key.split(':', 1)[0]!r}: are reserved: Tollgate "
            "records the approved continuation of a request under them.",
            remediation="Use another idempotency key, e.g. your CI run id plus step.",
            errors=[{"field": "idempotency_key", "message": "Reserved prefix.", "code": "invalid"}],
        )
    else:
        return key
    message, code, detail = problem
    raise TollgateError(
        EnforcementErrorCode.IDEMPOTENCY_KEY_REQUIRED,
        detail,
        remediation="Send an `Idempotency-Key` header (or `idempotency_key` in the body) of "
        "1..255 printable ASCII characters, e.g. your CI run id plus step.",
        errors=[{"field": "idempotency_key", "message": message, "code": code}],
    )


class GateDecisionView(TenantScopedAPIView):
    required_scopes = {"POST": scopes.GATE_WRITE}
    # The gate service refuses a project/environment outside the key's binding (403).
    bound_keys = {"POST": CHECKED_IN_VIEW}
    max_body_bytes = GATE_MAX_BODY_BYTES
    serializer_class = s.GateDecisionRequestSerializer

    @extend_schema(
        operation_id="gate_decide",
        request=s.GateDecisionRequestSerializer,
        responses={201: s.GateDecisionResponseSerializer, 200: s.GateDecisionResponseSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
        ],
        description="Decide, reserve and record. 201 for a new decision, 200 for an idempotent "
        "replay. A hard-mode DENY is still 201 with `outcome: DENY`.",
    )
    def post(self, request):
        data = gate_body_fast(request.data)
        if data is None:  # anything unusual, and every invalid body: the serializer words it
            body = s.GateDecisionRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        gate_request = gate_request_from(
            data, source=data["source"], idempotency_key=_idempotency_key(request, request.data)
        )
        body, code = gate_call(tenant=self.tenant, api_key=request.auth, req=gate_request)
        return Response(body, status=code)


class DecisionListView(TenantScopedAPIView):
    model = Decision
    required_scopes = {"GET": scopes.DECISIONS_READ}
    bound_keys = {"GET": DECISION_BINDING}
    serializer_class = s.DecisionSerializer

    def base_queryset(self):
        return Decision.objects.select_related("project", "reservation")

    @extend_schema(
        operation_id="decisions_list",
        responses=s.DecisionSerializer(many=True),
        parameters=[
            OpenApiParameter("outcome", str, enum=OUTCOMES),
            OpenApiParameter("project", str),
            OpenApiParameter("environment", str),
            OpenApiParameter("since", str, description="ISO 8601 timestamp (inclusive)"),
            OpenApiParameter("until", str, description="ISO 8601 timestamp (exclusive)"),
            OpenApiParameter("limit", int, description="1..200 (default 50)"),
        ],
        description="Newest first. A page also ends early once it holds 4 MiB of JSON; "
        "follow `next`.",
    )
    def get(self, request):
        params = request.query_params
        filters = DecisionFilters(
            outcome=choice_param(params, "outcome", OUTCOMES, upper=True) or "",
            project=pattern_param(params, "project", SLUG_RE, "a project slug") or "",
            environment=pattern_param(params, "environment", ENVIRONMENT_RE, "an environment name")
            or "",
            since=timestamp_param(params, "since"),
            until=timestamp_param(params, "until"),
        )
        queryset = decision_list(queryset=self.get_queryset(), filters=filters)
        return self.page_response(queryset, lambda rows: s.DecisionSerializer(rows, many=True).data)


class DecisionDetailView(TenantScopedAPIView):
    model = Decision
    required_scopes = {"GET": scopes.DECISIONS_READ}
    bound_keys = {"GET": DECISION_BINDING}
    serializer_class = s.DecisionSerializer

    @extend_schema(operation_id="decisions_retrieve")
    def get(self, request, id):
        return Response(s.DecisionSerializer(self.get_object()).data)


class ReservationDetailView(TenantScopedAPIView):
    model = Reservation
    required_scopes = {"GET": scopes.RESERVATIONS_READ}
    bound_keys = {"GET": RESERVATION_BINDING}
    serializer_class = s.ReservationSerializer

    @extend_schema(operation_id="reservations_retrieve")
    def get(self, request, id):
        return Response(s.ReservationSerializer(self.get_object()).data)


class ReservationCommitView(TenantScopedAPIView):
    model = Reservation
    required_scopes = {"POST": scopes.RESERVATIONS_WRITE}
    bound_keys = {"POST": RESERVATION_BINDING}
    serializer_class = s.CommitSerializer

    @extend_schema(
        operation_id="reservations_commit",
        request=s.CommitSerializer,
        responses=s.ReservationSerializer,
    )
    def post(self, request, id):
        reservation = self.get_object()
        body = s.CommitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "actual_cost_usd" not in body.validated_data:
            # An LLM reservation is priced from the provider's usage (enforcement.llm.gateway).
            from enforcement.llm.gateway import llm_commit_reservation

            reservation = llm_commit_reservation(
                reservation=reservation, usage=request.data.get("usage"), api_key=request.auth
            )
            return Response(s.ReservationSerializer(reservation).data)
        reservation, _info = reservation_services.reservation_commit(
            reservation_id=reservation.id,
            actual_micros=body.validated_data["actual_cost_usd"],
            usage=body.validated_data.get("usage"),
        )
        return Response(s.ReservationSerializer(reservation).data)


class ReservationReleaseView(TenantScopedAPIView):
    model = Reservation
    required_scopes = {"POST": scopes.RESERVATIONS_WRITE}
    bound_keys = {"POST": RESERVATION_BINDING}

    @extend_schema(
        operation_id="reservations_release", request=None, responses=s.ReservationSerializer
    )
    def post(self, request, id):
        reservation = reservation_services.reservation_release(reservation_id=self.get_object().id)
        return Response(s.ReservationSerializer(reservation).data)


class ReservationExtendView(TenantScopedAPIView):
    model = Reservation
    required_scopes = {"POST": scopes.RESERVATIONS_WRITE}
    bound_keys = {"POST": RESERVATION_BINDING}
    serializer_class = s.ExtendSerializer

    @extend_schema(
        operation_id="reservations_extend",
        request=s.ExtendSerializer,
        responses=s.ReservationSerializer,
    )
    def post(self, request, id):
        reservation = self.get_object()
        body = s.ExtendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reservation = reservation_services.reservation_extend(
            reservation_id=reservation.id,
            ttl_seconds=body.validated_data["ttl_seconds"],
            max_ttl_seconds=active_policy(self.tenant.id).max_ttl_seconds,
        )
        return Response(s.ReservationSerializer(reservation).data)


class ReconciliationView(EntitledViewMixin, TenantScopedAPIView):
    entitlement = INVOICE_RECONCILIATION
    model = Reservation
    required_scopes = {"POST": scopes.RESERVATIONS_WRITE}
    bound_keys = {"POST": RESERVATION_BINDING}
    serializer_class = s.ReconciliationSerializer

    @extend_schema(
        operation_id="reconciliations_create",
        request=s.ReconciliationSerializer,
        responses=s.ReconciliationResultSerializer,
    )
    def post(self, request):
        body = s.ReconciliationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(
            reservation_services.reservations_reconcile_batch(
                reservations=self.get_queryset(), items=body.validated_data["items"]
            )
        )


def _current_periods(budgets) -> dict:
    return budget_current_periods(budgets, today=db_now().date())


BUDGET_BINDING = Confine(project="project", environment="environment")


class BudgetListView(TenantScopedAPIView):
    model = Budget
    required_scopes = {"GET": scopes.BUDGETS_READ, "POST": scopes.BUDGETS_WRITE}
    # POST: a bound key creates budgets inside its binding only (checked below).
    bound_keys = {"GET": BUDGET_BINDING, "POST": CHECKED_IN_VIEW}
    serializer_class = s.BudgetSerializer

    def base_queryset(self):
        return Budget.objects.select_related("project")

    @extend_schema(operation_id="budgets_list", responses=s.BudgetSerializer(many=True))
    def get(self, request):
        return self.page_response(
            self.get_queryset(),
            lambda rows: (
                s.BudgetSerializer(
                    rows, many=True, context={"periods": _current_periods(rows)}
                ).data
            ),
        )

    @extend_schema(
        operation_id="budgets_create",
        request=s.BudgetCreateSerializer,
        responses={201: s.BudgetSerializer},
    )
    def post(self, request):
        body = s.BudgetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scope = data.get("scope") or {}
        project = None
        if scope.get("project"):
            project = project_get(tenant=self.tenant, slug=scope["project"], field="scope.project")
        budget = budget_services.budget_create(
            tenant=self.tenant,
            limit_micros=data["limit_usd"],
            period=data["period"],
            project=project,
            environment=scope.get("environment") or "",
            name=data.get("name", ""),
            alert_thresholds=data.get("alert_thresholds"),
            forecast_alert=data.get("forecast_alert", False),
            api_key=request.auth,
        )
        return Response(
            s.BudgetSerializer(budget, context={"periods": _current_periods([budget])}).data,
            status=status.HTTP_201_CREATED,
        )


class BudgetDetailView(TenantScopedAPIView):
    model = Budget
    required_scopes = {"GET": scopes.BUDGETS_READ, "PATCH": scopes.BUDGETS_WRITE}
    bound_keys = {"GET": BUDGET_BINDING, "PATCH": BUDGET_BINDING}
    serializer_class = s.BudgetSerializer

    @extend_schema(operation_id="budgets_retrieve")
    def get(self, request, id):
        budget = self.get_object()
        return Response(
            s.BudgetSerializer(budget, context={"periods": _current_periods([budget])}).data
        )

    @extend_schema(
        operation_id="budgets_update",
        request=s.BudgetUpdateSerializer,
        responses=s.BudgetSerializer,
    )
    def patch(self, request, id):
        budget = self.get_object()
        body = s.BudgetUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        budget = budget_services.budget_update(
            budget=budget,
            limit_micros=data.get("limit_usd"),
            name=data.get("name"),
            forecast_alert=data.get("forecast_alert"),
            **(
                {"alert_thresholds": data["alert_thresholds"]} if "alert_thresholds" in data else {}
            ),
        )
        return Response(
            s.BudgetSerializer(budget, context={"periods": _current_periods([budget])}).data
        )


class CreditGrantListView(EntitledViewMixin, TenantScopedAPIView):
    entitlement = CREDIT_GRANTS
    model = CreditGrant
    required_scopes = {"GET": scopes.CREDITS_READ, "POST": scopes.CREDITS_WRITE}
    serializer_class = s.CreditGrantSerializer

    @extend_schema(operation_id="credit_grants_list", responses=s.CreditGrantSerializer(many=True))
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: s.CreditGrantSerializer(rows, many=True).data
        )

    @extend_schema(
        operation_id="credit_grants_create",
        request=s.CreditGrantCreateSerializer,
        responses={201: s.CreditGrantSerializer},
    )
    def post(self, request):
        body = s.CreditGrantCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        grant = budget_services.credit_grant_create(
            tenant=self.tenant,
            amount_micros=data["amount_usd"],
            pool=data["pool"],
            priority=data["priority"],
            effective_at=data.get("effective_at"),
            expires_at=data.get("expires_at"),
            note=data.get("note", ""),
        )
        return Response(s.CreditGrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class CreditGrantVoidView(EntitledViewMixin, TenantScopedAPIView):
    entitlement = CREDIT_GRANTS
    model = CreditGrant
    required_scopes = {"POST": scopes.CREDITS_WRITE}

    @extend_schema(
        operation_id="credit_grants_void", request=None, responses=s.CreditGrantSerializer
    )
    def post(self, request, id):
        grant = budget_services.credit_grant_void(grant=self.get_object())
        return Response(s.CreditGrantSerializer(grant).data)
