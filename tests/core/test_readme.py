"""The README: the two commands come first, and its guide list links every guide in docs/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_the_two_commands_are_the_first_thing_after_the_introduction():
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[0] == "Two commands"
    block = re.search(r"```bash\n(.*?)```", section("Two commands"), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]


def test_the_guide_list_links_every_guide_and_only_files_that_exist():
    guides = section("Guides")
    linked = set(re.findall(r"\]\((docs/[^)#]+)\)", guides))
    on_disk = {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert on_disk <= linked, sorted(on_disk - linked)
    for target in linked:
        assert (ROOT / target).exists(), target
    guides_asked_for = (
        "gate approvals byok policy-reference billing scim operations deploy errors performance"
    )
    assert {f"docs/{name}.md" for name in guides_asked_for.split()} <= linked
