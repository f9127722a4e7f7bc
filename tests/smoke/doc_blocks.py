"""Run the ```bash blocks of a Markdown guide verbatim, the way a reader pastes them.

The only substitutions are the values a reader fills in from the ``make demo`` banner: the API
key in ``KEY=tg_...``, the web address ``127.0.0.1:8000`` / ``localhost:8000`` and the fake
provider's ``127.0.0.1:8001``. The blocks of one guide run in order in one bash process (later
blocks use the variables earlier ones set), with ``set -eo pipefail`` so a failing command
fails the run. A block is not run only when the line before it says
``<!-- walkthrough: skip (reason) -->``.

Usable by hand against a running demo:
    .venv/bin/python tests/smoke/doc_blocks.py --base http://127.0.0.1:8000 --key tg_... \\
        --fake http://127.0.0.1:8001 docs/gate.md
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*walkthrough:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
MARKER = "### tollgate-walkthrough block"


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    text: str
    skip_reason: str | None


def bash_blocks(path: Path) -> list[Block]:
    """Every ```bash / ```sh block with its skip marker (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index].strip())
        if not match:
            index += 1
            continue
        language, start = match.group(1), index
        index += 1
        body = []
        while index < len(lines) and not lines[index].strip().startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        if language not in ("bash", "sh", "shell"):
            continue
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        skip = SKIP.search(previous)
        indent = len(lines[start]) - len(lines[start].lstrip())
        text = "\n".join(line[indent:] if line[:indent].isspace() else line for line in body)
        blocks.append(Block(start + 1, text, skip.group("reason") if skip else None))
    return blocks


def substitute(text: str, *, base: str, key: str, fake: str) -> str:
    text = re.sub(r"\bKEY=tg_\.\.\.", f"KEY={key}", text)
    text = text.replace("http://127.0.0.1:8001", fake)
    for address in ("http://127.0.0.1:8000", "http://localhost:8000"):
        text = text.replace(address, base)
    return text


def script(path: Path, *, base: str, key: str, fake: str) -> str:
    parts = ["set -eo pipefail"]
    for number, block in enumerate(bash_blocks(path), start=1):
        if block.skip_reason:
            continue
        parts.append(f"echo '{MARKER} {number} ({path.name} line {block.line})'")
        parts.append(substitute(block.text, base=base, key=key, fake=fake))
    return "\n".join(parts) + "\n"


def run(path: Path, *, base: str, key: str, fake: str, cwd: Path, env: dict, timeout: float):
    return subprocess.run(
        ["bash", "-c", script(path, base=base, key=key, fake=fake)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--fake", required=True)
    parser.add_argument("docs", nargs="+", type=Path)
    args = parser.parse_args()
    for doc in args.docs:
        result = run(
            doc,
            base=args.base,
            key=args.key,
            fake=args.fake,
            cwd=Path.cwd(),
            env=dict(os.environ),
            timeout=600,
        )
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode:
            print(f"FAILED: {doc} exited {result.returncode}", file=sys.stderr)
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
