"""The base of every dashboard page: login, tenant access, the plan feature check, manage rights.

A page declares ``feature`` (a plan entitlement it needs) and ``manage_methods`` (HTTP methods
that need an owner, an admin or staff); both are checked here and nowhere else. The plan check
is billing's one entitlement check (``billing.entitlements.require``); its refusal, like any
``TollgateError`` a page lets through, is shown as a page with the stable code.
"""

from __future__ import annotations

from http import HTTPStatus

from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.views import View

from billing.entitlements import require
from controlplane.core.errors import TollgateError
from controlplane.dashboard.access import TenantAccess, request_access

NAV = [
    ("overview", "Overview", "dashboard:overview"),
    ("approvals", "Approvals", "dashboard:approvals"),
    ("decisions", "Decisions", "dashboard:decisions"),
    ("alerts", "Alerts", "dashboard:alerts"),
    ("credits", "Credits", "dashboard:credits"),
    ("reconciliation", "Reconciliation", "dashboard:reconciliation"),
    ("byok", "BYOK health", "dashboard:byok"),
    ("llm", "LLM gateway", "dashboard:llm"),
    ("ledger", "Ledger", "dashboard:ledger"),
    ("policies", "Policies", "dashboard:policies"),
    ("scim", "SCIM", "dashboard:scim"),
    ("keys", "My API keys", "dashboard:keys"),
]


def page_context(access: TenantAccess | None, *, section: str = "", title: str = "", **extra):
    """What the dashboard's base template needs (header, tenant switcher, navigation)."""
    return {
        "access": access,
        "tenant": access.tenant if access else None,
        "nav": NAV,
        "section": section,
        "title": title,
        **extra,
    }


def refusal_page(
    request,
    access: TenantAccess | None,
    *,
    refusal: str,
    hint: str,
    status: int = 403,
    code: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
):
    """A refusal as a page (request gates, plan features, roles): what and how to fix it."""
    if title is None:
        title = HTTPStatus(status).phrase if code else "Not here"
    response = render(
        request,
        "dashboard/refused.html",
        page_context(access, title=title, refusal=refusal, hint=hint, code=code),
        status=status,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class DashboardView(LoginRequiredMixin, View):
    section = ""
    title = ""
    feature: str | None = None  # plan entitlement the page needs (None: every plan)
    manage_methods: tuple[str, ...] = ()  # methods only owners, admins and staff may use

    access: TenantAccess

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        access = request_access(request)
        if access is None:
            return refusal_page(
                request,
                None,
                refusal="You are not a member of any tenant yet.",
                hint="Ask a tenant owner to add you, or an operator to give you access.",
            )
        self.access = access
        self.tenant = access.tenant
        try:
            if self.feature:
                require(self.tenant, self.feature)
            if request.method in self.manage_methods and not access.can_manage:
                return self.refuse(
                    "Only tenant owners and admins may do this.",
                    f"Your role in {self.tenant.name} is {access.role_label}.",
                )
            return super().dispatch(request, *args, **kwargs)
        except TollgateError as error:
            return self.refuse_error(error)

    def require_feature(self, key: str) -> None:
        """For part of a page: raise the plan's refusal (shown as a page) unless it has ``key``."""
        require(self.tenant, key)

    def context(self, **extra) -> dict:
        extra.setdefault("title", self.title)  # a page may name itself (a decision, a version)
        return page_context(getattr(self, "access", None), section=self.section, **extra)

    def render(self, template: str, status: int = 200, **extra) -> TemplateResponse:
        return TemplateResponse(self.request, template, self.context(**extra), status=status)

    def refuse(self, message: str, hint: str, status: int = 403):
        return refusal_page(self.request, self.access, refusal=message, hint=hint, status=status)

    def refuse_error(self, error: TollgateError):
        return refusal_page(
            self.request,
            self.access,
            refusal=error.message,
            hint=error.remediation or "",
            status=error.status_code,
            code=error.code,
            headers=error.headers,
        )

    def not_found(self, what: str):
        return refusal_page(
            self.request,
            self.access,
            status=404,
            refusal=f"No {what} here.",
            hint="It may belong to another tenant, or the link is wrong.",
            title="Not found",
        )
