"""Billing endpoints: the tenant (with plan, entitlements, subscription) and payment webhooks."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from billing.api.serializers import TenantDetailSerializer
from billing.entitlements import tenant_entitlements, tenant_plan
from billing.limits import plan_limits
from billing.selectors import subscription_of
from controlplane.tenancy import scopes
from controlplane.tenancy.api.views_base import UNCONFINED, TenantScopedAPIView


class TenantView(TenantScopedAPIView):
    required_scopes = {"GET": scopes.TENANT_READ}
    # The tenant, its plan and subscription: nothing of one project, so a bound key reads it.
    bound_keys = {"GET": UNCONFINED}
    serializer_class = TenantDetailSerializer
    pagination_class = None

    @extend_schema(
        operation_id="tenant_retrieve",
        summary="The caller's tenant, its plan, entitlements and subscription",
        description="`entitlements` lists every entitlement of the catalog with its maturity "
        "(GA, Beta, Preview) and whether the tenant's plan enables it.",
    )
    def get(self, request):
        tenant = self.tenant
        plan = tenant_plan(tenant)
        tenant.billing_plan = {
            "code": plan.code,
            "name": plan.name,
            "limits": plan_limits(plan),
        }
        tenant.billing_entitlements = tenant_entitlements(tenant)
        tenant.billing_subscription = subscription_of(tenant)
        return Response(TenantDetailSerializer(tenant).data)
