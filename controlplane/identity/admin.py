"""Operator admin for approver groups (SCIM will fill them later)."""

from django.contrib import admin

from controlplane.identity.models import ApproverGroup


@admin.register(ApproverGroup)
class ApproverGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "external_id", "member_count", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "external_id", "tenant__slug"]
    filter_horizontal = ["members"]
    readonly_fields = ["id", "created_at", "updated_at"]

    @admin.display(description="members")
    def member_count(self, obj):
        return obj.members.count()
