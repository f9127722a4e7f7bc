"""The base of every dashboard page: login, tenant access, the plan feature check, manage rights.

A page declares ``feature`` (a plan entitlement it needs) and ``manage_methods`` (HTTP methods
that need an owner, an admin or staff); both are checked here and nowhere else.
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.template.response import TemplateResponse
from django.views import View

from billing.selectors import has_entitlement
from controlplane.dashboard.access import TenantAccess, resolve_access

NAV = [
    ("overview", "Overview", "dashboard:overview"),
    ("approvals", "Approvals", "dashboard:approvals"),
    ("decisions", "Decisions", "dashboard:decisions"),
    ("byok", "BYOK health", "dashboard:byok"),
    ("ledger", "Ledger", "dashboard:ledger"),
    ("policies", "Policies", "dashboard:policies"),
    ("keys", "My API keys", "dashboard:keys"),
]


class DashboardView(LoginRequiredMixin, View):
    section = ""
    title = ""
    feature: str | None = None  # plan entitlement the page needs (None: every plan)
    manage_methods: tuple[str, ...] = ()  # methods only owners, admins and staff may use

    access: TenantAccess

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        access = resolve_access(request)
        if access is None:
            return self.refuse(
                "You are not a member of any tenant yet.",
                "Ask a tenant owner to add you, or an operator to give you access.",
            )
        self.access = access
        self.tenant = access.tenant
        if self.feature and not has_entitlement(self.tenant, self.feature):
            return self.refuse(
                f"The plan of {self.tenant.name} does not include {self.feature!r}.",
                "Upgrade the plan, or ask your Tollgate operator.",
            )
        if request.method in self.manage_methods and not access.can_manage:
            return self.refuse(
                "Only tenant owners and admins may do this.",
                f"Your role in {self.tenant.name} is {access.role_label}.",
            )
        return super().dispatch(request, *args, **kwargs)

    def context(self, **extra) -> dict:
        return {
            "access": getattr(self, "access", None),
            "tenant": getattr(self, "tenant", None),
            "nav": NAV,
            "section": self.section,
            "title": self.title,
            **extra,
        }

    def render(self, template: str, status: int = 200, **extra) -> TemplateResponse:
        return TemplateResponse(self.request, template, self.context(**extra), status=status)

    def refuse(self, message: str, hint: str, status: int = 403) -> TemplateResponse:
        return self.render(
            "dashboard/refused.html", status=status, refusal=message, hint=hint, title="Not here"
        )

    def not_found(self, what: str) -> TemplateResponse:
        return self.render(
            "dashboard/refused.html",
            status=404,
            refusal=f"No {what} here.",
            hint="It may belong to another tenant, or the link is wrong.",
            title="Not found",
        )
