"""My API keys: personal keys bound to the signed-in user (e.g. to approve from a script)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.contrib import messages
from django.shortcuts import redirect

from controlplane.dashboard.forms import PersonalKeyForm
from controlplane.dashboard.views.base import DashboardView
from controlplane.tenancy.models import ApiKey
from controlplane.tenancy.scopes import all_scopes
from controlplane.tenancy.services import api_key_issue, api_key_revoke

# What a member's own key may do: read, and vote (authority is still checked per request).
MEMBER_SCOPES = ("approvals:write",)


def personal_scopes(access) -> list[tuple[str, str]]:
    """Scopes this user may put on their own key: owners/admins all, members reads + voting."""
    return [
        (name, f"{name}: {text}")
        for name, text in all_scopes().items()
        if access.can_manage or name.endswith(":read") or name in MEMBER_SCOPES
    ]


class KeysView(DashboardView):
    section = "keys"
    title = "My API keys"

    def _keys(self):
        return list(
            ApiKey.objects.for_tenant(self.tenant)
            .filter(user=self.request.user)
            .order_by("-created_at")
        )

    def _form(self, data=None):
        initial = {"scopes": ["approvals:read", "approvals:write"]}
        return PersonalKeyForm(data, scopes=personal_scopes(self.access), initial=initial)

    def get(self, request):
        return self.render("dashboard/keys.html", keys=self._keys(), form=self._form())

    def post(self, request):
        if self.access.role is None:
            return self.refuse(
                "Personal keys are for members of the tenant.",
                "Staff: ask a tenant owner to add you as a member first.",
            )
        form = self._form(request.POST)
        if not form.is_valid():
            return self.render("dashboard/keys.html", status=400, keys=self._keys(), form=form)
        data = form.cleaned_data
        expires = data.get("expires_at")
        api_key, plaintext = api_key_issue(
            tenant=self.tenant,
            name=data["name"],
            scopes=data["scopes"],
            expires_at=datetime.combine(expires, time.min, tzinfo=UTC) if expires else None,
            user=request.user,
            created_by=request.user,
        )
        response = self.render(
            "dashboard/keys.html",
            keys=self._keys(),
            form=self._form(),
            issued=api_key,
            plaintext=plaintext,
        )
        response["Cache-Control"] = "no-store"  # the key is on this page once
        return response


class KeyRevokeView(DashboardView):
    section = "keys"
    title = "My API keys"

    def post(self, request, key_id: str):
        key = ApiKey.objects.for_tenant(self.tenant).filter(pk=key_id, user=request.user).first()
        if key is None:
            return self.not_found("key of yours")
        api_key_revoke(api_key=key)
        messages.success(request, f"Key {key.name} ({key.masked}) is revoked.")
        return redirect("dashboard:keys")
