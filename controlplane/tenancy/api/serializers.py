"""Tenancy API shapes."""

from __future__ import annotations

from rest_framework import serializers

from controlplane.core.serializers import StrictSerializer
from controlplane.tenancy.models import ApiKey, Project, Tenant


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "slug", "name", "lifecycle", "created_at"]


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "slug", "name", "created_at"]


class ProjectCreateSerializer(StrictSerializer):
    slug = serializers.SlugField(max_length=63)
    name = serializers.CharField(max_length=200, required=False)


class ApiKeySerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    masked = serializers.CharField(read_only=True)
    state = serializers.SerializerMethodField()
    user = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The person this key acts as, if any.",
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The person accountable for the key (separation of duties follows it).",
    )
    parent = serializers.PrimaryKeyRelatedField(
        read_only=True,
        allow_null=True,
        help_text="The key that issued this one, if issued through the API.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "masked",
            "scopes",
            "project",
            "environment",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
            "state",
            "user",
            "created_by",
            "parent",
        ]

    def get_state(self, obj: ApiKey) -> str:
        from django.utils import timezone

        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyCreateSerializer(StrictSerializer):
    """No ``user`` field: a key issued through the API acts as the issuing key's person, if any."""

    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False)
    project = serializers.SlugField(
        max_length=63,
        required=False,
        allow_null=True,
        help_text="Default: the calling key's project. A bound key issues only keys bound to it.",
    )
    environment = serializers.RegexField(
        r"^[A-Za-z0-9_.-]{1,63}$",
        required=False,
        allow_blank=True,
        help_text="Default: the calling key's environment.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        from django.utils import timezone

        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value
