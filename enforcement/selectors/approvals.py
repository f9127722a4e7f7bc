"""Reads used by the API, admin and dashboard."""

from __future__ import annotations

from django.db.models import QuerySet

from enforcement.models import ApprovalRequest
from enforcement.services.approvals import approver_identity, authority_problem

_ROUTING_FIELDS = (
    "id",
    "tenant_id",
    "routing",
    "requester",
    "requester_user_id",
    "requester_creator_id",
    "state",
)


def approvals_for_approver(*, tenant, user, status: str) -> QuerySet[ApprovalRequest]:
    """Requests of ``status`` this user may act on (pending: may vote now and has not voted).

    The one selector behind the API list and the dashboard queue. Routing is a JSON document
    (roles and group names), so authority is judged in Python, but from one read of the user's
    role and groups and one read of the candidates: a fixed number of queries however many
    requests are pending. The result is a queryset so it paginates like any other.
    """
    identity = approver_identity(tenant_id=getattr(tenant, "pk", tenant), user=user)
    scoped = ApprovalRequest.objects.for_tenant(tenant)
    if identity.role is None:
        return scoped.none()
    candidates = scoped.filter(state=status)
    if status == ApprovalRequest.State.PENDING:
        candidates = candidates.exclude(votes__user_id=user.pk)
    allowed = []
    for approval in candidates.only(*_ROUTING_FIELDS):
        problem = authority_problem(approval, identity)
        if problem is None or (
            status != ApprovalRequest.State.PENDING and problem.code == "APPROVER_IS_REQUESTER"
        ):
            allowed.append(approval.id)
    return scoped.filter(pk__in=allowed)


def with_approval_details(queryset: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    """Everything an approval's body or queue card shows, in a fixed number of queries."""
    return queryset.select_related("decision__project", "token").prefetch_related("votes__user")
