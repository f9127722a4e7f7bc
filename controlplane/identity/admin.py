"""Operator admin for approver groups, SCIM tokens and SCIM users. Writes go through services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from controlplane.core.admin import ShownOnceAdminMixin
from controlplane.core.errors import TollgateError
from controlplane.identity.models import ApproverGroup, ScimToken, ScimUser
from controlplane.identity.selectors import approver_count
from controlplane.identity.services.groups import approver_group_delete, approver_group_save
from controlplane.identity.services.tokens import (
    scim_token_issue,
    scim_token_revoke,
    scim_token_rotate,
)
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
        outsiders = [
            user.get_username()
            for user in members
            if not user.memberships.filter(tenant=tenant).exists()
        ]
        if outsiders:
            self.add_error(
                "members",
                f"Not members of this tenant: {', '.join(outsiders)}. Add them to the tenant "
                "first (Memberships); a group grants authority only to members.",
            )
            return data
        # The service enforces the plan's approver limit (under a lock); checked here first
        # so the form can say so next to the field.
        count = approver_count(
            tenant_id=tenant.pk,
            exclude_group_id=self.instance.pk,
            extra_user_ids=[user.pk for user in members],
        )
        try:
            plan_limits.check(tenant=tenant, limit="approvers", count=count)
        except TollgateError as exc:
            self.add_error("members", f"{exc.code}: {exc.message} {exc.remediation or ''}")
        return data


@admin.register(ApproverGroup)
class ApproverGroupAdmin(admin.ModelAdmin):
    """Operators may edit groups too; membership changes go through the same service (ledger)."""

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


_ISSUED = "admin/identity/scimtoken_issued.html"


class ScimTokenForm(forms.ModelForm):
    class Meta:
        model = ScimToken
        fields = ["tenant", "name"]


@admin.register(ScimToken)
class ScimTokenAdmin(ShownOnceAdminMixin, admin.ModelAdmin):
    add_form = ScimTokenForm
    list_display = ["name", "tenant", "masked", "state", "last_used_at", "expires_at", "created_at"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "id", "tenant__slug"]
    list_select_related = ["tenant"]
    actions = ["rotate", "rotate_with_grace", "revoke"]
    fields = [
        "id",
        "tenant",
        "name",
        "masked",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    ]

    @admin.display(description="state")
    def state(self, obj: ScimToken) -> str:
        state = obj.state(timezone.now())
        if state in ("rotated", "expired"):
            return f"{state}, works until {obj.expires_at:%Y-%m-%d %H:%M} UTC"
        return state

    def save_model(self, request, obj, form, change):
        if change:
            return  # tokens are immutable: rotate or revoke instead
        token, plaintext = scim_token_issue(
            tenant=form.cleaned_data["tenant"],
            name=form.cleaned_data["name"],
            created_by=request.user,
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        obj._plaintext_once = plaintext  # rendered once by response_add, never stored

    def render_added(self, request, obj, plaintext):
        return self.render_once(
            request, _ISSUED, issued=[(obj, plaintext)], title="SCIM token issued"
        )

    def _rotate(self, request, queryset, grace_seconds: int):
        issued = []
        for token in queryset:
            try:
                issued.append(
                    scim_token_rotate(
                        token=token, grace_seconds=grace_seconds, created_by=request.user
                    )
                )
            except TollgateError as exc:
                self.message_user(request, f"{token.masked}: {exc.message}", messages.ERROR)
        if not issued:
            return None
        return self.render_once(request, _ISSUED, issued=issued, title="SCIM tokens rotated")

    @admin.action(description="Rotate selected tokens (old ones stop now)")
    def rotate(self, request, queryset):
        return self._rotate(request, queryset, 0)

    @admin.action(description="Rotate selected tokens (old ones work 24 more hours)")
    def rotate_with_grace(self, request, queryset):
        return self._rotate(request, queryset, 24 * 3600)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        count = 0
        for token in queryset:
            scim_token_revoke(token=token)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(ScimUser)
class ScimUserAdmin(admin.ModelAdmin):
    """Read-only: the identity provider owns these records (change them there)."""

    list_display = ["user_name", "tenant", "user", "active", "owns_user", "deprovisioned_at"]
    list_filter = ["tenant", "active", "owns_user"]
    search_fields = ["user_name", "external_id", "display_name", "id", "tenant__slug"]
    list_select_related = ["tenant", "user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
