"""Ledger read, verification and signed export for the caller's tenant.

Every endpoint here reads the whole tenant's ledger, so a key bound to a project or environment
gets 403 ``KEY_BINDING_FORBIDS`` (no ``bound_keys`` entries).
"""

from __future__ import annotations

import re

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from controlplane.audit.exports import ledger_export_response
from controlplane.audit.models import LedgerEntry, LedgerVerification
from controlplane.audit.services import ledger_verify_request
from controlplane.core.ids import ID_RE
from controlplane.core.params import choice_param, pattern_param, timestamp_param
from controlplane.tenancy.api.views_base import TenantScopedAPIView
from controlplane.tenancy.scopes import LEDGER_READ

_CHAIN_RE = re.compile(r"^[a-z]{2,10}:[A-Za-z0-9_.:\-]{1,72}$")


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = ["id", "chain", "seq", "kind", "payload", "prev_hash", "hash", "recorded_at"]


class LedgerListView(TenantScopedAPIView):
    model = LedgerEntry
    required_scopes = {"GET": LEDGER_READ}
    serializer_class = LedgerEntrySerializer

    @extend_schema(
        operation_id="ledger_list",
        responses=LedgerEntrySerializer(many=True),
        parameters=[
            OpenApiParameter("chain", str, description="e.g. bp:bpr_… or control:ten_…"),
            OpenApiParameter("after", str, description="entry id"),
            OpenApiParameter("limit", int, description="1..200 (default 50)"),
        ],
    )
    def get(self, request):
        queryset = self.get_queryset()
        chain = pattern_param(request.query_params, "chain", _CHAIN_RE, "a chain id")
        after = pattern_param(request.query_params, "after", ID_RE, "a ledger entry id (led_…)")
        if chain:
            queryset = queryset.filter(chain=chain)
        if after:
            queryset = queryset.filter(id__gt=after)
        return self.page_response(
            queryset, lambda rows: LedgerEntrySerializer(rows, many=True).data
        )


class VerificationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="state")
    verified_at = serializers.DateTimeField(source="finished_at", allow_null=True)

    class Meta:
        model = LedgerVerification
        fields = [
            "id",
            "status",
            "ok",
            "chains_checked",
            "entries_checked",
            "checkpoints_checked",
            "problems",
            "problems_truncated",
            "trigger",
            "created_at",
            "started_at",
            "verified_at",
        ]


class VerifyStatusSerializer(serializers.Serializer):
    """The last finished verification of the tenant (flattened) and the one in progress."""

    status = serializers.ChoiceField(choices=["done", "never"])
    ok = serializers.BooleanField(allow_null=True)
    chains_checked = serializers.IntegerField()
    entries_checked = serializers.IntegerField()
    checkpoints_checked = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.DictField())
    problems_truncated = serializers.BooleanField()
    verification_id = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    running = VerificationSerializer(allow_null=True)


class LedgerVerifyView(TenantScopedAPIView):
    required_scopes = {"GET": LEDGER_READ, "POST": LEDGER_READ}
    serializer_class = VerifyStatusSerializer

    @extend_schema(
        operation_id="ledger_verify_status",
        responses=VerifyStatusSerializer,
        description="The last finished verification of this tenant's ledger (no verification "
        "runs in the request): `status: never` until one has run. `running` is the one queued "
        "or in progress, if any. POST to start one.",
    )
    def get(self, request):
        tenant_id = self.tenant.id
        rows = LedgerVerification.objects.filter(tenant_id=tenant_id)
        last = rows.filter(state="done").order_by("-finished_at").first()
        running = rows.filter(state__in=["queued", "running"]).first()
        return Response(
            {
                "status": "done" if last else "never",
                "ok": last.ok if last else None,
                "chains_checked": last.chains_checked if last else 0,
                "entries_checked": last.entries_checked if last else 0,
                "checkpoints_checked": last.checkpoints_checked if last else 0,
                "problems": last.problems if last else [],
                "problems_truncated": last.problems_truncated if last else False,
                "verification_id": last.id if last else None,
                "verified_at": last.finished_at.isoformat() if last else None,
                "running": VerificationSerializer(running).data if running else None,
            }
        )

    @extend_schema(
        operation_id="ledger_verify_start",
        request=None,
        responses={202: VerificationSerializer},
        description="Queue a verification of every chain and checkpoint of this tenant; a "
        "worker runs it. At most one is queued or running per tenant: asking again returns it. "
        "Poll `GET /api/v1/ledger/verifications/{id}` (or GET /api/v1/ledger/verify).",
    )
    def post(self, request):
        verification, _ = ledger_verify_request(tenant_id=self.tenant.id)
        return Response(
            VerificationSerializer(verification).data,
            status=202,
            headers={"Location": f"/api/v1/ledger/verifications/{verification.id}"},
        )


class LedgerVerificationDetailView(TenantScopedAPIView):
    required_scopes = {"GET": LEDGER_READ}
    serializer_class = VerificationSerializer

    @extend_schema(operation_id="ledger_verifications_retrieve", responses=VerificationSerializer)
    def get(self, request, id):
        row = LedgerVerification.objects.filter(tenant_id=self.tenant.id, pk=id).first()
        if row is None:
            raise Http404
        return Response(VerificationSerializer(row).data)


class LedgerExportView(TenantScopedAPIView):
    model = LedgerEntry
    required_scopes = {"GET": LEDGER_READ}

    @extend_schema(
        operation_id="ledger_export",
        parameters=[
            OpenApiParameter("format", str, enum=["jsonl", "csv"]),
            OpenApiParameter("since", str),
            OpenApiParameter("until", str),
        ],
        responses={200: OpenApiResponse(response=str, description="JSONL or CSV, streamed")},
        description="JSONL or CSV of ledger entries, streamed in constant memory; the "
        "`X-Tollgate-Manifest` header carries a signed manifest (count, sha256 of the body) "
        "verifiable with the ledger public key. 422 `EXPORT_TOO_LARGE` above the entry limit.",
    )
    def get(self, request):
        params = request.query_params
        fmt = choice_param(params, "format", ("jsonl", "csv"), default="jsonl")
        since, until = timestamp_param(params, "since"), timestamp_param(params, "until")
        queryset = self.get_queryset()
        if since:
            queryset = queryset.filter(recorded_at__gte=since)
        if until:
            queryset = queryset.filter(recorded_at__lt=until)
        return ledger_export_response(
            queryset, tenant=self.tenant, fmt=fmt, since=since, until=until
        )
