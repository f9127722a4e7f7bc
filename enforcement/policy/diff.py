"""Policy documents as operators read them: normalised YAML and a unified diff. Pure."""

from __future__ import annotations

import difflib
from typing import Any

import yaml


def document_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False)


def document_diff(
    old: dict[str, Any], new: dict[str, Any], *, old_label: str, new_label: str
) -> str:
    """A unified diff of two normalised documents ("(no change)" when equal)."""
    lines = difflib.unified_diff(
        document_yaml(old).splitlines(),
        document_yaml(new).splitlines(),
        fromfile=old_label,
        tofile=new_label,
        lineterm="",
    )
    return "\n".join(lines) or "(no change)"
