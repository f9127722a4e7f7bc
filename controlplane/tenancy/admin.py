"""Operator admin for tenancy. Writes go through services; API key secrets are never displayed."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from controlplane.core.admin import ShownOnceAdminMixin
from controlplane.core.errors import TollgateError
from controlplane.tenancy import services
from controlplane.tenancy.models import ApiKey, Membership, Project, Tenant
from controlplane.tenancy.scopes import all_scopes


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "lifecycle", "created_at"]
    list_filter = ["lifecycle"]
    search_fields = ["slug", "name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    actions = ["suspend", "reactivate", "terminate"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # lifecycle changes only through the actions (services)
            return [*self.readonly_fields, "slug", "lifecycle"]
        return [*self.readonly_fields, "lifecycle"]

    def has_delete_permission(self, request, obj=None):
        return False  # tenants end by the Terminate action; their history stays

    def save_model(self, request, obj, form, change):
        if change:
            services.tenant_rename(tenant=obj, name=obj.name)
            return
        created = services.tenant_create(slug=obj.slug, name=obj.name)
        obj.pk = created.pk
        obj.refresh_from_db()

    def _set_lifecycle(self, request, queryset, lifecycle):
        for tenant in queryset:
            try:
                services.tenant_set_lifecycle(tenant=tenant, lifecycle=lifecycle)
            except TollgateError as exc:
                self.message_user(request, f"{tenant.slug}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{tenant.slug}: now {lifecycle}.", messages.SUCCESS)

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request, queryset):
        self._set_lifecycle(request, queryset, Tenant.Lifecycle.SUSPENDED)

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request, queryset):
        self._set_lifecycle(request, queryset, Tenant.Lifecycle.ACTIVE)

    @admin.action(description="Terminate selected tenants (final)")
    def terminate(self, request, queryset):
        self._set_lifecycle(request, queryset, Tenant.Lifecycle.TERMINATED)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tenant", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["slug", "name", "id", "tenant__slug"]
    readonly_fields = ["id", "created_at", "updated_at"]
    list_select_related = ["tenant"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [*self.readonly_fields, "tenant", "slug"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # budgets, decisions and keys refer to it; the API has no delete either

    def save_model(self, request, obj, form, change):
        if change:
            services.project_rename(project=obj, name=obj.name)
            return
        created = services.project_create(tenant=obj.tenant, slug=obj.slug, name=obj.name)
        obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__slug"]
    list_select_related = ["user", "tenant"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # Changing who or where would be a different membership: remove and add instead.
        return (
            [*self.readonly_fields, "user", "tenant"] if obj is not None else self.readonly_fields
        )

    def save_model(self, request, obj, form, change):
        saved = services.membership_set(tenant=obj.tenant, user=obj.user, role=obj.role)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.membership_remove(tenant=obj.tenant, user=obj.user, reason="admin")

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            services.membership_remove(
                tenant=membership.tenant, user=membership.user, reason="admin"
            )


class ApiKeyIssueForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[], widget=forms.CheckboxSelectMultiple, help_text="What the key may do."
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes", "project", "environment", "user", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [
            (name, f"{name}: {text}") for name, text in all_scopes().items()
        ]

    def clean(self):
        data = super().clean()
        project, tenant = data.get("project"), data.get("tenant")
        if project and tenant and project.tenant_id != tenant.pk:
            self.add_error("project", "This project belongs to another tenant.")
        user = data.get("user")
        if user and tenant and not user.memberships.filter(tenant=tenant).exists():
            self.add_error("user", "The user must be a member of the tenant.")
        expires_at = data.get("expires_at")
        if expires_at and expires_at <= timezone.now():
            self.add_error("expires_at", "Must be in the future.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(ShownOnceAdminMixin, admin.ModelAdmin):
    add_form = ApiKeyIssueForm
    list_display = [
        "name",
        "tenant",
        "masked",
        "project",
        "environment",
        "state",
        "last_used_at",
        "expires_at",
        "created_at",
    ]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "id", "tenant__slug"]
    list_select_related = ["tenant", "project"]
    actions = ["revoke"]
    # The digest is not secret-equivalent but has no use on screen; the secret is never stored.
    fields = [
        "id",
        "tenant",
        "name",
        "masked",
        "scopes",
        "project",
        "environment",
        "user",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    ]

    @admin.display(description="state")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def save_model(self, request, obj, form, change):
        if change:
            return  # keys are immutable; revoke and issue a new one instead
        data = form.cleaned_data
        api_key, plaintext = services.api_key_issue(
            tenant=data["tenant"],
            name=data["name"],
            scopes=data["scopes"],
            project=data.get("project"),
            environment=data.get("environment") or "",
            expires_at=data.get("expires_at"),
            user=data.get("user"),
            created_by=request.user,
        )
        obj.pk = api_key.pk
        obj.refresh_from_db()
        obj._plaintext_once = plaintext  # rendered once by response_add, never stored

    def log_addition(self, request, obj, message):
        return super().log_addition(request, obj, [{"added": {}}])

    def render_added(self, request, obj, plaintext):
        return self.render_once(
            request,
            "admin/tenancy/apikey_issued.html",
            api_key=obj,
            plaintext=plaintext,
            title="API key issued",
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = 0
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
