"""Billing API shapes: the tenant with its plan, entitlements and subscription."""

from __future__ import annotations

from rest_framework import serializers

from billing import catalog
from controlplane.tenancy.api.serializers import TenantSerializer


class PlanLimitsSerializer(serializers.Serializer):
    projects = serializers.IntegerField(allow_null=True)
    budgets = serializers.IntegerField(allow_null=True)
    api_keys = serializers.IntegerField(allow_null=True)
    decisions_per_month = serializers.IntegerField(allow_null=True)
    byok_providers = serializers.IntegerField(allow_null=True)
    approvers = serializers.IntegerField(allow_null=True)


class PlanSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    limits = PlanLimitsSerializer(help_text="null means unlimited")


class EntitlementSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=sorted(catalog.ENTITLEMENTS))
    name = serializers.CharField()
    maturity = serializers.ChoiceField(choices=[m.value for m in catalog.Maturity])
    enabled = serializers.BooleanField()


class SubscriptionSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["trialing", "active", "past_due", "suspended", "canceled"]
    )
    provider = serializers.CharField()
    trial_ends_at = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    past_due_since = serializers.DateTimeField(allow_null=True)
    grace_until = serializers.DateTimeField(
        allow_null=True, help_text="While past due, requests pass until this moment."
    )


class TenantDetailSerializer(TenantSerializer):
    plan = PlanSerializer(source="billing_plan", read_only=True)
    entitlements = EntitlementSerializer(many=True, source="billing_entitlements", read_only=True)
    subscription = SubscriptionSerializer(
        source="billing_subscription",
        read_only=True,
        allow_null=True,
        help_text="null when the tenant is billed outside a payment provider.",
    )

    class Meta(TenantSerializer.Meta):
        fields = [*TenantSerializer.Meta.fields, "plan", "entitlements", "subscription"]
