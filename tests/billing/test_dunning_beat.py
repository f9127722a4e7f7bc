"""Two beat schedulers and a two-process worker, as real subprocesses, on the test database:
every dunning tick is sent twice, and still each step is taken exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from billing.models import DunningAttempt, DunningCampaign
from tests import factories
from tests.billing.test_dunning import past_due
from tests.fakes.stripe_server import FakeStripe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120  # seconds for the processes to start and work on a loaded machine


def _env(queue: str, stripe_url: str, workdir: str) -> dict:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="controlplane.settings_test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.REDIS_URL,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        DUNNING_TICK_SECONDS="1",
        STRIPE_API_BASE=stripe_url,
        STRIPE_API_KEY="sk_test_fake",
        DUNNING_SCHEDULE_DAYS="0,3",
        LOG_LEVEL="INFO",
    )
    return env


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "controlplane", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)  # polling other processes; no assertion depends on this timing
    raise AssertionError(f"timed out waiting for {what}")


def test_two_beats_and_two_workers_take_each_dunning_step_once(tmp_path):
    tenants = [factories.make_tenant(f"beat{i}") for i in range(3)]
    for i, tenant in enumerate(tenants):
        past_due(tenant, invoice_id=f"in_beat_{i}")
    campaigns = list(DunningCampaign.objects.values_list("id", flat=True))
    queue = f"test-beat-{uuid.uuid4().hex}"
    with FakeStripe() as stripe_server:
        env = _env(queue, stripe_server.url, str(tmp_path))
        logs = {name: tmp_path / f"{name}.log" for name in ("beat1", "beat2", "worker")}
        processes = [
            _start(["beat", "--max-interval", "1", "-l", "info", "--pidfile="], env, logs["beat1"]),
            _start(["beat", "--max-interval", "1", "-l", "info", "--pidfile="], env, logs["beat2"]),
            _start(
                [
                    "worker",
                    "-Q",
                    queue,
                    "-c",
                    "2",
                    "-l",
                    "info",
                    "--without-gossip",
                    "--without-mingle",
                    "--hostname",
                    f"{queue}@%h",
                ],
                env,
                logs["worker"],
            ),
        ]
        try:

            def ticks_sent(name: str) -> int:
                return logs[name].read_text(errors="replace").count("billing.dunning_tick_task")

            def first_attempts_done() -> bool:
                return (
                    DunningAttempt.objects.filter(number=1, state="failed").count() == 3
                    and ticks_sent("beat1") >= 2
                    and ticks_sent("beat2") >= 2
                )

            _wait_for(first_attempts_done, "both beats ticking and the first attempts")
            # Time passes: the second step (day 3) is due for every campaign at once.
            DunningCampaign.objects.filter(pk__in=campaigns).update(
                next_action_at=datetime.now(UTC) - timedelta(seconds=1)
            )
            _wait_for(
                lambda: DunningAttempt.objects.filter(number=2, state="failed").count() == 3,
                "the second attempts",
            )
            # Let both beats tick a few more times over the same (now not due) campaigns.
            sent = ticks_sent("beat1") + ticks_sent("beat2")
            _wait_for(lambda: ticks_sent("beat1") + ticks_sent("beat2") >= sent + 4, "more ticks")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()  # warm shutdown of the processes this test started
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)  # the process group this test started
                    process.wait()
            client = redis.Redis.from_url(settings.REDIS_URL)
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            client.close()
        worker_log = logs["worker"].read_text(errors="replace")
    # No task failed (a duplicate step would have hit UNIQUE(campaign, number)).
    assert "IntegrityError" not in worker_log, worker_log[-3000:]
    assert "raised unexpected" not in worker_log, worker_log[-3000:]
    assert worker_log.count("succeeded in") >= 8  # ticks and attempts ran in the worker
    assert DunningAttempt.objects.count() == 6  # two steps x three campaigns, nothing twice
    for campaign_id in campaigns:
        numbers = sorted(
            DunningAttempt.objects.filter(campaign_id=campaign_id).values_list("number", flat=True)
        )
        assert numbers == [1, 2]
    assert stripe_server.requests.count(("POST", "/v1/invoices/in_beat_0/pay")) == 2
