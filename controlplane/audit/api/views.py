"""Ledger read, verification and signed export for the caller's tenant."""

from __future__ import annotations

import base64
import csv
import io
import json

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from controlplane.audit import signing
from controlplane.audit.models import LedgerEntry
from controlplane.audit.verify import verify_ledger
from controlplane.core.canonical import canonical_json, sha256_hex
from controlplane.core.errors import TollgateError
from controlplane.tenancy.api.views_base import TenantScopedAPIView
from controlplane.tenancy.scopes import LEDGER_READ

EXPORT_LIMIT = 100_000


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
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise TollgateError(
                "VALIDATION_FAILED",
                "`format` must be jsonl or csv.",
                errors=[{"field": "format", "message": "Use jsonl or csv.", "code": "invalid"}],
            )
        since, until = _time_param(request, "since"), _time_param(request, "until")
        queryset = self.get_queryset().order_by("recorded_at", "chain", "seq")
        if since:
            queryset = queryset.filter(recorded_at__gte=since)
        if until:
            queryset = queryset.filter(recorded_at__lt=until)
        if queryset.count() > EXPORT_LIMIT:
            raise TollgateError(
                "EXPORT_TOO_LARGE",
                f"More than {EXPORT_LIMIT} entries in the window.",
                remediation="Narrow the window with since/until and export in parts.",
                status=422,
            )
        rows = [LedgerEntrySerializer(entry).data for entry in queryset.iterator(chunk_size=2000)]
        if fmt == "jsonl":
            body = "".join(canonical_json(json.loads(json.dumps(row))) + "\n" for row in rows)
            content_type = "application/x-ndjson"
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(
                ["id", "chain", "seq", "kind", "payload", "prev_hash", "hash", "recorded_at"]
            )
            for row in rows:
                writer.writerow(
                    [
                        row["id"],
                        row["chain"],
                        row["seq"],
                        row["kind"],
                        canonical_json(row["payload"]),
                        row["prev_hash"],
                        row["hash"],
                        row["recorded_at"],
                    ]
                )
            body = buffer.getvalue()
            content_type = "text/csv"
        manifest = {
            "tenant": self.tenant.id,
            "format": fmt,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "count": len(rows),
            "sha256": sha256_hex(body),
        }
        signed = {
            **manifest,
            "key_id": signing.key_id(),
            "public_key": base64.b64encode(signing.public_key_bytes()).decode(),
            "signature": signing.sign(canonical_json(manifest).encode()),
        }
        response = HttpResponse(body, content_type=content_type)
        response["X-Tollgate-Manifest"] = canonical_json(signed)
        response["Content-Disposition"] = f'attachment; filename="ledger-{self.tenant.slug}.{fmt}"'
        return response
