"""Top-level routes: dashboard, admin, API v1, SCIM 2.0, OpenAPI, health and metrics."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api import webhooks as billing_webhooks
from controlplane.core import health
from enforcement.api.approvals import JwksView

api_v1 = [
    path("", include("controlplane.tenancy.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("controlplane.audit.api.urls")),
    path("", include("enforcement.api.urls")),
    path("", include("byok.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:overview"), name="home"),
    path("dashboard/", include("controlplane.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(".well-known/jwks.json", JwksView.as_view(), name="jwks"),
    path("webhooks/billing/<str:provider>", billing_webhooks.receive, name="billing-webhook"),
    path("scim/v2/", include("controlplane.identity.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]

handler400 = "controlplane.core.views.bad_request"
handler403 = "controlplane.core.views.permission_denied"
handler404 = "controlplane.core.views.not_found"
handler500 = "controlplane.core.views.server_error"
