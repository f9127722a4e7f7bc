"""Invoice reconciliation imports: upload a bill, get back what matched and what did not."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from billing.catalog import INVOICE_RECONCILIATION
from billing.entitlements import EntitledViewMixin
from controlplane.core.errors import TollgateError
from controlplane.core.money import format_usd
from controlplane.tenancy.api.views_base import TenantScopedAPIView
from enforcement import scopes
from enforcement.models import ReconciliationImport, ReconciliationLine
from enforcement.services.reconciliation_imports import reconciliation_import

FORMAT_BY_CONTENT_TYPE = {
    "text/csv": ReconciliationImport.Format.FOCUS_CSV,
    "application/json": ReconciliationImport.Format.OPENAI_COSTS,
}


class ReconciliationLineSerializer(serializers.ModelSerializer):
    reservation_id = serializers.CharField(allow_null=True)
    amount_usd = serializers.SerializerMethodField()
    adjustment_usd = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationLine
        fields = [
            "line_numbers",
            "outcome",
            "reason",
            "reservation_id",
            "external_ref",
            "amount_usd",
            "adjustment_usd",
        ]

    def get_amount_usd(self, obj) -> str:
        return format_usd(obj.amount_micros)

    def get_adjustment_usd(self, obj) -> str | None:
        return None if obj.adjustment_micros is None else format_usd(obj.adjustment_micros)


class ReconciliationImportSerializer(serializers.ModelSerializer):
    invoiced_usd = serializers.SerializerMethodField()
    adjustment_usd = serializers.SerializerMethodField()
    unmatched_usd = serializers.SerializerMethodField()
    lines = ReconciliationLineSerializer(many=True, read_only=True)

    class Meta:
        model = ReconciliationImport
        fields = [
            "id",
            "format",
            "filename",
            "sha256",
            "lines_total",
            "lines_matched",
            "lines_unmatched",
            "reservations_invoiced",
            "invoiced_usd",
            "adjustment_usd",
            "unmatched_usd",
            "created_at",
            "lines",
        ]

    def get_invoiced_usd(self, obj) -> str:
        return format_usd(obj.invoiced_micros)

    def get_adjustment_usd(self, obj) -> str:
        return format_usd(obj.adjustment_micros)

    def get_unmatched_usd(self, obj) -> str:
        return format_usd(obj.unmatched_micros)


class ReconciliationImportListView(EntitledViewMixin, TenantScopedAPIView):
    entitlement = INVOICE_RECONCILIATION
    model = ReconciliationImport
    required_scopes = {"GET": scopes.RESERVATIONS_READ, "POST": scopes.RESERVATIONS_WRITE}
    serializer_class = ReconciliationImportSerializer

    def base_queryset(self):
        return ReconciliationImport.objects.prefetch_related("lines")

    @extend_schema(
        operation_id="reconciliation_imports_list",
        responses=ReconciliationImportSerializer(many=True),
        parameters=[OpenApiParameter("limit", int, description="1..200 (default 50)")],
    )
    def get(self, request):
        return self.page_response(
            self.get_queryset(), lambda rows: ReconciliationImportSerializer(rows, many=True).data
        )

    @extend_schema(
        operation_id="reconciliation_imports_create",
        request={"text/csv": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(ReconciliationImport.Format.values),
                description="Default from Content-Type: text/csv = focus_csv, "
                "application/json = openai_costs.",
            ),
            OpenApiParameter("filename", str, description="Kept with the import."),
        ],
        responses={201: ReconciliationImportSerializer, 200: ReconciliationImportSerializer},
        description="Upload a FOCUS 1.x cost and usage CSV or an OpenAI costs JSON page. "
        "Matched committed reservations become `invoiced` (the difference to the reported cost "
        "is posted to their budgets); every other line is listed with its reason. 201 for a "
        "new import, 200 when the same file was imported before (nothing posted twice).",
    )
    def post(self, request):
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        fmt = request.query_params.get("format") or FORMAT_BY_CONTENT_TYPE.get(content_type)
        if fmt not in ReconciliationImport.Format.values:
            raise TollgateError(
                "VALIDATION_FAILED",
                "Say which bill this is: ?format=focus_csv or ?format=openai_costs "
                "(or send Content-Type text/csv / application/json).",
                errors=[{"field": "format", "message": "Unknown format.", "code": "invalid"}],
            )
        run, created = reconciliation_import(
            tenant=self.tenant,
            format=fmt,
            content=request.body,
            filename=request.query_params.get("filename", ""),
            actor=f"api_key:{request.auth.pk}",
        )
        return Response(
            ReconciliationImportSerializer(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ReconciliationImportDetailView(EntitledViewMixin, TenantScopedAPIView):
    entitlement = INVOICE_RECONCILIATION
    model = ReconciliationImport
    required_scopes = {"GET": scopes.RESERVATIONS_READ}
    serializer_class = ReconciliationImportSerializer

    @extend_schema(operation_id="reconciliation_imports_retrieve")
    def get(self, request, id):
        return Response(ReconciliationImportSerializer(self.get_object()).data)
