"""Operator admin for approver groups (SCIM will fill them later)."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model

from controlplane.core.errors import TollgateError
from controlplane.identity.models import ApproverGroup
from controlplane.tenancy import plan_limits


class ApproverGroupForm(forms.ModelForm):
    class Meta:
        model = ApproverGroup
        fields = ["tenant", "name", "external_id", "members"]

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        members = data.get("members")
        if tenant is None or members is None:
            return data
        # Approvers are the distinct people in any of the tenant's groups (the plan's limit).
        other_groups = ApproverGroup.objects.filter(tenant=tenant).exclude(pk=self.instance.pk)
        elsewhere = (
            get_user_model()
            .objects.filter(approver_groups__in=other_groups)
            .values_list("pk", flat=True)
        )
        count = len(set(elsewhere) | {user.pk for user in members})
        try:
            plan_limits.check(tenant=tenant, limit="approvers", count=count)
        except TollgateError as exc:
            self.add_error("members", f"{exc.code}: {exc.message} {exc.remediation or ''}")
        return data


@admin.register(ApproverGroup)
class ApproverGroupAdmin(admin.ModelAdmin):
    form = ApproverGroupForm
    list_display = ["name", "tenant", "external_id", "member_count", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "external_id", "tenant__slug"]
    filter_horizontal = ["members"]
    readonly_fields = ["id", "created_at", "updated_at"]

    @admin.display(description="members")
    def member_count(self, obj):
        return obj.members.count()
