"""Operator admin for approver groups (SCIM will fill them later); writes go through services."""

from django import forms
from django.contrib import admin

from controlplane.identity.models import ApproverGroup
from controlplane.identity.services import approver_group_delete, approver_group_save


class ApproverGroupForm(forms.ModelForm):
    class Meta:
        model = ApproverGroup
        fields = ["tenant", "name", "external_id", "members"]

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        outsiders = [
            user.get_username()
            for user in data.get("members") or []
            if tenant is not None and not user.memberships.filter(tenant=tenant).exists()
        ]
        if outsiders:
            self.add_error(
                "members",
                f"Not members of this tenant: {', '.join(outsiders)}. Add them to the tenant "
                "first (Memberships); a group grants authority only to members.",
            )
        return data


@admin.register(ApproverGroup)
class ApproverGroupAdmin(admin.ModelAdmin):
    form = ApproverGroupForm
    list_display = ["name", "tenant", "external_id", "member_count", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "external_id", "tenant__slug"]
    list_select_related = ["tenant"]
    filter_horizontal = ["members"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="members")
    def member_count(self, obj):
        return len(obj.members.all())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = approver_group_save(
            tenant=obj.tenant,
            name=data["name"],
            external_id=data.get("external_id") or "",
            members=data.get("members"),
            group=obj if change else None,
        )
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        return  # members were set by the service (with its ledger entry)

    def delete_model(self, request, obj):
        approver_group_delete(group=obj)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            approver_group_delete(group=group)
