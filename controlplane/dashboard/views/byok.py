"""BYOK health: each credential's status and last probe, breaker per provider, today's quota."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect

from billing.catalog import BYOK
from byok.models import ProviderCredential
from byok.selectors import byok_health
from byok.services import credential_validate
from controlplane.core.errors import TollgateError
from controlplane.dashboard.views.base import DashboardView


class ByokView(DashboardView):
    section = "byok"
    title = "BYOK health"
    feature = BYOK

    def get(self, request):
        health = byok_health(tenant=self.tenant)
        return self.render("dashboard/byok.html", health=health)


class ByokValidateView(DashboardView):
    """Probe one credential now (owners and admins)."""

    section = "byok"
    title = "BYOK health"
    feature = BYOK
    manage_methods = ("POST",)

    def post(self, request, credential_id: str):
        if not ProviderCredential.objects.for_tenant(self.tenant).filter(pk=credential_id).exists():
            return self.not_found("credential")
        try:
            updated = credential_validate(
                credential_id=credential_id, actor=f"dashboard:{request.user.get_username()}"
            )
        except TollgateError as exc:
            messages.error(request, f"{credential_id}: {exc.message}")
            return redirect("dashboard:byok")
        text = f"{credential_id}: {updated.status} ({updated.status_detail})"
        if updated.status == "valid":
            messages.success(request, text)
        else:
            messages.error(request, text)
        return redirect("dashboard:byok")
