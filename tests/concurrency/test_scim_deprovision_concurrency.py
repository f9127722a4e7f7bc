"""Real PostgreSQL, real threads: a vote cast while the person is being deprovisioned waits for
the deprovisioning and is then refused, so no vote of a deprovisioned person survives."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from controlplane.core.errors import TollgateError
from controlplane.identity.models import ScimUser
from controlplane.identity.scim.documents import read_resource
from controlplane.identity.scim.schema import USER
from controlplane.identity.services import people
from controlplane.identity.services.groups import scim_group_create
from controlplane.identity.services.users import scim_user_create, scim_user_patch
from enforcement.models import ApprovalVote
from enforcement.services.approvals import approval_vote
from tests import factories
from tests.concurrency.threads import run_threads
from tests.enforcement.helpers import gate_service, set_gate_settings

pytestmark = pytest.mark.django_db(transaction=True)


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_vote_during_deprovisioning_waits_and_is_refused(monkeypatch):
    tenant = factories.make_tenant("acme")
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    factories.require_approval_above(tenant, "100.00")
    set_gate_settings(tenant, approvers={"roles": [], "groups": ["finops"], "quorum": 2})
    alice = scim_user_create(tenant=tenant, doc=read_resource(USER, {"userName": "alice"}))
    scim_group_create(
        tenant=tenant, doc={"displayName": "finops", "members": [{"value": alice.pk}]}
    )
    approval_id = gate_service(tenant, micros=150_000_000)["approval"]["id"]

    holding, release = threading.Event(), threading.Event()

    def hold(**kwargs):  # runs inside deprovisioning, with the person's rows locked
        holding.set()
        release.wait(timeout=60)
        return {}

    monkeypatch.setattr(people, "USER_DEPROVISION_HOOKS", [*people.USER_DEPROVISION_HOOKS, hold])

    def work(index: int):
        if index == 0:
            return scim_user_patch(
                tenant=tenant,
                scim_id=alice.pk,
                body={"Operations": [{"op": "replace", "value": {"active": False}}]},
                if_match=None,
            )
        holding.wait(timeout=60)
        user = ScimUser.objects.select_related("user").get(pk=alice.pk).user
        return approval_vote(
            approval_id=approval_id, tenant_id=tenant.id, user=user, vote="approve"
        )

    def releaser():
        try:
            holding.wait(timeout=60)
            deadline = time.monotonic() + 60
            # Let go only once the vote is waiting on a lock (polled, not a fixed sleep).
            while _lock_waiters() == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            release.set()
            connection.close()

    watcher = threading.Thread(target=releaser)
    watcher.start()
    results = run_threads(2, work)
    watcher.join(timeout=120)
    deprovisioned, vote = results
    assert isinstance(deprovisioned, ScimUser) and deprovisioned.active is False, deprovisioned
    assert isinstance(vote, TollgateError) and vote.code == "APPROVER_NOT_AUTHORIZED", vote
    assert not ApprovalVote.objects.filter(request_id=approval_id).exists()
