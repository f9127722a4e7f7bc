"""THE entitlement check. API (DRF permission), admin (mixin), services and the dashboard
(view decorator) all call ``require``; nothing else decides whether a plan includes a feature.

Reads are fresh (one indexed read of the tenant's plan): an upgrade takes effect on the next
request. The request gates' cached plan is for limits on the hot path, not for features.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.http import HttpResponse
from rest_framework.permissions import BasePermission

from billing import catalog
from billing.errors import BillingErrorCode
from billing.models import Plan, TenantPlan
from controlplane.core.errors import TollgateError


def tenant_plan(tenant) -> Plan | catalog.PlanSpec:
    """The tenant's plan row, or the default catalog plan when it has none."""
    tenant_id = getattr(tenant, "pk", tenant)
    row = TenantPlan.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    if row is not None:
        return row.plan
    return catalog.PLANS[_default_plan_code()]


def _default_plan_code() -> str:
    from django.conf import settings

    return settings.BILLING_DEFAULT_PLAN


def _features(plan) -> frozenset[str]:
    raw = plan.features if isinstance(plan, Plan) else plan.entitlements
    return frozenset(f for f in (raw or []) if isinstance(f, str))


def _known(key: str) -> catalog.Entitlement:
    try:
        return catalog.ENTITLEMENTS[key]
    except KeyError:
        raise ValueError(f"{key!r} is not in the entitlement catalog") from None


def tenant_features(tenant) -> frozenset[str]:
    """Entitlement keys the tenant's plan includes."""
    return _features(tenant_plan(tenant))


def enabled(tenant, key: str) -> bool:
    """True when the tenant's plan includes entitlement ``key`` (a catalog key)."""
    _known(key)
    return key in tenant_features(tenant)


def not_entitled_error(key: str, plan) -> TollgateError:
    entitlement = _known(key)
    upgrade = catalog.cheapest_plan_with(key)
    plan_name = getattr(plan, "name", str(plan))
    remediation = (
        f"Upgrade to the {upgrade.name} plan (or higher), or ask your Tollgate operator."
        if upgrade
        else "Ask your Tollgate operator."
    )
    return TollgateError(
        BillingErrorCode.FEATURE_NOT_ENTITLED,
        f"Your {plan_name} plan does not include {entitlement.name} (`{key}`).",
        remediation=remediation,
        status=403,
        extra={
            "feature": key,
            "maturity": str(entitlement.maturity),
            "plan": getattr(plan, "code", None),
            "upgrade_to": upgrade.code if upgrade else None,
        },
    )


def require(tenant, key: str) -> None:
    """Raise 403 ``FEATURE_NOT_ENTITLED`` unless the tenant's plan includes ``key``."""
    _known(key)
    plan = tenant_plan(tenant)
    if key not in _features(plan):
        raise not_entitled_error(key, plan)


def tenant_entitlements(tenant) -> list[dict]:
    """Every catalog entitlement with its maturity and whether the tenant's plan enables it."""
    features = tenant_features(tenant)
    return [
        {"key": e.key, "name": e.name, "maturity": str(e.maturity), "enabled": e.key in features}
        for e in catalog.ENTITLEMENTS.values()
    ]


class EntitlementRequired(BasePermission):
    """DRF permission: the view's ``entitlement`` must be enabled for the caller's tenant.

    Put it after the scope permission so a key without the scope learns that first.
    """

    def has_permission(self, request, view) -> bool:
        key = getattr(view, "entitlement", None)
        if key is None:
            raise ValueError(
                f"{type(view).__name__} uses EntitlementRequired without `entitlement`"
            )
        api_key = request.auth
        if api_key is None:
            return False
        require(api_key.tenant, key)
        return True


class EntitledViewMixin:
    """For DRF views: set ``entitlement``; checked after the scope permission."""

    entitlement: str = ""

    def get_permissions(self):
        return [*super().get_permissions(), EntitlementRequired()]


def problem_403(error: TollgateError) -> HttpResponse:
    """Plain-text 403 for admin and dashboard pages, carrying the stable code."""
    return HttpResponse(
        f"403 {error.code}: {error.message} {error.remediation or ''}".strip(),
        status=403,
        content_type="text/plain; charset=utf-8",
    )


class EntitledAdminMixin:
    """Admin for a tenant-owned model whose feature is an entitlement.

    The change page of another plan's object is a 403 page with ``FEATURE_NOT_ENTITLED``;
    adding an object for a tenant without the entitlement, and admin actions on such objects,
    are refused with the same code. ``entitlement_tenant(obj)`` names the owning tenant.
    """

    entitlement: str = ""

    def entitlement_tenant(self, obj):
        return obj.tenant_id

    def entitlement_error(self, obj) -> TollgateError | None:
        return self._tenant_error(self.entitlement_tenant(obj))

    def _tenant_error(self, tenant) -> TollgateError | None:
        try:
            require(tenant, self.entitlement)
        except TollgateError as error:
            return error
        return None

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The add/change form refuses a tenant whose plan lacks the entitlement."""
        form = super().get_form(request, obj, change=change, **kwargs)
        admin_ = self

        class EntitledForm(form):
            def clean(self):
                data = super().clean()
                tenant = (data or {}).get("tenant")
                error = admin_._tenant_error(tenant) if tenant is not None else None
                if error is not None:
                    field = "tenant" if "tenant" in self.fields else None
                    self.add_error(field, f"{error.code}: {error.message} {error.remediation}")
                return data

        return EntitledForm

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.model._default_manager.filter(pk=object_id).first()
        error = self.entitlement_error(obj) if obj is not None else None
        if error is not None:
            return problem_403(error)
        return super().change_view(request, object_id, form_url, extra_context)

    def entitled_queryset(self, request, queryset):
        """Split an action's queryset: refused objects are reported, the rest returned."""
        allowed = []
        for obj in queryset:
            error = self.entitlement_error(obj)
            if error is None:
                allowed.append(obj)
            else:
                self.message_user(
                    request, f"{obj.pk}: {error.code}: {error.message}", messages.ERROR
                )
        return allowed


def entitlement_required(key: str, *, tenant_of):
    """Decorator for Django views (the dashboard): ``tenant_of(request, **kwargs)`` names the
    tenant; without the entitlement the view answers a 403 ``FEATURE_NOT_ENTITLED`` page."""
    _known(key)

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                require(tenant_of(request, **kwargs), key)
            except TollgateError as error:
                return problem_403(error)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
