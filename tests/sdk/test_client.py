"""The Python SDK (sdk/python, import ``tollgate``) against a real Tollgate server
(pytest-django's live server on PostgreSQL), through a local fault-injecting front where the
test needs lost answers or 503s."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import tollgate

from enforcement.models import Decision, Reservation
from tests import factories
from tests.enforcement.approval_helpers import approve
from tests.enforcement.helpers import hard_mode

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(live_server):
    tenant = factories.make_tenant("sdk-co")
    project = factories.make_project(tenant, "payments")
    hard_mode(tenant)
    factories.make_budget(tenant, "100.00", project=project)
    _, key = factories.make_api_key(tenant, name="sdk key")
    return tenant, live_server.url, key


@pytest.fixture
def client(setup):
    _, url, key = setup
    sleeps: list[float] = []
    with tollgate.Tollgate(url, key, sleep=sleeps.append) as tg:
        tg.sleeps = sleeps
        yield tg


def _reservation_state(reservation_id: str) -> str:
    return Reservation.objects.get(id=reservation_id).state


def test_gate_allows_and_commit_records_the_actual_cost(client):
    decision = client.gate(
        project="payments", environment="prod", action="compute.scale_up", estimated_cost_usd="40"
    )
    assert decision.outcome == "ALLOW"
    assert decision.allowed and not decision.fail_open
    assert decision.reservation is not None
    assert str(decision.reservation.amount_usd) == "40.00"
    committed = client.commit(decision.reservation.id, actual_cost_usd="31.25")
    assert committed["state"] == "committed"
    assert _reservation_state(decision.reservation.id) == "committed"


def test_deny_raises_budget_denied_with_the_reason(client):
    with pytest.raises(tollgate.BudgetDenied) as denied:
        client.gate(project="payments", environment="prod", estimated_cost_usd="250.00")
    assert denied.value.reason_code
    assert denied.value.decision.outcome == "DENY"
    assert denied.value.decision.reservation is None
    assert Reservation.objects.count() == 0


def test_bad_input_is_an_api_error_with_the_stable_code(client):
    with pytest.raises(tollgate.ApiError) as error:
        client.gate(project="no-such-project", environment="prod", estimated_cost_usd="1")
    assert 400 <= error.value.status < 500
    assert error.value.code == "UNKNOWN_PROJECT"
    with pytest.raises(ValueError):
        client.gate(project="payments", environment="prod", estimated_cost_usd=float("nan"))


def test_spend_commits_the_reported_cost(client):
    with client.spend(project="payments", environment="prod", estimated_cost_usd="20") as spend:
        spend.actual_cost_usd = "12.5"
    reservation = Reservation.objects.get(id=spend.reservation.id)
    assert reservation.state == "committed"
    assert reservation.reported_micros == 12_500_000


def test_spend_without_a_report_commits_the_estimate(client):
    with client.spend(project="payments", environment="prod", estimated_cost_usd="7") as spend:
        pass
    assert Reservation.objects.get(id=spend.reservation.id).reported_micros == 7_000_000


def test_spend_that_fails_commits_by_default_or_releases_when_told(client):
    with (
        pytest.raises(RuntimeError),
        client.spend(project="payments", environment="prod", estimated_cost_usd="5") as s1,
    ):
        raise RuntimeError("apply failed half way")
    assert _reservation_state(s1.reservation.id) == "committed"
    with (
        pytest.raises(RuntimeError),
        client.spend(
            project="payments", environment="prod", estimated_cost_usd="5", on_error="release"
        ) as s2,
    ):
        raise RuntimeError("nothing was created")
    assert _reservation_state(s2.reservation.id) == "released"


def test_spend_is_not_entered_when_denied(client):
    entered = []
    with (
        pytest.raises(tollgate.BudgetDenied),
        client.spend(project="payments", environment="prod", estimated_cost_usd="500"),
    ):
        entered.append(True)
    assert entered == []


def test_approval_required_resumes_with_the_token_after_the_approval(setup, client):
    tenant, _, _ = setup
    factories.require_approval_above(tenant, "30.00")
    with pytest.raises(tollgate.ApprovalRequired) as required:
        client.gate(project="payments", environment="prod", estimated_cost_usd="50", requester="ci")
    pending = required.value
    assert pending.approval_id.startswith("apr_")
    assert pending.url
    with pytest.raises(tollgate.ApprovalPending):
        pending.resume(wait=False)

    owner = factories.make_member(tenant, "owner-1", "owner")
    assert approve(factories.user_client(tenant, owner), pending.approval_id).status_code == 200

    decision = pending.resume(timeout=60, poll_interval=0.01)
    assert decision.outcome == "ALLOW"
    assert decision.reason_code == "APPROVED"
    assert decision.reservation.id == pending.decision.reservation.id
    client.commit(decision.reservation.id, actual_cost_usd="48")
    assert _reservation_state(decision.reservation.id) == "committed"


def test_a_denied_approval_raises_approval_denied(setup, client):
    tenant, _, _ = setup
    factories.require_approval_above(tenant, "30.00")
    with pytest.raises(tollgate.ApprovalRequired) as required:
        client.gate(project="payments", environment="prod", estimated_cost_usd="50", requester="ci")
    owner = factories.make_member(tenant, "owner-2", "owner")
    approver = factories.user_client(tenant, owner)
    response = approver.post(
        f"/api/v1/approvals/{required.value.approval_id}/deny", {"comment": "no"}, format="json"
    )
    assert response.status_code == 200
    with pytest.raises(tollgate.ApprovalDenied) as denied:
        required.value.resume(timeout=5, poll_interval=0.01)
    assert denied.value.status == "denied"


# -- retries through a fault-injecting front --------------------------------------------------


class FaultFront:
    """Forwards to Tollgate; per request path, a script of faults to play first:
    ``"503"`` answers 503 with Retry-After without forwarding; ``"lose"`` forwards, then drops
    the connection without answering (the answer is lost, the work is done)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: dict[str, list[str]] = {}
        self.seen: list[tuple[str, str | None]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                front.seen.append((self.path, self.headers.get("Idempotency-Key")))
                script = front.faults.get(self.path.split("?")[0], [])
                fault = script.pop(0) if script else None
                if fault == "503":
                    raw = b'{"code": "DATABASE_UNAVAILABLE", "status": 503}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/problem+json")
                    self.send_header("Retry-After", "2")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"host", "content-length", "connection"}
                }
                answer = httpx.request(
                    self.command, front.upstream + self.path, content=body, headers=headers
                )
                if fault == "lose":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def front(setup):
    _, url, key = setup
    with FaultFront(url) as f:
        sleeps: list[float] = []
        with tollgate.Tollgate(f.url, key, sleep=sleeps.append, max_retries=3) as tg:
            yield f, tg, sleeps


def test_a_lost_gate_answer_is_retried_with_the_same_key_and_reserves_once(front):
    f, tg, sleeps = front
    f.faults["/api/v1/gate/decisions"] = ["lose"]
    decision = tg.gate(project="payments", environment="prod", estimated_cost_usd="10")
    keys = [key for path, key in f.seen if path == "/api/v1/gate/decisions"]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("sdk-")
    assert decision.idempotent_replay is True
    assert Decision.objects.count() == 1
    assert Reservation.objects.count() == 1
    assert len(sleeps) == 1


def test_503_is_retried_after_retry_after(front):
    f, tg, sleeps = front
    f.faults["/api/v1/gate/decisions"] = ["503", "503"]
    decision = tg.gate(project="payments", environment="prod", estimated_cost_usd="10")
    assert decision.outcome == "ALLOW" and decision.idempotent_replay is False
    assert sleeps == [2.0, 2.0]
    assert Reservation.objects.count() == 1


def test_a_lost_commit_answer_is_a_success_not_a_conflict(front):
    f, tg, _ = front
    decision = tg.gate(project="payments", environment="prod", estimated_cost_usd="10")
    f.faults[f"/api/v1/reservations/{decision.reservation.id}/commit"] = ["lose"]
    committed = tg.commit(decision.reservation.id, actual_cost_usd="9")
    assert committed["state"] == "committed"
    assert Reservation.objects.get(id=decision.reservation.id).reported_micros == 9_000_000


def test_a_second_commit_of_a_released_reservation_is_still_a_conflict(front):
    _, tg, _ = front
    decision = tg.gate(project="payments", environment="prod", estimated_cost_usd="10")
    tg.release(decision.reservation.id)
    with pytest.raises(tollgate.ApiError) as conflict:
        tg.commit(decision.reservation.id, actual_cost_usd="9")
    assert conflict.value.status == 409
    assert conflict.value.code == "RESERVATION_RESOLVED"


def test_unavailable_after_the_retries_run_out(front):
    f, tg, sleeps = front
    f.faults["/api/v1/gate/decisions"] = ["503"] * 4
    with pytest.raises(tollgate.Unavailable) as unavailable:
        tg.gate(project="payments", environment="prod", estimated_cost_usd="10")
    assert unavailable.value.status == 503
    assert len(sleeps) == 3
    assert Reservation.objects.count() == 0


def test_unreachable_tollgate_is_unavailable():
    sleeps: list[float] = []
    with (
        tollgate.Tollgate(
            "http://127.0.0.1:9", "tg_x_y", sleep=sleeps.append, max_retries=2, backoff=0.25
        ) as tg,
        pytest.raises(tollgate.Unavailable) as unavailable,
    ):
        tg.gate(project="p", environment="e", estimated_cost_usd="1")
    assert "ConnectError" in str(unavailable.value)
    assert sleeps == [0.25, 0.5]


def test_configuration_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("TOLLGATE_URL", raising=False)
    monkeypatch.delenv("TOLLGATE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="TOLLGATE_URL"):
        tollgate.Tollgate()
    monkeypatch.setenv("TOLLGATE_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("TOLLGATE_API_KEY", "tg_a_b")
    with tollgate.Tollgate() as tg:
        assert tg.base_url == "http://127.0.0.1:1"


def test_the_package_is_typed():
    from importlib.resources import files

    assert files("tollgate").joinpath("py.typed").is_file()
    assert tollgate.__all__
