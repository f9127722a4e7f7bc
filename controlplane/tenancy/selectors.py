"""Tenancy reads used by API views, services and commands."""

from __future__ import annotations

from controlplane.core.errors import TollgateError
from controlplane.tenancy.errors import TenancyErrorCode
from controlplane.tenancy.models import Project


def unknown_project(slug: str, *, field: str = "project") -> TollgateError:
    """The one answer to a project slug this tenant does not have: 400 ``UNKNOWN_PROJECT``."""
    return TollgateError(
        TenancyErrorCode.UNKNOWN_PROJECT,
        f"No project {slug!r} in this tenant.",
        remediation="Create it with POST /api/v1/projects or fix the slug.",
        errors=[{"field": field, "message": "Unknown project.", "code": "invalid"}],
    )


def project_get(*, tenant, slug: str, field: str = "project") -> Project:
    """The tenant's project with this slug, else 400 ``UNKNOWN_PROJECT`` naming ``field``."""
    project = Project.objects.for_tenant(tenant).filter(slug=slug).first()
    if project is None:
        raise unknown_project(slug, field=field)
    return project
