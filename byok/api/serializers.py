"""BYOK request/response bodies; no response field ever carries the key."""

from __future__ import annotations

from rest_framework import serializers

from byok.models import CredentialStatus, ProviderCredential
from byok.providers import provider_names
from controlplane.core.serializers import StrictSerializer


class ProviderField(serializers.ChoiceField):
    """Exactly the registered providers (re-read per request, so the schema lists them all)."""

    def __init__(self, **kwargs):
        super().__init__(choices=list(provider_names()), **kwargs)


class CredentialCreateSerializer(StrictSerializer):
    provider = ProviderField(help_text="Provider adapter to use; never inferred from the key.")
    api_key = serializers.CharField(
        write_only=True, max_length=1024, help_text="The provider API key; never returned."
    )
    label = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    acknowledge_unverifiable = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Store a key of a provider that offers no liveness check (flagged).",
    )
    base_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="An OpenAI-compatible server of your own (vLLM, Azure OpenAI); public "
        "addresses only unless the operator allows the host.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = list(provider_names())


class CredentialRotateSerializer(StrictSerializer):
    api_key = serializers.CharField(
        write_only=True,
        max_length=1024,
        help_text="The new key; validated before it replaces the old one.",
    )
    acknowledge_unverifiable = serializers.BooleanField(required=False, default=False)


class CredentialSerializer(serializers.ModelSerializer):
    provider = ProviderField(read_only=True)
    status = serializers.ChoiceField(choices=CredentialStatus.choices, read_only=True)
    masked_key = serializers.CharField(read_only=True, help_text="e.g. `sk-...abcd`.")

    class Meta:
        model = ProviderCredential
        fields = [
            "id",
            "provider",
            "label",
            "masked_key",
            "last4",
            "base_url",
            "status",
            "status_detail",
            "last_error_class",
            "last_validated_at",
            "acknowledged_unverifiable",
            "kek_version",
            "rotated_at",
            "revoked_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
