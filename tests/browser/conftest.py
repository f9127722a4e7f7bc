"""Browser tests: pytest-playwright driving Debian's /usr/bin/chromium headless (no download).

A live server (pytest-django ``live_server``) serves the real app against the test database.
Playwright's sync API runs its event loop in the test thread for the whole session, which
Django's async-safety check would take for async code; these tests are synchronous, so the
check is switched off for the test process.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            if os.environ.get("REQUIRE_SERVICES") == "1":
                raise pytest.UsageError(
                    f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)."
                )
            item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is not installed"))


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {"executable_path": str(CHROMIUM), "args": LAUNCH_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 1400, "height": 900}, "locale": "en-US"}


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where page screenshots go: docs/images with TOLLGATE_SCREENSHOTS=1 (make screenshots)."""
    if os.environ.get("TOLLGATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "images"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path


@pytest.fixture
def demo(transactional_db, settings):
    """The demo tenant's story (what ``make demo`` shows), with its login."""
    settings.BYOK_PROVIDER_BASE_URLS = {}  # seed_demo starts its own fake provider
    out = io.StringIO()
    call_command("seed_demo", json=True, stdout=out)
    return json.loads(out.getvalue())
