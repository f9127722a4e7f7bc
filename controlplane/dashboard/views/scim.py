"""SCIM for tenant owners and admins: the identity provider's tokens (create, rotate, revoke;
a token is shown once), the people it provisioned and what SCIM changed (the ledger)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone

from controlplane.audit.selectors import recent_entries
from controlplane.dashboard.views.base import DashboardView
from controlplane.identity.api.views import scim_base_url
from controlplane.identity.selectors import groups_of_users, scim_tokens, scim_users
from controlplane.identity.services.tokens import (
    scim_token_issue,
    scim_token_revoke,
    scim_token_rotate,
)

USERS_SHOWN = 100
GRACE_SECONDS = 24 * 3600
LEDGER_KINDS = ("scim", "approver_group.")  # scim.user.*, scim_token.*, approver_group.*


class ScimTokenForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text='Which identity provider uses it, e.g. "Okta production".'
    )


class ScimView(DashboardView):
    section = "scim"
    title = "SCIM provisioning"
    manage_methods = ("GET", "POST")  # tokens grant provisioning: owners, admins (and staff)

    def page(self, *, form=None, issued=(), status=200):
        tenant_id = self.tenant.id
        users = scim_users(tenant_id=tenant_id).select_related("user").order_by("user_name")
        shown = list(users[:USERS_SHOWN])
        response = self.render(
            "dashboard/scim.html",
            status=status,
            base_url=scim_base_url(self.request),
            tokens=[
                (token, token.state(timezone.now())) for token in scim_tokens(tenant_id=tenant_id)
            ],
            form=form or ScimTokenForm(),
            issued=issued,
            users=shown,
            users_total=users.count(),
            groups=groups_of_users(tenant_id=tenant_id, user_ids=[u.user_id for u in shown]),
            entries=recent_entries(tenant_id=tenant_id, kind_prefixes=LEDGER_KINDS),
        )
        if issued:
            response["Cache-Control"] = "no-store"  # the token is on this page once
        return response

    def get(self, request):
        return self.page()

    def post(self, request):
        """Create a token (shown once on the answer)."""
        form = ScimTokenForm(request.POST)
        if not form.is_valid():
            return self.page(form=form, status=400)
        issued = scim_token_issue(
            tenant=self.tenant, name=form.cleaned_data["name"], created_by=request.user
        )
        return self.page(issued=[issued])


class ScimTokenActionView(ScimView):
    """POST action=rotate|rotate_with_grace|revoke on one of the tenant's tokens."""

    def get(self, request, token_id: str):
        return redirect("dashboard:scim")

    def post(self, request, token_id: str):
        token = scim_tokens(tenant_id=self.tenant.id).filter(pk=token_id).first()
        if token is None:
            return self.not_found("SCIM token")
        action = request.POST.get("action")
        if action == "revoke":
            scim_token_revoke(token=token)
            messages.success(
                request, f"{token.name} ({token.masked}) is revoked: it works no more."
            )
            return redirect("dashboard:scim")
        if action not in ("rotate", "rotate_with_grace"):
            return self.refuse("Unknown action.", "Rotate, rotate with grace or revoke.", 400)
        grace = GRACE_SECONDS if action == "rotate_with_grace" else 0
        issued = scim_token_rotate(token=token, grace_seconds=grace, created_by=request.user)
        messages.success(
            request,
            f"{token.masked} "
            + ("works 24 more hours" if grace else "stopped working")
            + f"; its successor {issued[0].masked} is below, shown once.",
        )
        return self.page(issued=[issued])
