"""Every command block of README and the guides runs verbatim against a fresh ``make demo``.

The slow test starts ``manage.py run_demo`` (what ``make demo`` runs: SQLite, file broker, web +
worker + beat, the fake LLM provider) in a temporary ``var/``, runs the guides' blocks with
``tests/smoke/doc_blocks.py`` exactly as a reader would paste them, then stops the demo with
Ctrl-C and checks it exits cleanly. The fast tests keep the guides runnable by construction.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.smoke import doc_blocks

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    "README.md",
    "docs/gate.md",
    "docs/approvals.md",
    "docs/byok.md",
    "docs/policy-reference.md",
]
# What each guide's output must show: the steps did what the text says they do.
EXPECT = {
    "README.md": ['"slug":"search"', "204"],
    "docs/gate.md": [
        '"outcome": "ALLOW"',
        '"state":"committed"',
        '"state":"void"',
        '"ok":true',
        "Ledger verified",
        "export verified",
    ],
    "docs/approvals.md": [
        '"outcome": "REQUIRE_APPROVAL"',
        '{"status":"approved","approvals_count":1}',
        '"reason_code": "APPROVED"',
        '"committed"',
        '"consumed":true',
        '"code":"TOKEN_ALREADY_CONSUMED"',
        "approval token verified",
        "active: sgk_",
        '"status":"cancelled"',
    ],
    "docs/byok.md": [
        '"code":"BYOK_CREDENTIAL_INVALID"',
        '"provider":"openai","masked_key":"sk-...abcd","status":"valid"',
        '"masked_key":"sk-...wxyz","status":"valid"',
        '"status":"provider_error"',
        "204",
        "Re-wrapped 0 credential(s)",
    ],
    "docs/policy-reference.md": [
        '"state":"draft","warnings":[]',
        '{"status":"succeeded","progress":100',
        '"state":"published","warnings":[]',
        '"rolled_back_from":2',
        "Decisions replayed",
        "big-prod-change",
    ],
}
# Values only the demo's data can have: a sub-string of a problem body that means a bug.
NEVER = ['"status":500', '"code":"INTERNAL_ERROR"', "Traceback (most recent call last)"]
PLACEHOLDER = re.compile(r"\b(bud|res|crd|key|apr|dec|byok|pol|bpr)_(\.\.\.|…|01j…)")


@pytest.mark.parametrize("doc", DOCS)
def test_every_bash_block_runs_or_says_why_not(doc):
    blocks = doc_blocks.bash_blocks(ROOT / doc)
    assert blocks, doc
    for block in blocks:
        if block.skip_reason:
            continue
        code = "\n".join(
            line for line in block.text.splitlines() if not line.lstrip().startswith("#")
        )
        code = re.sub(r"\s#\s.*$", "", code, flags=re.M)  # trailing comments
        assert not PLACEHOLDER.search(code), f"{doc}:{block.line}: a placeholder id in a command"
        assert not re.search(r"(^|[\s;(])python3? manage\.py", code), (
            f"{doc}:{block.line}: use .venv/bin/python (a fresh shell has no venv active)"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(var_dir: Path) -> dict[str, str]:
    drop = ("DJANGO_", "PYTEST", "DATABASE_URL", "REDIS_URL", "CELERY_", "BYOK_", "TOLLGATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["TOLLGATE_VAR_DIR"] = str(var_dir)
    return env


def _read_banner(process: subprocess.Popen, deadline: float) -> str:
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if line.startswith("Try it:"):
            return "".join(lines)
    raise AssertionError("run_demo did not print its banner:\n" + "".join(lines)[-4000:])


def test_guides_run_verbatim_against_a_fresh_demo(tmp_path):
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        message = f"the guides need {', '.join(missing)} (see .ci/run)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    var_dir = tmp_path / "var"
    env = _clean_env(var_dir)
    port = _free_port()
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_demo", "--port", str(port)],
        cwd=ROOT,
        env={**env, "TOLLGATE_ENV": "demo"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _read_banner(demo, time.monotonic() + 240)
        key = re.search(r"API key:\s+(tg_\S+)", banner).group(1)
        assert re.search(r"Login:\s+admin / \S+", banner), banner
        fake = re.search(r"Fake LLM provider \(BYOK\): (http://\S+)", banner).group(1)
        # A reader's second shell in the checkout: .venv/bin/python and manage.py at hand.
        work = tmp_path / "checkout"
        work.mkdir()
        (work / ".venv").symlink_to(ROOT / ".venv")
        (work / "manage.py").symlink_to(ROOT / "manage.py")
        for doc in DOCS:
            result = doc_blocks.run(
                ROOT / doc,
                base=f"http://127.0.0.1:{port}",
                key=key,
                fake=fake,
                cwd=work,
                env=env,
                timeout=300,
            )
            output = result.stdout + result.stderr
            assert result.returncode == 0, f"{doc} failed:\n{output[-6000:]}"
            ran = output.count(doc_blocks.MARKER)
            runnable = [b for b in doc_blocks.bash_blocks(ROOT / doc) if not b.skip_reason]
            assert ran == len(runnable), f"{doc}: ran {ran} of {len(runnable)} blocks"
            for expected in EXPECT[doc]:
                assert expected in output, f"{doc}: expected {expected!r} in:\n{output[-6000:]}"
            for bad in NEVER:
                assert bad not in output, f"{doc}: {bad!r} in:\n{output[-6000:]}"
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest[-4000:]
    assert "Stopped." in rest and "Traceback" not in rest, rest[-4000:]
