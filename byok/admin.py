"""Operator admin for BYOK credentials: masked keys only; validate/revoke through services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from billing.catalog import BYOK
from billing.entitlements import EntitledAdminMixin
from byok import services
from byok.models import CredentialStatus, ProviderCredential, TenantByokSettings
from byok.providers import provider_names
from controlplane.core.errors import TollgateError


def _actor(request) -> str:
    return f"admin:{request.user.get_username()}"


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(EntitledAdminMixin, admin.ModelAdmin):
    entitlement = BYOK

    list_display = [
        "id",
        "tenant",
        "provider",
        "label",
        "masked_key",
        "status",
        "last_validated_at",
        "last_error_class",
        "acknowledged_unverifiable",
        "kek_version",
    ]
    list_filter = ["provider", "status", "acknowledged_unverifiable", "kek_version"]
    search_fields = ["id", "label", "tenant__slug", "last4"]
    list_select_related = ["tenant"]
    # Never ``ciphertext`` or ``fingerprint``: the admin renders only what the API returns.
    fields = [
        "id",
        "tenant",
        "provider",
        "label",
        "masked_key",
        "status",
        "status_detail",
        "last_validated_at",
        "last_error_class",
        "acknowledged_unverifiable",
        "kek_version",
        "rotated_at",
        "revoked_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    actions = ["validate", "revoke"]

    def has_add_permission(self, request, obj=None):
        return False  # keys are added through the API, which probes them first

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Validate selected credentials now (probe the provider)")
    def validate(self, request, queryset):
        for credential in self.entitled_queryset(
            request, queryset.exclude(status=CredentialStatus.REVOKED)
        ):
            try:
                updated = services.credential_validate(
                    credential_id=credential.pk, actor=_actor(request)
                )
            except TollgateError as exc:
                self.message_user(request, f"{credential.pk}: {exc.message}", messages.WARNING)
                continue
            level = messages.SUCCESS if updated.status == CredentialStatus.VALID else messages.ERROR
            self.message_user(
                request, f"{credential.pk}: {updated.status} ({updated.status_detail})", level
            )

    @admin.action(description="Revoke selected credentials (destroys the stored key)")
    def revoke(self, request, queryset):
        # Revoking is always allowed, also after a downgrade: it only removes access.
        count = 0
        for credential in queryset.exclude(status=CredentialStatus.REVOKED):
            services.credential_revoke(credential_id=credential.pk, actor=_actor(request))
            count += 1
        self.message_user(request, f"Revoked {count} credential(s).", messages.SUCCESS)


class TenantByokSettingsForm(forms.ModelForm):
    class Meta:
        model = TenantByokSettings
        fields = ["tenant", "required_providers", "daily_request_limit"]

    def clean_required_providers(self):
        value = self.cleaned_data.get("required_providers") or []
        known = provider_names()
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise forms.ValidationError('A JSON list of provider names, e.g. ["openai"].')
        unknown = [p for p in value if p not in known]
        if unknown:
            raise forms.ValidationError(
                f"Unknown provider(s): {', '.join(unknown)}. Known: {', '.join(known)}."
            )
        return value


@admin.register(TenantByokSettings)
class TenantByokSettingsAdmin(admin.ModelAdmin):
    form = TenantByokSettingsForm
    list_display = ["tenant", "required_providers", "daily_request_limit", "updated_at"]
    list_select_related = ["tenant"]
    fields = ["tenant", "required_providers", "daily_request_limit"]

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # clear the providers and the limit instead (through the service)

    def save_model(self, request, obj, form, change):
        try:
            saved = services.byok_settings_set(
                tenant=obj.tenant,
                required_providers=list(obj.required_providers or []),
                daily_request_limit=obj.daily_request_limit,
                actor=_actor(request),
            )
        except TollgateError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = saved.pk
