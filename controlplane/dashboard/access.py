"""Who is looking at which tenant: membership (any number of tenants) or staff (all tenants)."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.tenancy.models import Membership, Tenant

SESSION_KEY = "dashboard_tenant"
_CACHE_ATTR = "_dashboard_access"
MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: str | None  # membership role; None for staff looking at a tenant they are not in
    choices: list[Tenant]  # tenants this user may switch to
    is_staff: bool

    @property
    def can_manage(self) -> bool:
        """Publish policies, verify and export the ledger, validate credentials."""
        return self.is_staff or self.role in MANAGER_ROLES

    @property
    def role_label(self) -> str:
        return self.role or "operator (staff)"


def resolve_access(request) -> TenantAccess | None:
    """The tenant chosen in the session if the user may see it, else their first; None if none.

    Two queries: the user's memberships, and (staff only) the list of tenants.
    """
    user = request.user
    memberships = {
        m.tenant_id: m for m in Membership.objects.filter(user=user).select_related("tenant")
    }
    if user.is_staff:
        choices = list(Tenant.objects.order_by("slug"))
    else:
        choices = sorted((m.tenant for m in memberships.values()), key=lambda t: t.slug)
    if not choices:
        return None
    wanted = request.session.get(SESSION_KEY)
    tenant = next((t for t in choices if t.slug == wanted), None)
    if tenant is None:
        member_of = [t for t in choices if t.pk in memberships]
        tenant = member_of[0] if member_of else choices[0]
    membership = memberships.get(tenant.pk)
    return TenantAccess(
        tenant=tenant,
        role=membership.role if membership else None,
        choices=choices,
        is_staff=bool(user.is_staff),
    )


def request_access(request) -> TenantAccess | None:
    """``resolve_access`` once per request (the request gates and the page both ask)."""
    if not hasattr(request, _CACHE_ATTR):
        setattr(request, _CACHE_ATTR, resolve_access(request))
    return getattr(request, _CACHE_ATTR)
