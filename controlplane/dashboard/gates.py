"""The dashboard in front of the request gates: a signed-in person's requests are the tenant's
traffic, so lifecycle, billing and protection apply to them as to API keys (they are listed
in ``REQUEST_GATE_TENANT_RESOLVERS``), and a refusal is shown as a dashboard page."""

from __future__ import annotations

from django.urls import reverse

from billing.gates.middleware import REFUSAL_RENDERER
from controlplane.dashboard.access import request_access
from controlplane.dashboard.views.base import refusal_page

# Pages that hold no tenant data and must stay reachable when a tenant is refused: signing in
# and out, and switching to another tenant.
UNGATED = ("dashboard:login", "dashboard:logout", "dashboard:tenant")


def _prefix() -> str:
    return reverse("dashboard:overview")


def _ungated() -> set[str]:
    return {reverse(name) for name in UNGATED}


def session_tenant(request) -> tuple[str, None] | None:
    """A dashboard request of a signed-in person: the tenant the dashboard shows them."""
    if not request.path.startswith(_prefix()) or request.path in _ungated():
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None  # the page sends them to the login
    access = request_access(request)
    if access is None:
        return None  # the page says they belong to no tenant
    setattr(request, REFUSAL_RENDERER, render_refusal)
    return access.tenant.id, None


def render_refusal(request, *, status, code, detail, remediation, headers):
    """A gate's refusal (TENANT_SUSPENDED, PAYMENT_REQUIRED, RATE_LIMITED, ...) as a page."""
    return refusal_page(
        request,
        request_access(request),
        refusal=detail,
        hint=remediation or "",
        status=status,
        code=code,
        headers=headers,
    )
