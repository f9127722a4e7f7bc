"""Actions API: request, list, read; workers lease, complete, fail; anyone with the scope cancels."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from controlplane.core.errors import TollgateError
from controlplane.core.jsonlimits import ATTRIBUTES_LIMITS
from controlplane.core.params import choice_param
from controlplane.core.serializers import PrintableKeyField, StrictSerializer
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, Confine, TenantScopedAPIView
from controlplane.tenancy.selectors import project_get
from enforcement import scopes
from enforcement.api.serializers import FreeForm
from enforcement.models import Action, Decision
from enforcement.models.actions import ACTION_STATES
from enforcement.services import actions as services
from enforcement.services.gate.request import key_binding_check

ACTION_BINDING = Confine(project="project", environment="environment")
KIND = r"^[a-z][a-z0-9_.-]{0,63}$"


class ActionSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    decision_id = serializers.CharField(allow_null=True, read_only=True)

    class Meta:
        model = Action
        fields = [
            "id",
            "kind",
            "params",
            "project",
            "environment",
            "decision_id",
            "requested_by",
            "idempotency_key",
            "state",
            "epoch",
            "lease_owner",
            "lease_expires_at",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "last_error",
            "result",
            "created_at",
            "updated_at",
            "finished_at",
        ]


class ActionRequestSerializer(StrictSerializer):
    kind = serializers.RegexField(KIND, help_text="e.g. notify, scale_down, open_ticket")
    params = serializers.DictField(
        required=False, default=dict, validators=[FreeForm(ATTRIBUTES_LIMITS)]
    )
    project = serializers.SlugField(max_length=63, required=False)
    environment = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,63}$", required=False)
    decision_id = serializers.CharField(max_length=40, required=False)
    idempotency_key = PrintableKeyField(required=False, min_length=1)
    max_attempts = serializers.IntegerField(required=False, min_value=1, max_value=100, default=5)
    requested_by = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class LeaseSerializer(StrictSerializer):
    worker = serializers.CharField(max_length=200)
    kinds = serializers.ListField(child=serializers.RegexField(KIND), required=False, max_length=50)
    lease_seconds = serializers.IntegerField(required=False, min_value=5, max_value=3600)


class EpochSerializer(StrictSerializer):
    epoch = serializers.IntegerField(min_value=1)
    result = serializers.DictField(required=False, validators=[FreeForm(ATTRIBUTES_LIMITS)])


class FailSerializer(StrictSerializer):
    epoch = serializers.IntegerField(min_value=1)
    error = serializers.DictField(required=False, validators=[FreeForm(ATTRIBUTES_LIMITS)])
    retry = serializers.BooleanField(required=False, default=True)


class ActionListView(TenantScopedAPIView):
    model = Action
    required_scopes = {"GET": scopes.ACTIONS_READ, "POST": scopes.ACTIONS_WRITE}
    bound_keys = {"GET": ACTION_BINDING, "POST": CHECKED_IN_VIEW}
    serializer_class = ActionSerializer

    def base_queryset(self):
        return Action.objects.select_related("project")

    @extend_schema(
        operation_id="actions_list",
        responses=ActionSerializer(many=True),
        parameters=[OpenApiParameter("state", str, enum=ACTION_STATES)],
    )
    def get(self, request):
        queryset = self.get_queryset()
        state = choice_param(request.query_params, "state", ACTION_STATES)
        if state:
            queryset = queryset.filter(state=state)
        return self.page_response(queryset, lambda rows: ActionSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="actions_request",
        request=ActionRequestSerializer,
        responses={201: ActionSerializer, 200: ActionSerializer},
        description="Request an action (201); the same idempotency_key again returns it (200). "
        "`decision_id` links it to a decision and defaults its project/environment.",
    )
    def post(self, request):
        body = ActionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, key = body.validated_data, request.auth
        decision = None
        if data.get("decision_id"):
            decisions = self.confined_decisions().filter(pk=data["decision_id"])
            decision = decisions.select_related("project").first()
            if decision is None:
                raise TollgateError(
                    "NOT_FOUND",
                    "No such decision.",
                    status=404,
                    errors=[{"field": "decision_id", "message": "Unknown.", "code": "invalid"}],
                )
        slug = data.get("project") or (decision.project.slug if decision else None)
        environment = data.get("environment") or (decision.environment if decision else "")
        slug = slug or (key.project.slug if key.project_id else None)
        environment = environment or key.environment
        key_binding_check(key, slug, environment)
        project = None
        if slug:
            project = project_get(tenant=self.tenant, slug=slug)
        action, created = services.action_request(
            tenant=self.tenant,
            kind=data["kind"],
            params=data["params"],
            project=project,
            environment=environment or "",
            decision=decision,
            requested_by=data["requested_by"] or getattr(key, "name", ""),
            idempotency_key=data.get("idempotency_key"),
            max_attempts=data["max_attempts"],
        )
        return Response(ActionSerializer(action).data, status=201 if created else 200)

    def confined_decisions(self):
        from controlplane.tenancy.api.views_base import confine

        queryset = Decision.objects.for_tenant(self.tenant)
        key = self.request.auth
        if key.is_bound:
            queryset = confine(queryset, key, Confine(project="project", environment="environment"))
        return queryset


class ActionDetailView(TenantScopedAPIView):
    model = Action
    required_scopes = {"GET": scopes.ACTIONS_READ}
    bound_keys = {"GET": ACTION_BINDING}
    serializer_class = ActionSerializer

    @extend_schema(operation_id="actions_retrieve")
    def get(self, request, id):
        return Response(ActionSerializer(self.get_object()).data)


class ActionLeaseView(TenantScopedAPIView):
    model = Action
    required_scopes = {"POST": scopes.ACTIONS_WRITE}
    bound_keys = {"POST": ACTION_BINDING}  # a bound worker leases only inside its binding
    serializer_class = LeaseSerializer

    @extend_schema(
        operation_id="actions_lease",
        request=LeaseSerializer,
        responses={200: ActionSerializer, 204: None},
        description="Lease the oldest ready action (pending and due, or whose lease expired): "
        "200 with it and its `epoch`, or 204 when none is ready. Complete or fail it with "
        "that epoch before `lease_expires_at`.",
    )
    def post(self, request):
        body = LeaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        action = services.action_lease(
            queryset=self.get_queryset(),
            worker=data["worker"],
            kinds=data.get("kinds"),
            lease_seconds=data.get("lease_seconds"),
        )
        if action is None:
            return Response(status=204)
        return Response(ActionSerializer(action).data)


class _ActionTransitionView(TenantScopedAPIView):
    model = Action
    required_scopes = {"POST": scopes.ACTIONS_WRITE}
    bound_keys = {"POST": ACTION_BINDING}


class ActionCompleteView(_ActionTransitionView):
    serializer_class = EpochSerializer

    @extend_schema(
        operation_id="actions_complete", request=EpochSerializer, responses=ActionSerializer
    )
    def post(self, request, id):
        action = self.get_object()
        body = EpochSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        done = services.action_complete(
            action_id=action.id, epoch=data["epoch"], result=data.get("result")
        )
        return Response(ActionSerializer(done).data)


class ActionFailView(_ActionTransitionView):
    serializer_class = FailSerializer

    @extend_schema(operation_id="actions_fail", request=FailSerializer, responses=ActionSerializer)
    def post(self, request, id):
        action = self.get_object()
        body = FailSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        failed = services.action_fail(
            action_id=action.id, epoch=data["epoch"], error=data.get("error"), retry=data["retry"]
        )
        return Response(ActionSerializer(failed).data)


class ActionCancelView(_ActionTransitionView):
    @extend_schema(operation_id="actions_cancel", request=None, responses=ActionSerializer)
    def post(self, request, id):
        cancelled = services.action_cancel(action_id=self.get_object().id)
        return Response(ActionSerializer(cancelled).data)
