"""Demo people for ``manage.py seed_demo``: FinOps approvers, a requester, the finops group."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from controlplane.identity.models import ApproverGroup
from controlplane.identity.services.groups import approver_group_save
from controlplane.tenancy.models import Membership
from controlplane.tenancy.services import membership_set

# username, email, role, in the finops group. They sign in only after an operator sets a
# password (admin -> Users); the demo's own login is the owner it prints.
PEOPLE = [
    ("fiona", "fiona@example.com", Membership.Role.MEMBER, True),
    ("ravi", "ravi@example.com", Membership.Role.MEMBER, True),
    ("dana", "dana@example.com", Membership.Role.MEMBER, False),
]


def seed_identity_demo(*, tenant, stdout) -> None:
    """Idempotent: the people and the group are created once; owners join the group too."""
    users = get_user_model().objects
    finops = []
    for username, email, role, approver in PEOPLE:
        user = users.filter(username=username).first()
        if user is None:
            user = users.create_user(username=username, email=email)  # no usable password
        if not Membership.objects.filter(tenant=tenant, user=user).exists():
            membership_set(tenant=tenant, user=user, role=role)
        if approver:
            finops.append(user)
    owners = [
        m.user
        for m in Membership.objects.filter(
            tenant=tenant, role=Membership.Role.OWNER
        ).select_related("user")
    ]
    group = ApproverGroup.objects.filter(tenant=tenant, name="finops").first()
    wanted = {u.pk: u for u in [*finops, *owners]}
    if group is None or set(group.members.values_list("pk", flat=True)) != set(wanted):
        approver_group_save(
            tenant=tenant,
            name="finops",
            external_id=group.external_id if group else "",
            members=list(wanted.values()),
            group=group,
        )
