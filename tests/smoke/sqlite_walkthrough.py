"""The docs/gate.md walk-through on the embedded SQLite database (the `make demo` path).

Run by tests/core/test_sqlite_walkthrough.py in a subprocess with its own DATABASE_URL, because
the test suite itself runs on PostgreSQL. Exits non-zero (with the reason) on any mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from controlplane.audit.tasks import ledger_verify_run_task  # noqa: E402
from controlplane.audit.verify import verify_ledger  # noqa: E402
from controlplane.tenancy import services  # noqa: E402
from controlplane.tenancy.models import ApiKey  # noqa: E402
from controlplane.tenancy.scopes import all_scopes  # noqa: E402


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")


call_command("migrate", verbosity=0)
tenant = services.tenant_create(slug="smoke", name="Smoke")
project = services.project_create(tenant=tenant, slug="payments", name="Payments")
record, key = services.api_key_issue(tenant=tenant, name="smoke", scopes=list(all_scopes()))
# Dates on the key exercise the raw authentication read's conversions (text on SQLite).
ApiKey.objects.filter(pk=record.pk).update(
    expires_at=timezone.now() + timedelta(days=1), last_used_at=timezone.now()
)
client = APIClient()
client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

budget = client.post(
    "/api/v1/budgets",
    {
        "scope": {"project": "payments", "environment": "prod"},
        "period": "monthly",
        "limit_usd": "100.00",
    },
    format="json",
)
check(budget.status_code == 201, f"budget: {budget.status_code} {budget.content[:300]!r}")
idem = uuid.uuid4().hex
body = {"project": "payments", "environment": "prod", "estimated_cost_usd": "40.00"}
first = client.post("/api/v1/gate/decisions", body, format="json", HTTP_IDEMPOTENCY_KEY=idem)
check(first.status_code == 201, f"gate: {first.status_code} {first.content[:300]!r}")
answer = first.json()
check(answer["outcome"] == "ALLOW", f"outcome {answer['outcome']}")
replay = client.post("/api/v1/gate/decisions", body, format="json", HTTP_IDEMPOTENCY_KEY=idem)
check(replay.status_code == 200 and replay.json()["idempotent_replay"], "replay")
denied = client.post(
    "/api/v1/gate/decisions",
    {**body, "estimated_cost_usd": "70.00"},
    format="json",
    HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
)
check(denied.json().get("outcome") == "DENY", f"deny: {denied.content[:300]!r}")
commit = client.post(
    f"/api/v1/reservations/{answer['reservation']['id']}/commit",
    {"actual_cost_usd": "35.50"},
    format="json",
)
check(commit.status_code == 200 and commit.json()["state"] == "committed", "commit")
spent = client.get(f"/api/v1/budgets/{budget.json()['id']}").json()
check(spent["spent_usd"] == "35.50" and spent["reserved_usd"] == "0.00", f"budget {spent}")
check(client.get("/api/v1/ledger").status_code == 200, "ledger")
# Verification runs in a worker: queue one, run it as the worker does, read the result.
for folder in ("queue", "processed", "control"):  # the demo broker's folders (run_demo makes them)
    (settings.CELERY_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
started = client.post("/api/v1/ledger/verify")
check(started.status_code == 202, f"verify start {started.content[:300]!r}")
ledger_verify_run_task(started.json()["id"])
verify = client.get("/api/v1/ledger/verify")
check(verify.status_code == 200 and verify.json()["ok"], f"verify {verify.content[:300]!r}")
export = client.get("/api/v1/ledger/export?format=jsonl")
exported = b"".join(export.streaming_content)
manifest = json.loads(export["X-Tollgate-Manifest"])
check(
    manifest["sha256"] == hashlib.sha256(exported).hexdigest()
    and manifest["count"] == exported.count(b"\n") > 0,
    f"export manifest {manifest}",
)
check(verify_ledger(tenant_id=tenant.id).ok, "verify_ledger")
print("sqlite walk-through ok")
