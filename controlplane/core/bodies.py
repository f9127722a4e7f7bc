"""Request bodies are refused before parsing when they nest deeper than ``MAX_BODY_DEPTH``.

Python's JSON and YAML parsers recurse once per level: a few thousand ``[`` end in a
RecursionError (a 500), and even a legal depth makes every later walk (validation, canonical
JSON, jsonb) pay for it. Nothing Tollgate accepts nests more than a handful of levels, so a
cheap scan counts the depth first and the parser never sees a deep body.
"""

from __future__ import annotations

import re

import yaml
from django.conf import settings

from controlplane.core.errors import CoreErrorCode, TollgateError

# A JSON string (so brackets inside strings do not count) or one bracket.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset("[{")


def max_depth() -> int:
    return int(getattr(settings, "MAX_BODY_DEPTH", 32))


def body_too_deep(limit: int, media: str = "JSON") -> TollgateError:
    return TollgateError(
        CoreErrorCode.BODY_TOO_DEEP,
        f"The {media} body nests deeper than {limit} levels.",
        errors=[{"field": None, "message": f"Nesting deeper than {limit}.", "code": "too_deep"}],
    )


def check_json_depth(text: str | bytes, limit: int | None = None) -> None:
    """Raise ``BODY_TOO_DEEP`` when a JSON text opens more than ``limit`` nested containers."""
    limit = max_depth() if limit is None else limit
    # Fast path (every ordinary body): fewer openers in total than the limit.
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= limit:
            return
        text = text.decode("utf-8", errors="replace")
    elif text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in _OPENERS:
            depth += 1
            if depth > limit:
                raise body_too_deep(limit)
        elif token in ("]", "}"):
            depth -= 1


def check_yaml_depth(text: str, limit: int | None = None) -> None:
    """Raise ``BODY_TOO_DEEP`` for YAML nesting past ``limit`` (the event parser is iterative,
    so this runs before the recursive composer). Syntax errors are left to the real parse."""
    limit = max_depth() if limit is None else limit
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    raise body_too_deep(limit, "YAML")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return
