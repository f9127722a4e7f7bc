"""Entitlement lookups: which paid features a tenant's plan includes."""

from __future__ import annotations

from billing.errors import BillingErrorCode
from billing.models import TenantPlan
from controlplane.core.errors import TollgateError

# Feature names other apps check; the billing issue adds more.
BYOK = "byok"


def tenant_features(tenant) -> frozenset[str]:
    """Entitlements of ``tenant`` (empty when it has no plan)."""
    tenant_id = getattr(tenant, "pk", tenant)
    row = TenantPlan.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    if row is None or not isinstance(row.plan.features, list):
        return frozenset()
    return frozenset(f for f in row.plan.features if isinstance(f, str))


def has_entitlement(tenant, feature: str) -> bool:
    """True when the tenant's plan includes ``feature``."""
    return feature in tenant_features(tenant)


def require_entitlement(tenant, feature: str) -> None:
    """Raise 403 ``FEATURE_NOT_ENTITLED`` unless the tenant's plan includes ``feature``."""
    if not has_entitlement(tenant, feature):
        raise TollgateError(
            BillingErrorCode.FEATURE_NOT_ENTITLED,
            f"Your plan does not include the `{feature}` feature.",
            remediation="Upgrade to a plan that includes it, or ask your Tollgate operator.",
            status=403,
            extra={"feature": feature},
        )
