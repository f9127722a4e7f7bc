"""Money through the proxy: concurrent calls never overspend a budget, and a stream the client
abandons is committed (whole reservation, estimated, flagged for reconciliation)."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from controlplane.core.money import parse_usd
from enforcement.models import BudgetPeriod, LlmCall, Reservation
from enforcement.services.budgets import budget_update
from tests.llm.conftest import PRICES  # noqa: F401 - the catalog fixture's file


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_concurrent_calls_never_overspend_the_budget(proxy, llm_tenant, fake_upstream):
    # Each call reserves 200 output tokens of o1 (60 USD/M) plus its prompt bound: ~0.0131 USD.
    # A 0.10 USD budget holds 7 at once; the upstream reports usage equal to the reservation's
    # worst case so that every allowed call spends what it reserved.
    budget_update(budget=llm_tenant.budget, limit_micros=parse_usd("0.10"))
    fake_upstream.openai_usage = {"prompt_tokens": 40, "completion_tokens": 200}

    def call(_):
        client = openai.OpenAI(
            base_url=proxy.url + "/v1", api_key=llm_tenant.plaintext, max_retries=0
        )
        try:
            client.chat.completions.create(
                model="o1", messages=[{"role": "user", "content": "hi"}], max_tokens=200
            )
            return "ok"
        except openai.APIStatusError as exc:
            return exc.body["code"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(32)))
    assert set(results) <= {"ok", "BUDGET_EXCEEDED"}, results
    period = BudgetPeriod.objects.get(budget=llm_tenant.budget)
    assert period.spent_micros <= period.limit_micros, period.spent_micros
    assert period.reserved_micros == 0
    ok = results.count("ok")
    assert ok >= 1 and results.count("BUDGET_EXCEEDED") >= 1
    assert LlmCall.objects.count() == ok == len(fake_upstream.requests)


def test_a_client_that_disconnects_mid_stream_commits_the_whole_reservation(
    proxy, llm_tenant, fake_upstream
):
    fake_upstream.hang = True
    body = json.dumps(
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "tell me a story"}],
            "max_tokens": 1000,
            "stream": True,
        }
    ).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {llm_tenant.plaintext}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(request + body)
        received = b""
        while b"chat.completion.chunk" not in received:
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        assert fake_upstream.hanging.wait(10)
        head = received.split(b"\r\n\r\n", 1)[0].decode().lower()
        reservation_id = head.split("tollgate-reservation-id: ", 1)[1].split("\r\n", 1)[0]
    # The socket is closed: the client left mid-stream.
    call = _wait_for(lambda: LlmCall.objects.filter(reservation_id=reservation_id).first())
    reservation = Reservation.objects.get(pk=reservation_id)
    assert reservation.state == Reservation.State.COMMITTED
    assert reservation.reported_micros == reservation.amount_micros > 0
    assert call.estimated and call.needs_reconciliation
    assert call.estimate_reason == "client_disconnected"
    assert reservation.usage["needs_reconciliation"] is True


@pytest.mark.django_db
def test_a_proxy_call_whose_proxy_died_is_committed_as_estimated_not_released(llm_tenant):
    from enforcement.llm.gateway import (
        CallSpec,
        catalog_price,
        llm_commit_abandoned,
        llm_reserve,
    )
    from enforcement.tasks import llm_commit_abandoned_task

    price = catalog_price("gpt-4o")

    def reserve(action, key):
        spec = CallSpec(
            format="openai",
            model="gpt-4o",
            input_tokens=100,
            max_output_tokens=100,
            idempotency_key=key,
            action=action,
        )
        return llm_reserve(tenant=llm_tenant, api_key=llm_tenant.key, spec=spec, price=price)

    lost = reserve("llm.chat", "lost-proxy-call")
    own = reserve("llm.reservation", "callers-own")  # the API caller commits its own
    assert llm_commit_abandoned(older_than_seconds=3600) == 0  # not stale yet
    assert llm_commit_abandoned(older_than_seconds=0) == 1
    reservation = Reservation.objects.get(pk=lost.reservation_id)
    assert reservation.state == Reservation.State.COMMITTED
    assert reservation.reported_micros == reservation.amount_micros
    call = LlmCall.objects.get(reservation=reservation)
    assert call.estimated and call.estimate_reason == "proxy_lost"
    assert Reservation.objects.get(pk=own.reservation_id).state == Reservation.State.PENDING
    assert llm_commit_abandoned_task() == 0  # the beat task; nothing older than the setting
