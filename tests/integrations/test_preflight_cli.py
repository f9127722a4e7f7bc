"""`python -m tollgate_cli preflight`: exit 0 allow, 1 deny, 2 approval pending (URL printed),
3 failure; --wait resumes with the token once approved (issue 16 item 1).

The CLI speaks HTTP to the real WSGI application in process (httpx's WSGI transport), and one
test runs it as CI does, as a subprocess against a live server."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from django.core.wsgi import get_wsgi_application

from tests import factories
from tests.enforcement.approval_helpers import approve
from tests.integrations.helpers import FIXTURES
from tollgate_cli.__main__ import main

pytestmark = pytest.mark.django_db
INFRACOST = FIXTURES / "infracost"


def in_test_transaction(wsgi):
    """The WSGI app without closing the test's database connection at the end of a request
    (what Django's test client does too)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    def app(environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            return list(wsgi(environ, start_response))
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return app


@pytest.fixture
def ci(tenant, api_key):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    transport = httpx.WSGITransport(app=in_test_transaction(get_wsgi_application()))

    def run(*args: str) -> int:
        argv = [
            "preflight",
            "--url",
            "http://testserver",
            "--api-key",
            api_key[1],
            "--project",
            "payments",
            "--environment",
            "prod",
            *args,
        ]
        return main(argv, transport=transport)

    return run


def test_exit_0_when_allowed(ci, capsys):
    assert ci("--run-id", "r1", "--infracost", str(INFRACOST / "new_stack.json")) == 0
    assert "ALLOW (WITHIN_BUDGET)" in capsys.readouterr().out


def test_exit_1_when_denied(ci, capsys):
    assert ci("--run-id", "r2", "--infracost", str(INFRACOST / "scale_up.json")) == 1
    assert "DENY (BUDGET_EXCEEDED)" in capsys.readouterr().out


def test_exit_2_prints_the_approval_url_then_wait_resumes_with_the_token(tenant, ci, capsys):
    factories.require_approval_above(tenant, "100.00")
    args = ("--run-id", "r3", "--monthly-delta", "500.00")
    assert ci(*args) == 2
    out = capsys.readouterr().out
    assert "approval pending: " in out and "/api/v1/approvals/apr_" in out
    assert ci(*args, "--wait", "--timeout", "0") == 2  # still pending: waiting gives up at once
    approval_id = out.split("/approvals/")[1].split()[0].strip("/")
    owner = factories.make_member(tenant, "olga", "owner")
    assert approve(factories.user_client(tenant, owner), approval_id).status_code == 200
    assert ci(*args, "--wait") == 0
    out = capsys.readouterr().out
    assert "granted; resuming" in out and "ALLOW" in out


def test_exit_3_on_a_problem_with_its_remediation(ci, capsys, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"projects": "no"}')
    assert ci("--run-id", "r4", "--infracost", str(broken)) == 3
    out = capsys.readouterr().out
    assert "HTTP 400 INFRACOST_INVALID" in out and "remediation:" in out


def test_exit_3_without_url_or_key(capsys):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tollgate_cli",
            "preflight",
            "--run-id",
            "x",
            "--monthly-delta",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 3 and "TOLLGATE_URL" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_the_cli_as_ci_runs_it_against_a_live_server(live_server, tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "1000.00", project=project)
    _, plaintext = factories.make_api_key(tenant, scopes=["gate:write"], project=project)
    env = {**os.environ, "TOLLGATE_URL": live_server.url, "TOLLGATE_API_KEY": plaintext}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tollgate_cli",
            "preflight",
            "--run-id",
            "gha-77",
            "--environment",
            "prod",
            "--infracost",
            str(INFRACOST / "new_stack.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALLOW" in result.stdout
