"""Operator admin for plans and tenant plans (writes go through billing.services)."""

from django.contrib import admin

from billing.models import Plan, TenantPlan
from billing.services import plan_upsert


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "features"]
    search_fields = ["code", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # tenants are on plans; the PROTECT would refuse it anyway

    def save_model(self, request, obj, form, change):
        plan_upsert(code=obj.code, name=obj.name, features=list(obj.features or []))


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
