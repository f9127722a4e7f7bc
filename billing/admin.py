"""Operator admin for plans and tenant plans."""

from django.contrib import admin

from billing.models import Plan, TenantPlan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "features"]
    search_fields = ["code", "name"]


@admin.register(TenantPlan)
class TenantPlanAdmin(admin.ModelAdmin):
    list_display = ["tenant", "plan", "updated_at"]
    list_select_related = ["tenant", "plan"]
    readonly_fields = ["tenant", "created_at", "updated_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
