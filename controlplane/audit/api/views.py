"""Ledger read, verification and signed export for the caller's tenant."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from controlplane.audit.export import ledger_export
from controlplane.audit.models import LedgerEntry
from controlplane.audit.verify import verify_ledger
from controlplane.core.errors import TollgateError
from controlplane.tenancy.api.views_base import TenantScopedAPIView
from controlplane.tenancy.scopes import LEDGER_READ


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = ["id", "chain", "seq", "kind", "payload", "prev_hash", "hash", "recorded_at"]


def _time_param(request, name):
    raw = request.query_params.get(name)
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        raise TollgateError(
            "VALIDATION_FAILED",
            f"`{name}` must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00Z.",
            errors=[{"field": name, "message": "Invalid timestamp.", "code": "invalid"}],
        )
    return value


class LedgerListView(TenantScopedAPIView):
    model = LedgerEntry
    required_scopes = {"GET": LEDGER_READ}
    serializer_class = LedgerEntrySerializer

    @extend_schema(
        operation_id="ledger_list",
        responses=LedgerEntrySerializer(many=True),
        parameters=[
            OpenApiParameter("chain", str),
            OpenApiParameter("after", str, description="entry id"),
        ],
    )
    def get(self, request):
        queryset = self.get_queryset()
        if request.query_params.get("chain"):
            queryset = queryset.filter(chain=request.query_params["chain"])
        if request.query_params.get("after"):
            queryset = queryset.filter(id__gt=request.query_params["after"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(LedgerEntrySerializer(page, many=True).data)


class LedgerVerifyView(TenantScopedAPIView):
    required_scopes = {"GET": LEDGER_READ}

    @extend_schema(operation_id="ledger_verify", responses={200: dict})
    def get(self, request):
        report = verify_ledger(tenant_id=self.tenant.id)
        return Response(report.to_dict())


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
        responses={200: str},
        description="JSONL or CSV of ledger entries; the `X-Tollgate-Manifest` header carries a "
        "signed manifest (count, sha256 of the body) verifiable with the ledger public key.",
    )
    def get(self, request):
        export = ledger_export(
            tenant=self.tenant,
            fmt=request.query_params.get("format", "jsonl"),
            since=_time_param(request, "since"),
            until=_time_param(request, "until"),
        )
        response = HttpResponse(export.body, content_type=export.content_type)
        response["X-Tollgate-Manifest"] = export.manifest
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response
