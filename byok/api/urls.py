from django.urls import path

from byok.api import views

urlpatterns = [
    path("byok/credentials", views.CredentialListView.as_view(), name="byok-credential-list"),
    path(
        "byok/credentials/<str:id>",
        views.CredentialDetailView.as_view(),
        name="byok-credential-detail",
    ),
    path(
        "byok/credentials/<str:id>/validate",
        views.CredentialValidateView.as_view(),
        name="byok-credential-validate",
    ),
    path(
        "byok/credentials/<str:id>/rotate",
        views.CredentialRotateView.as_view(),
        name="byok-credential-rotate",
    ),
]
