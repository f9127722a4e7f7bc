"""Read-only ledger views, ledger verification, checkpoints, webhook endpoints and the outbox."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from controlplane.audit.models import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerVerification,
    OutboxDelivery,
    OutboxEvent,
    WebhookEndpoint,
)
from controlplane.audit.selectors import ledger_status, running_verification
from controlplane.audit.services import (
    checkpoint_create,
    ledger_verify_request,
    webhook_endpoint_delete,
    webhook_endpoint_save,
)
from controlplane.core.errors import TollgateError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["recorded_at", "tenant", "chain", "seq", "kind", "short_hash"]
    list_filter = ["kind", "tenant"]
    search_fields = ["chain", "id", "kind"]
    ordering = ["-recorded_at"]
    change_list_template = "admin/audit/ledgerentry/change_list.html"

    @admin.display(description="hash")
    def short_hash(self, obj):
        return obj.hash[:16] + "…"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), **ledger_status()}
        return super().changelist_view(request, extra_context=extra_context)

    def get_urls(self):
        extra = [
            path(
                "verify/",
                self.admin_site.admin_view(self.verify_view),
                name="audit_ledgerentry_verify",
            )
        ]
        return extra + super().get_urls()

    def verify_view(self, request):
        """The last verification of every tenant's ledger and the one in progress; POST queues
        one for a worker (nothing is verified in the request) or signs a checkpoint."""
        if request.method == "POST":
            if "checkpoint" in request.POST:
                checkpoint = checkpoint_create()
                self.message_user(request, f"Checkpoint {checkpoint.id} signed.", messages.SUCCESS)
            elif "verify" in request.POST:
                try:
                    verification, created = ledger_verify_request(tenant_id="", trigger="admin")
                except TollgateError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"Verification {verification.id} "
                        + ("queued for a worker." if created else "is already under way."),
                        messages.INFO,
                    )
            return redirect("admin:audit_ledgerentry_verify")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Ledger verification",
            "running_verification": running_verification(),
            **ledger_status(),
        }
        return TemplateResponse(request, "admin/audit/verify.html", context)


@admin.register(LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "id", "key_id", "heads_sha256"]


@admin.register(LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "status",
        "trigger",
        "tenant_id",
        "chains_checked",
        "entries_checked",
        "checkpoints_checked",
    ]
    list_filter = ["ok", "trigger"]
    readonly_fields = [
        "id",
        "created_at",
        "ok",
        "trigger",
        "tenant_id",
        "chains_checked",
        "entries_checked",
        "checkpoints_checked",
        "problems",
    ]
    change_list_template = "admin/audit/ledgerverification/change_list.html"

    @admin.display(description="result", boolean=False)
    def status(self, obj):
        return "intact" if obj.ok else f"TAMPERING DETECTED ({len(obj.problems)})"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), **ledger_status()}
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "tenant", "active", "event_types", "created_at"]
    list_filter = ["active", "tenant"]
    search_fields = ["url", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = ["id", "created_at", "updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        webhook_endpoint_save(endpoint=obj)

    def delete_model(self, request, obj):
        webhook_endpoint_delete(endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "id", "tenant", "event_type", "dispatched_at"]
    list_select_related = ["tenant"]
    list_filter = ["event_type"]
    search_fields = ["id", "event_type"]


@admin.register(OutboxDelivery)
class OutboxDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event", "endpoint", "state", "attempts", "last_status", "next_attempt_at"]
    list_filter = ["state"]
    list_select_related = ["event", "endpoint"]
