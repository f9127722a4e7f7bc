from django.urls import path

from controlplane.audit.api import views

urlpatterns = [
    path("ledger", views.LedgerListView.as_view(), name="ledger-list"),
    path("ledger/verify", views.LedgerVerifyView.as_view(), name="ledger-verify"),
    path(
        "ledger/verifications/<str:id>",
        views.LedgerVerificationDetailView.as_view(),
        name="ledger-verification-detail",
    ),
    path("ledger/export", views.LedgerExportView.as_view(), name="ledger-export"),
]
