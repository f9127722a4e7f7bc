"""Ledger exports are bounded (422 EXPORT_TOO_LARGE past LEDGER_EXPORT_MAX_ENTRIES, on the API
and the dashboard) and built in constant memory: the body spools to disk past its memory
threshold and is sent in pieces, with a manifest that matches what was sent."""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid

import pytest

from controlplane.audit import exports
from controlplane.audit.models import LedgerEntry
from tests import factories
from tests.dashboard.conftest import gate, logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(tenant):
    project = factories.make_project(tenant, "payments")
    factories.make_budget(tenant, "100000.00", project=project)
    for _ in range(40):
        gate(tenant, "1.00", project="payments", requester=f"ci-{uuid.uuid4().hex[:6]}")
    count = LedgerEntry.objects.for_tenant(tenant).count()
    assert count > 40
    return count


def test_api_export_past_the_limit_is_422_with_what_to_do(client_a, ledger, settings):
    settings.LEDGER_EXPORT_MAX_ENTRIES = ledger - 1
    response = client_a.get("/api/v1/ledger/export?format=jsonl")
    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "EXPORT_TOO_LARGE"
    assert str(ledger - 1) in problem["detail"]
    assert "since/until" in problem["remediation"]

    settings.LEDGER_EXPORT_MAX_ENTRIES = ledger  # exactly the limit is fine
    assert client_a.get("/api/v1/ledger/export?format=jsonl").status_code == 200


def test_dashboard_export_past_the_limit_is_refused(tenant, ledger, settings):
    owner = factories.make_member(tenant, "olivia", "owner")
    settings.LEDGER_EXPORT_MAX_ENTRIES = 5
    response = logged_in(owner).get("/dashboard/ledger/export/?format=csv")
    assert response.status_code == 422
    assert b"More than 5 entries" in response.content


class _Recorded(tempfile.SpooledTemporaryFile):
    made: list[_Recorded] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Recorded.made.append(self)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_big_export_spools_to_disk_and_streams_in_pieces(client_a, ledger, monkeypatch, fmt):
    monkeypatch.setattr(exports, "SPOOL_MEMORY_BYTES", 4096)
    monkeypatch.setattr(exports, "SEND_CHUNK_BYTES", 1024)
    monkeypatch.setattr(exports, "READ_CHUNK_ROWS", 7)
    monkeypatch.setattr(exports.tempfile, "SpooledTemporaryFile", _Recorded)
    _Recorded.made.clear()

    response = client_a.get(f"/api/v1/ledger/export?format={fmt}")
    assert response.status_code == 200
    (spool,) = _Recorded.made
    assert spool._rolled  # past 4 KiB the body lives in a file on disk, not in memory
    pieces = list(response.streaming_content)
    assert len(pieces) > 4
    assert all(len(piece) <= 1024 for piece in pieces)
    body = b"".join(pieces)
    assert len(body) > 4096
    assert spool.closed  # the file is gone once sent

    manifest = json.loads(response["X-Tollgate-Manifest"])
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    lines = body.decode().splitlines()
    assert manifest["count"] == ledger == len(lines) - (1 if fmt == "csv" else 0)
