"""Reads used by the API, admin and dashboard."""

from __future__ import annotations

from django.db.models import QuerySet

from enforcement.models import ApprovalRequest
from enforcement.services.approvals import authority_error


def approvals_for_approver(*, tenant, user, status: str) -> QuerySet[ApprovalRequest]:
    """Requests of ``status`` this user may act on (pending: may vote now and has not voted).

    Routing is a JSON document (roles and group names), so authority is evaluated in Python
    over the tenant's requests of that status; pending requests are few (the expiry sweep
    bounds them) and the result is handed back as a queryset so it paginates like any other.
    """
    candidates = ApprovalRequest.objects.for_tenant(tenant).filter(state=status)
    if status == ApprovalRequest.State.PENDING:
        candidates = candidates.exclude(votes__user_id=user.pk)
    allowed = []
    for approval in candidates.only(
        "id",
        "tenant_id",
        "routing",
        "requester",
        "requester_user_id",
        "requester_creator_id",
        "state",
    ):
        error = authority_error(approval, user)
        if error is None or (
            status != ApprovalRequest.State.PENDING and error.code == "APPROVER_IS_REQUESTER"
        ):
            allowed.append(approval.id)
    return ApprovalRequest.objects.for_tenant(tenant).filter(pk__in=allowed)
