"""Admin for what billing features put into enforcement: budget alerts and invoice
reconciliation imports (each gated by its entitlement through ``EntitledAdminMixin``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from billing.catalog import FORECAST_ALERTS, INVOICE_RECONCILIATION
from billing.entitlements import EntitledAdminMixin
from controlplane.core.admin import UsdFieldsMixin, usd_display
from enforcement.admin import ReadOnlyMixin
from enforcement.models import BudgetAlert, ReconciliationImport, ReconciliationLine
from enforcement.services.reconciliation_imports import reconciliation_import


@admin.register(BudgetAlert)
class BudgetAlertAdmin(EntitledAdminMixin, UsdFieldsMixin, ReadOnlyMixin, admin.ModelAdmin):
    """Fired alerts (read-only). Forecast alerts are an entitlement: their pages are refused
    for a tenant whose plan no longer includes ``forecast_alerts``."""

    entitlement = FORECAST_ALERTS
    list_display = ["fired_at", "tenant", "budget", "kind", "threshold_percent", "spent", "limit"]
    list_filter = ["kind", "tenant"]
    list_select_related = ["tenant", "budget"]

    def entitlement_error(self, obj):
        if obj.kind != BudgetAlert.Kind.FORECAST:
            return None  # threshold alerts come with every plan
        return super().entitlement_error(obj)

    spent = usd_display("spent_micros", "spent (USD)")
    limit = usd_display("limit_micros", "limit (USD)")


class ReconciliationImportForm(forms.ModelForm):
    bill = forms.FileField(help_text="FOCUS 1.x CSV or an OpenAI costs JSON page.")

    class Meta:
        model = ReconciliationImport
        fields = ["tenant", "format"]


class ReconciliationLineInline(UsdFieldsMixin, ReadOnlyMixin, admin.TabularInline):
    model = ReconciliationLine
    fields = ["line_numbers", "outcome", "reason", "reservation", "external_ref", "amount_micros"]
    readonly_fields = fields
    extra = 0


@admin.register(ReconciliationImport)
class ReconciliationImportAdmin(EntitledAdminMixin, UsdFieldsMixin, admin.ModelAdmin):
    """Upload a bill for a tenant (the same service as the API); imports are read-only after."""

    entitlement = INVOICE_RECONCILIATION
    form = ReconciliationImportForm
    list_display = [
        "created_at",
        "tenant",
        "format",
        "filename",
        "lines_total",
        "lines_matched",
        "lines_unmatched",
        "reservations_invoiced",
    ]
    list_filter = ["format", "tenant"]
    list_select_related = ["tenant"]
    inlines = [ReconciliationLineInline]

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "format", "bill"]
        return [
            "tenant",
            "format",
            "filename",
            "sha256",
            "lines_total",
            "lines_matched",
            "lines_unmatched",
            "reservations_invoiced",
            "invoiced_micros",
            "adjustment_micros",
            "unmatched_micros",
            "actor",
            "created_at",
        ]

    def save_model(self, request, obj, form, change):
        bill = form.cleaned_data["bill"]
        run, created = reconciliation_import(
            tenant=obj.tenant,
            format=obj.format,
            content=bill.read(),
            filename=bill.name,
            actor=f"admin:{request.user.get_username()}",
        )
        obj.pk = run.pk
        obj._state.adding = False
        if not created:
            self.message_user(request, "This file was imported before; nothing was posted again.")

    def save_related(self, request, form, formsets, change):
        return None  # the service wrote the lines
