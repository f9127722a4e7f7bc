from django.urls import path

from enforcement.api import actions as action_views
from enforcement.api import admission, cloudevents, policies, runtask, terraform, views
from enforcement.api import alerts as alert_views
from enforcement.api import approvals as approval_views
from enforcement.api import llm as llm_views
from enforcement.api import reconciliation as reconciliation_views

urlpatterns = [
    path("gate/decisions", views.GateDecisionView.as_view(), name="gate-decisions"),
    path(
        "gate/terraform/preflight",
        terraform.TerraformPreflightView.as_view(),
        name="gate-terraform-preflight",
    ),
    path(
        "gate/k8s/admission",
        admission.KubernetesAdmissionView.as_view(),
        name="gate-k8s-admission",
    ),
    path("gate/cloudevents", cloudevents.CloudEventsView.as_view(), name="gate-cloudevents"),
    path(
        "gate/terraform/run-task",
        runtask.RunTaskReceiveView.as_view(),
        name="gate-terraform-run-task",
    ),
    path(
        "integrations/terraform/run-tasks",
        runtask.RunTaskIntegrationListView.as_view(),
        name="run-task-integration-list",
    ),
    path(
        "integrations/terraform/run-tasks/<str:id>",
        runtask.RunTaskIntegrationDetailView.as_view(),
        name="run-task-integration-detail",
    ),
    path("llm/reservations", llm_views.LlmReservationView.as_view(), name="llm-reservations"),
    path("prices/<path:model>", llm_views.PriceDetailView.as_view(), name="price-detail"),
    path("decisions", views.DecisionListView.as_view(), name="decision-list"),
    path("decisions/<str:id>", views.DecisionDetailView.as_view(), name="decision-detail"),
    path("reservations/<str:id>", views.ReservationDetailView.as_view(), name="reservation-detail"),
    path(
        "reservations/<str:id>/commit",
        views.ReservationCommitView.as_view(),
        name="reservation-commit",
    ),
    path(
        "reservations/<str:id>/release",
        views.ReservationReleaseView.as_view(),
        name="reservation-release",
    ),
    path(
        "reservations/<str:id>/extend",
        views.ReservationExtendView.as_view(),
        name="reservation-extend",
    ),
    path("reconciliations", views.ReconciliationView.as_view(), name="reconciliations"),
    path(
        "reconciliations/imports",
        reconciliation_views.ReconciliationImportListView.as_view(),
        name="reconciliation-import-list",
    ),
    path(
        "reconciliations/imports/<str:id>",
        reconciliation_views.ReconciliationImportDetailView.as_view(),
        name="reconciliation-import-detail",
    ),
    path("budgets", views.BudgetListView.as_view(), name="budget-list"),
    path("budgets/<str:id>", views.BudgetDetailView.as_view(), name="budget-detail"),
    path("budget-alerts", alert_views.BudgetAlertListView.as_view(), name="budget-alert-list"),
    path("policies", policies.PolicyListView.as_view(), name="policy-list"),
    path("policies/schema", policies.PolicySchemaView.as_view(), name="policy-schema"),
    path("policies/simulate", policies.PolicySimulateView.as_view(), name="policy-simulate"),
    path(
        "policies/simulations",
        policies.SimulationJobListView.as_view(),
        name="policy-simulation-list",
    ),
    path(
        "policies/simulations/<str:id>",
        policies.SimulationJobDetailView.as_view(),
        name="policy-simulation-detail",
    ),
    path("policies/<int:version>", policies.PolicyDetailView.as_view(), name="policy-detail"),
    path(
        "policies/<int:version>/publish",
        policies.PolicyPublishView.as_view(),
        name="policy-publish",
    ),
    path("credit-grants", views.CreditGrantListView.as_view(), name="credit-grant-list"),
    path(
        "credit-grants/<str:id>/void", views.CreditGrantVoidView.as_view(), name="credit-grant-void"
    ),
]

urlpatterns += [
    path("approvals", approval_views.ApprovalListView.as_view(), name="approval-list"),
    path("approvals/<str:id>", approval_views.ApprovalDetailView.as_view(), name="approval-detail"),
    path(
        "approvals/<str:id>/approve",
        approval_views.ApprovalApproveView.as_view(),
        name="approval-approve",
    ),
    path(
        "approvals/<str:id>/deny", approval_views.ApprovalDenyView.as_view(), name="approval-deny"
    ),
    path(
        "approvals/<str:id>/cancel",
        approval_views.ApprovalCancelView.as_view(),
        name="approval-cancel",
    ),
    path(
        "approval-tokens/consume",
        approval_views.ApprovalTokenConsumeView.as_view(),
        name="approval-token-consume",
    ),
]

urlpatterns += [
    path("actions", action_views.ActionListView.as_view(), name="action-list"),
    path("actions/lease", action_views.ActionLeaseView.as_view(), name="action-lease"),
    path("actions/<str:id>", action_views.ActionDetailView.as_view(), name="action-detail"),
    path(
        "actions/<str:id>/complete",
        action_views.ActionCompleteView.as_view(),
        name="action-complete",
    ),
    path("actions/<str:id>/fail", action_views.ActionFailView.as_view(), name="action-fail"),
    path("actions/<str:id>/cancel", action_views.ActionCancelView.as_view(), name="action-cancel"),
]
