"""Sign-in, sign-out and the tenant switcher."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect
from django.views import View

from controlplane.dashboard.access import SESSION_KEY, resolve_access


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    extra_context = {"title": "Sign in"}


class LogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"


class TenantSwitchView(LoginRequiredMixin, View):
    """POST tenant=<slug>: remember it if this user may see that tenant."""

    def post(self, request):
        slug = request.POST.get("tenant", "")
        request.session[SESSION_KEY] = slug
        access = resolve_access(request)
        if access is None or access.tenant.slug != slug:
            request.session.pop(SESSION_KEY, None)
        return redirect(request.POST.get("next") or "dashboard:overview")
