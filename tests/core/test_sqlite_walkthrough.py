"""`make demo` runs on SQLite: the gate walk-through must work there too (the portable path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gate_walkthrough_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        TOLLGATE_ENV="development",
        DATABASE_URL=f"sqlite:///{tmp_path / 'walkthrough.sqlite3'}",
        REDIS_URL="",
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="WARNING",
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "smoke" / "sqlite_walkthrough.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sqlite walk-through ok" in result.stdout
