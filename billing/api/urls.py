from django.urls import path

from billing.api import views

urlpatterns = [
    path("tenant", views.TenantView.as_view(), name="tenant"),
]
