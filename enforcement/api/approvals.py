"""Approval endpoints (user credentials), token consumption and the public JWKS."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.core.serializers import StrictSerializer, UsdField
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, Confine, TenantScopedAPIView
from controlplane.tenancy.auth import ApiKeyAuthentication
from controlplane.tenancy.errors import TenancyErrorCode
from controlplane.tenancy.models import ApiKey, Membership, Tenant
from controlplane.tenancy.permissions import HasRequiredScopes
from enforcement import scopes
from enforcement.errors import EnforcementErrorCode
from enforcement.models import ApprovalRequest, ApprovalToken
from enforcement.selectors import approvals_for_approver, with_approval_details
from enforcement.services import approvals as approval_services
from enforcement.services import continuation
from enforcement.services import tokens as token_services

STATUSES = [choice for choice, _ in ApprovalRequest.State.choices]


# --- shapes -------------------------------------------------------------------------------------


class VoteOut(serializers.Serializer):
    user = serializers.CharField()
    vote = serializers.ChoiceField(choices=["approve", "deny"])
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ApprovalOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUSES)
    required_approvals = serializers.IntegerField()
    approvals_count = serializers.IntegerField()
    url = serializers.CharField()
    decision_id = serializers.CharField()
    reservation_id = serializers.CharField(allow_null=True)
    project = serializers.CharField()
    environment = serializers.CharField()
    amount_usd = serializers.CharField()
    requester = serializers.CharField(allow_blank=True)
    routing = serializers.DictField()
    votes = VoteOut(many=True)
    expires_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    token = serializers.CharField(
        allow_null=True,
        help_text="The approval token: in the vote response that completed the quorum, and "
        "once in GET for the API key that made the gate call; null otherwise.",
    )
    token_jti = serializers.CharField(allow_null=True)
    token_expires_at = serializers.DateTimeField(allow_null=True)
    token_retrieved_at = serializers.DateTimeField(allow_null=True)
    token_consumed_at = serializers.DateTimeField(allow_null=True)


def _token_record(approval: ApprovalRequest) -> ApprovalToken | None:
    try:
        return approval.token  # select_related / cached by with_approval_details
    except ApprovalToken.DoesNotExist:
        return None


def approval_body(approval: ApprovalRequest, *, token: str | None = None) -> dict:
    decision = approval.decision
    votes = list(approval.votes.all())
    record = _token_record(approval)
    return {
        "id": approval.id,
        "status": approval.state,
        "required_approvals": approval.required_approvals,
        "approvals_count": sum(1 for v in votes if v.vote == "approve"),
        "url": approval_services.approval_url(approval.id),
        "decision_id": decision.id,
        "reservation_id": approval.reservation_id,
        "project": decision.project.slug,
        "environment": decision.environment,
        "amount_usd": format_usd(decision.amount_micros),
        "requester": approval.requester,
        "routing": approval.routing,
        "votes": [
            {
                "user": v.user.get_username(),
                "vote": v.vote,
                "comment": v.comment,
                "created_at": v.created_at.isoformat(),
            }
            for v in votes
        ],
        "expires_at": approval.expires_at.isoformat(),
        "resolved_at": approval.resolved_at.isoformat() if approval.resolved_at else None,
        "created_at": approval.created_at.isoformat(),
        "token": token,
        "token_jti": record.jti if record else None,
        "token_expires_at": record.expires_at.isoformat() if record else None,
        "token_retrieved_at": record.retrieved_at.isoformat()
        if record and record.retrieved_at
        else None,
        "token_consumed_at": record.consumed_at.isoformat()
        if record and record.consumed_at
        else None,
    }


class VoteIn(StrictSerializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ConsumeIn(StrictSerializer):
    token = serializers.CharField(max_length=8192)
    expected_project = serializers.SlugField(max_length=63)
    expected_fingerprint = serializers.RegexField(r"^sha256:[0-9a-f]{64}$")
    expected_environment = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,63}$", required=False)
    cost_usd = UsdField(
        required=False, help_text="What the caller is about to spend; above max_cost_usd is 401."
    )
    ttl_seconds = serializers.IntegerField(
        required=False, min_value=1, help_text="New TTL of the held reservation."
    )


class ConsumeOut(serializers.Serializer):
    consumed = serializers.BooleanField()
    jti = serializers.CharField()
    approval_id = serializers.CharField()
    decision_id = serializers.CharField()
    reservation = serializers.DictField(allow_null=True)
    claims = serializers.DictField()
    consumed_at = serializers.DateTimeField()


# --- access -------------------------------------------------------------------------------------


class CsrfSessionAuthentication(SessionAuthentication):
    """Dashboard users: Django session, CSRF enforced (DRF does this for session auth)."""


class CsrfSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    """OpenAPI: the dashboard session cookie (CSRF token required on unsafe methods)."""

    target_class = CsrfSessionAuthentication
    name = "Session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


class ApiKeyOrSession(BasePermission):
    """An API key with the view's scope, or a logged-in user (dashboard session)."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return HasRequiredScopes().has_permission(request, view)
        user = request.user
        return user is not None and isinstance(user, get_user_model()) and user.is_authenticated


APPROVAL_BINDING = Confine(project="decision__project", environment="decision__environment")


class ApprovalAPIView(TenantScopedAPIView):
    model = ApprovalRequest
    authentication_classes = [ApiKeyAuthentication, CsrfSessionAuthentication]
    permission_classes = [ApiKeyOrSession]
    # A bound key sees and acts on the requests of its project/environment only.
    bound_keys = {"GET": APPROVAL_BINDING, "POST": APPROVAL_BINDING}

    def base_queryset(self):
        return with_approval_details(ApprovalRequest.objects.all())

    @property
    def tenant(self) -> Tenant:
        if isinstance(self.request.auth, ApiKey):
            return self.request.auth.tenant
        if not hasattr(self, "_session_tenant"):
            self._session_tenant = _session_tenant(self.request)
        return self._session_tenant

    def actor(self):
        """The person acting: the key's user, or the session user."""
        user = self.request.user
        if isinstance(user, get_user_model()):
            return user
        raise TollgateError(
            EnforcementErrorCode.APPROVER_IDENTITY_REQUIRED,
            "Approvals are decided by people: this API key is not bound to a user.",
            remediation="Use a personal key (dashboard: My API keys, or `manage.py "
            "create_api_key --user`), or sign in to the dashboard.",
            status=403,
        )


def _session_tenant(request) -> Tenant:
    memberships = Membership.objects.filter(user=request.user).select_related("tenant")
    wanted = request.query_params.get("tenant")
    if wanted:
        memberships = memberships.filter(tenant__slug=wanted)
    rows = list(memberships[:2])
    if not rows:
        raise TollgateError(
            EnforcementErrorCode.APPROVER_NOT_AUTHORIZED,
            "You are not a member of this tenant."
            if wanted
            else "You are not a member of any tenant.",
            remediation="Ask a tenant owner to add you as a member.",
            status=403,
        )
    if len(rows) > 1:
        raise TollgateError(
            EnforcementErrorCode.TENANT_AMBIGUOUS,
            "You are a member of several tenants; say which one.",
            remediation="Add `?tenant=<slug>` to the URL.",
            errors=[{"field": "tenant", "message": "Required.", "code": "required"}],
        )
    tenant = rows[0].tenant
    if tenant.lifecycle != Tenant.Lifecycle.ACTIVE:
        raise TollgateError(
            TenancyErrorCode.TENANT_SUSPENDED,
            f"This tenant is {tenant.lifecycle}.",
            remediation="Contact your Tollgate operator.",
            status=403,
        )
    return tenant


# --- views --------------------------------------------------------------------------------------


class ApprovalListView(ApprovalAPIView):
    required_scopes = {"GET": scopes.APPROVALS_READ}
    serializer_class = ApprovalOut

    @extend_schema(
        operation_id="approvals_list",
        parameters=[OpenApiParameter("status", str, enum=STATUSES, default="pending")],
        responses=ApprovalOut(many=True),
        description="Only the requests the caller may act on (pending: may vote and has not).",
    )
    def get(self, request):
        wanted = request.query_params.get("status", "pending")
        if wanted not in STATUSES:
            raise TollgateError(
                "VALIDATION_FAILED",
                f"`status` must be one of {', '.join(STATUSES)}.",
                errors=[{"field": "status", "message": "Invalid choice.", "code": "invalid"}],
            )
        queryset = with_approval_details(
            approvals_for_approver(tenant=self.tenant, user=self.actor(), status=wanted)
        )
        # An approval's body is small and bounded; serialising the page in one chunk keeps the
        # prefetches to one round each (a fixed number of queries per page).
        return self.page_response(
            self.confined(queryset),
            lambda rows: [approval_body(a) for a in rows],
            chunk_rows=self.paginator.max_page_size,
        )


class ApprovalDetailView(ApprovalAPIView):
    required_scopes = {"GET": scopes.APPROVALS_READ}
    serializer_class = ApprovalOut

    @extend_schema(operation_id="approvals_retrieve", responses=ApprovalOut)
    def get(self, request, id):
        approval = self.get_object()
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        token = token_services.approval_token_retrieve(approval=approval, api_key=api_key)
        if token is not None:
            approval = self.get_object()  # the hand-over may just have set token_retrieved_at
        return Response(approval_body(approval, token=token))


class _VoteView(ApprovalAPIView):
    required_scopes = {"POST": scopes.APPROVALS_WRITE}
    serializer_class = VoteIn
    vote = ""

    def post(self, request, id):
        approval = self.get_object()  # another tenant's id is a 404 before anything else
        body = VoteIn(data=request.data)
        body.is_valid(raise_exception=True)
        result = approval_services.approval_vote(
            approval_id=approval.id,
            tenant_id=self.tenant.id,
            user=self.actor(),
            vote=self.vote,
            comment=body.validated_data["comment"],
            via="api" if isinstance(request.auth, ApiKey) else "session",
        )
        return Response(approval_body(result.approval, token=result.token))


class ApprovalApproveView(_VoteView):
    vote = "approve"

    @extend_schema(operation_id="approvals_approve", request=VoteIn, responses=ApprovalOut)
    def post(self, request, id):
        return super().post(request, id)


class ApprovalDenyView(_VoteView):
    vote = "deny"

    @extend_schema(operation_id="approvals_deny", request=VoteIn, responses=ApprovalOut)
    def post(self, request, id):
        return super().post(request, id)


class CancelIn(StrictSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class GateOrApprovalsWrite(BasePermission):
    """A logged-in user, or an API key with ``gate:write`` (the requester's pipeline) or
    ``approvals:write`` (a person's key)."""

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if isinstance(key, ApiKey):
            if key.has_scope(scopes.GATE_WRITE) or key.has_scope(scopes.APPROVALS_WRITE):
                return True
            raise TollgateError(
                TenancyErrorCode.SCOPE_MISSING,
                f"This API key lacks the scope {scopes.GATE_WRITE!r} or "
                f"{scopes.APPROVALS_WRITE!r}.",
                remediation="Use the key that gated the request, or a person's key.",
                status=403,
                extra={"required_scope": scopes.GATE_WRITE},
            )
        return ApiKeyOrSession().has_permission(request, view)


class ApprovalCancelView(ApprovalAPIView):
    """Withdraw a pending request; its held reservation is released.

    Allowed to the API key that asked (the pipeline gives up), the person who asked, and the
    tenant's owners and admins.
    """

    permission_classes = [GateOrApprovalsWrite]
    serializer_class = CancelIn

    @extend_schema(operation_id="approvals_cancel", request=CancelIn, responses=ApprovalOut)
    def post(self, request, id):
        approval = self.get_object()  # another tenant's id is a 404 before anything else
        body = CancelIn(data=request.data)
        body.is_valid(raise_exception=True)
        who = self._canceller(approval)
        reason = body.validated_data["reason"] or "withdrawn"
        approval = approval_services.approval_cancel(
            approval_id=approval.id, tenant_id=self.tenant.id, reason=f"{who}: {reason}"
        )
        return Response(approval_body(approval))

    def _canceller(self, approval: ApprovalRequest) -> str:
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        if key is not None and approval.requester_api_key_id == key.id:
            return f"api-key:{key.prefix}"
        user = self.request.user
        if isinstance(user, get_user_model()):
            if user.pk in (approval.requester_user_id, approval.requester_creator_id):
                return f"user:{user.get_username()}"
            role = (
                Membership.objects.filter(user=user, tenant=self.tenant)
                .values_list("role", flat=True)
                .first()
            )
            if role in (Membership.Role.OWNER, Membership.Role.ADMIN):
                return f"{role}:{user.get_username()}"
        raise TollgateError(
            EnforcementErrorCode.APPROVER_NOT_AUTHORIZED,
            "Only the requester (its API key or person) or a tenant owner or admin may cancel "
            "an approval request.",
            remediation="Use the key that gated the request, or ask an owner or admin.",
            status=403,
        )


class ApprovalTokenConsumeView(TenantScopedAPIView):
    required_scopes = {"POST": scopes.GATE_WRITE}
    # The expected project/environment must be the key's (checked below); the token is bound
    # to them, so a bound key consumes only tokens of its own binding.
    bound_keys = {"POST": CHECKED_IN_VIEW}
    serializer_class = ConsumeIn

    @extend_schema(
        operation_id="approval_tokens_consume",
        request=ConsumeIn,
        responses=ConsumeOut,
        description="Verify and consume an approval token once; replay is 409 "
        "TOKEN_ALREADY_CONSUMED, any verification failure 401 TOKEN_INVALID.",
    )
    def post(self, request):
        body = ConsumeIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        done = continuation.approval_token_consume(
            tenant=self.tenant,
            api_key=request.auth,
            token=data["token"],
            expected_project=data["expected_project"],
            expected_fingerprint=data["expected_fingerprint"],
            expected_environment=data.get("expected_environment"),
            cost_micros=data.get("cost_usd"),
            ttl_seconds=data.get("ttl_seconds"),
        )
        reservation = done.reservation
        return Response(
            {
                "consumed": True,
                "jti": done.record.jti,
                "approval_id": done.claims["approval_id"],
                "decision_id": done.claims["decision_id"],
                "reservation": {
                    "id": reservation.id,
                    "state": reservation.state,
                    "amount_usd": format_usd(reservation.amount_micros),
                    "expires_at": reservation.expires_at.isoformat(),
                }
                if reservation
                else None,
                "claims": done.claims,
                "consumed_at": done.record.consumed_at.isoformat(),
            }
        )


class JwksView(APIView):
    """Public keys that verify approval tokens (RFC 7517 / RFC 8037 OKP)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jwks", auth=[], responses={200: dict})
    def get(self, request):
        return Response(token_services.jwks(), headers={"Cache-Control": "public, max-age=300"})
