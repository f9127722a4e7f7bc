"""Twenty concurrent consumers of one approval token: exactly one wins (PostgreSQL, real threads)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from enforcement.models import ApprovalToken, BudgetPeriod
from tests import factories
from tests.enforcement.approval_helpers import approved_token, gate

pytestmark = pytest.mark.django_db(transaction=True)
CONCURRENCY = 20


def _race(calls):
    barrier = threading.Barrier(len(calls))
    results: list[int] = []
    lock = threading.Lock()

    def run(call):
        try:
            barrier.wait()
            status = call()
            with lock:
                results.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _setup(tenant, api_key):
    project = factories.make_project(tenant, "payments")
    factories.require_approval_above(tenant, "100.00")
    budget = factories.make_budget(tenant, "1000.00", project=project)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    answer, token = approved_token(tenant, client)
    return budget, answer, token


def test_twenty_concurrent_consumes_succeed_exactly_once(tenant, api_key):
    _, answer, token = _setup(tenant, api_key)
    body = {
        "token": token,
        "expected_project": "payments",
        "expected_fingerprint": answer["fingerprint"],
    }

    def call():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        return client.post("/api/v1/approval-tokens/consume", body, format="json").status_code

    results = _race([call] * CONCURRENCY)
    assert sorted(results) == [200] + [409] * (CONCURRENCY - 1), results
    assert ApprovalToken.objects.filter(consumed_at__isnull=False).count() == 1


def test_twenty_concurrent_gate_continuations_allow_once(tenant, api_key):
    budget, _answer, token = _setup(tenant, api_key)

    def call_with(key):
        def call():
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
            return gate(client, key=key, approval_token=token).status_code

        return call

    results = _race([call_with(f"step-{i}") for i in range(CONCURRENCY)])
    assert sorted(results) == [201] + [409] * (CONCURRENCY - 1), results
    from enforcement.models import Decision

    assert Decision.objects.filter(reason_code="APPROVED").count() == 1
    assert BudgetPeriod.objects.get(budget=budget).reserved_micros == 150_000_000
