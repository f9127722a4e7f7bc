from django.urls import path

from controlplane.tenancy.api import views

urlpatterns = [
    # GET /api/v1/tenant is served by billing.api (it adds plan, entitlements, subscription).
    path("projects", views.ProjectListView.as_view(), name="project-list"),
    path("projects/<str:id>", views.ProjectDetailView.as_view(), name="project-detail"),
    path("api-keys", views.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<str:id>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
]
