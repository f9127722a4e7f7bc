"""Approvals queue: the pending requests the signed-in user may act on; approve or deny."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect

from controlplane.core.errors import TollgateError
from controlplane.dashboard.forms import VoteForm
from controlplane.dashboard.views.base import DashboardView
from enforcement.models import ApprovalRequest, ApprovalVote
from enforcement.selectors import approvals_for_approver, budget_labels, with_approval_details
from enforcement.services.approvals import approval_vote

QUEUE_PAGE = 20


def approvals_queue(*, tenant, user, page: int = 1) -> tuple[list[ApprovalRequest], int]:
    """One page of the queue (oldest deadline first) and the queue's length; fixed queries."""
    queue = approvals_for_approver(tenant=tenant, user=user, status="pending")
    start = (page - 1) * QUEUE_PAGE
    cards = list(
        with_approval_details(queue).order_by("expires_at", "id")[start : start + QUEUE_PAGE]
    )
    return cards, queue.count()


def approval_count(approval: ApprovalRequest) -> int:
    return sum(1 for v in approval.votes.all() if v.vote == ApprovalVote.Vote.APPROVE)


class ApprovalsView(DashboardView):
    section = "approvals"
    title = "Approvals"

    def get(self, request):
        raw = request.GET.get("page", "1")
        page = int(raw) if raw.isdigit() and int(raw) >= 1 else 1
        queue, total = approvals_queue(tenant=self.tenant, user=request.user, page=page)
        cards = [{"approval": a, "approved": approval_count(a)} for a in queue]
        refs = budget_labels(tenant=self.tenant) if cards else {}
        pages = -(-total // QUEUE_PAGE)
        return self.render(
            "dashboard/approvals.html",
            cards=cards,
            refs=refs,
            total=total,
            page=page,
            previous_page=page - 1 if page > 1 else None,
            next_page=page + 1 if page < pages else None,
        )


class ApprovalVoteView(DashboardView):
    """POST approve|deny with a comment, as the signed-in user (the service checks authority)."""

    section = "approvals"
    title = "Approvals"

    def post(self, request, approval_id: str):
        form = VoteForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose approve or deny; a comment is at most 2000 characters.")
            return redirect("dashboard:approvals")
        if not ApprovalRequest.objects.for_tenant(self.tenant).filter(pk=approval_id).exists():
            return self.not_found("approval request")
        try:
            result = approval_vote(
                approval_id=approval_id,
                tenant_id=self.tenant.id,
                user=request.user,
                vote=form.cleaned_data["vote"],
                comment=form.cleaned_data["comment"],
                via="dashboard",
            )
        except TollgateError as exc:
            messages.error(request, f"{approval_id}: {exc.message} {exc.remediation or ''}".strip())
            return redirect("dashboard:approvals")
        approval = result.approval
        if approval.state == ApprovalRequest.State.APPROVED:
            messages.success(
                request,
                f"{approval_id} approved: the quorum is reached and a one-time approval token "
                "was issued. The requesting pipeline receives it when it polls (same gate call "
                "and Idempotency-Key).",
            )
        elif approval.state == ApprovalRequest.State.DENIED:
            messages.success(request, f"{approval_id} denied; the held money is released.")
        else:
            messages.success(
                request,
                f"Your approval of {approval_id} is recorded; "
                f"{approval.required_approvals - approval.votes.filter(vote='approve').count()} "
                "more needed.",
            )
        return redirect("dashboard:approvals")
