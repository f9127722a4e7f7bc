"""Dashboard routes (session login, server-rendered)."""

from django.urls import path

from controlplane.dashboard.views import (
    approvals,
    billing,
    byok,
    decisions,
    keys,
    ledger,
    llm,
    overview,
    policies,
    scim,
    session,
)

app_name = "dashboard"

urlpatterns = [
    path("", overview.OverviewView.as_view(), name="overview"),
    path("login/", session.LoginView.as_view(), name="login"),
    path("logout/", session.LogoutView.as_view(), name="logout"),
    path("tenant/", session.TenantSwitchView.as_view(), name="tenant"),
    path("approvals/", approvals.ApprovalsView.as_view(), name="approvals"),
    path("approvals/<str:approval_id>/vote/", approvals.ApprovalVoteView.as_view(), name="vote"),
    path("decisions/", decisions.DecisionsView.as_view(), name="decisions"),
    path("decisions/<str:decision_id>/", decisions.DecisionDetailView.as_view(), name="decision"),
    path("alerts/", billing.AlertsView.as_view(), name="alerts"),
    path("credits/", billing.CreditsView.as_view(), name="credits"),
    path("reconciliation/", billing.ReconciliationView.as_view(), name="reconciliation"),
    path("llm/", llm.LlmGatewayView.as_view(), name="llm"),
    path("byok/", byok.ByokView.as_view(), name="byok"),
    path(
        "byok/<str:credential_id>/validate/",
        byok.ByokValidateView.as_view(),
        name="byok-validate",
    ),
    path("ledger/", ledger.LedgerView.as_view(), name="ledger"),
    path("ledger/export/", ledger.LedgerExportView.as_view(), name="ledger-export"),
    path("policies/", policies.PoliciesView.as_view(), name="policies"),
    path("policies/simulate/", policies.SimulationView.as_view(), name="simulate"),
    path(
        "policies/simulations/<str:job_id>/",
        policies.SimulationJobView.as_view(),
        name="simulation",
    ),
    path("policies/<int:version>/", policies.PolicyDetailView.as_view(), name="policy"),
    path("scim/", scim.ScimView.as_view(), name="scim"),
    path("scim/tokens/<str:token_id>/", scim.ScimTokenActionView.as_view(), name="scim-token"),
    path("keys/", keys.KeysView.as_view(), name="keys"),
    path("keys/<str:key_id>/revoke/", keys.KeyRevokeView.as_view(), name="key-revoke"),
]
