"""Bounds on JSON that clients send: values we can store and hash, and free-form fields' size.

Two checks, both one iterative walk over an already parsed document:

- ``unrepresentable`` (every JSON body, in the parser): a lone UTF-16 surrogate (``"\\ud800"``)
  cannot be encoded as UTF-8, ``1e999`` parses as an infinite float, and an integer outside
  64 bits cannot be stored, hashed canonically or handed to a policy rule. Each would otherwise
  fail deep inside a decision as if the database or the engine were broken.
- ``free_form_problem`` (``resource.attributes``, ``usage``, labels): size, depth, item count and
  key length, so a padded request costs the same as a normal one before any work is done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class FreeFormLimits:
    """Bounds for one free-form JSON field (documented in docs/security.md)."""

    max_chars: int  # size of the value written as compact JSON, in characters
    max_depth: int  # containers inside containers (a flat object has depth 1)
    max_items: int  # object members plus array elements, at every level together
    max_key_length: int


# A resource's attributes and a commit's usage: plenty for tags, sizes, provider usage objects.
ATTRIBUTES_LIMITS = FreeFormLimits(max_chars=16_384, max_depth=8, max_items=256, max_key_length=128)
USAGE_LIMITS = FreeFormLimits(max_chars=16_384, max_depth=8, max_items=256, max_key_length=128)
MAX_LABELS = 64
MAX_LABEL_KEY_LENGTH = 128


def _bad_unicode(text: str) -> str | None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "Lone UTF-16 surrogates are not allowed (the text is not valid Unicode)."
    return None


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "Null characters are not allowed."
    return _bad_unicode(text)


def _bad_scalar(value: Any, *, nul: bool = True) -> str | None:
    kind = type(value)
    if kind is str:
        return _bad_text(value) if nul else _bad_unicode(value)
    if kind is float:
        if not math.isfinite(value):
            return "Numbers must be finite (1e999 overflows to infinity)."
    elif kind is int and not INT64_MIN <= value <= INT64_MAX:
        return "Integers must fit in 64 bits (-9223372036854775808..9223372036854775807)."
    return None


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _suspect_text(text: str, nul: bool) -> bool:
    """Cheap pre-check: only non-ASCII text can hold a surrogate, only text with NUL a NUL."""
    return not text.isascii() or (nul and "\x00" in text)


def _first_problem(value: Any, nul: bool) -> bool:
    """Whether anything in ``value`` is unrepresentable (a fast walk that builds no paths)."""
    check_text = _bad_text if nul else _bad_unicode
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is str and _suspect_text(key, nul) and check_text(key):
                    return True
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is str:
            if _suspect_text(item, nul) and check_text(item):
                return True
        elif (kind is float or kind is int) and _bad_scalar(item):
            return True
    return False


def unrepresentable(value: Any, path: str = "", *, nul: bool = False) -> tuple[str, str] | None:
    """(field path, message) of the first value we could not encode, hash or hand to a rule,
    else None. NUL characters (which PostgreSQL cannot store) only with ``nul``: request bodies
    leave them to their fields, which say why in their own words.

    Every request body goes through this: a fast walk first; the path is only worked out
    (a second walk) when something is wrong."""
    if not _first_problem(value, nul):
        return None
    check_text = _bad_text if nul else _bad_unicode
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, child in item.items():
                if type(key) is str:
                    problem = check_text(key)
                    if problem:
                        return where or "(key)", problem
                stack.append((child, _join(where, key)))
        elif kind is list:
            stack.extend((child, _join(where, i)) for i, child in enumerate(item))
        else:
            problem = _bad_scalar(item, nul=nul)
            if problem:
                return where, problem
    return None  # pragma: no cover - the fast walk found something the slow one must too


def free_form_problem(value: Any, limits: FreeFormLimits) -> str | None:
    """Why a free-form JSON value is too big or not storable, else None (one walk)."""
    if type(value) is not dict:
        return "Must be a JSON object."
    chars = 2  # the braces of the root object
    items = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth > limits.max_depth:
                return f"Nested deeper than {limits.max_depth} levels."
            items += len(item)
            if items > limits.max_items:
                return f"More than {limits.max_items} members and elements in total."
            chars += 2 + len(item)  # brackets and separators
            if kind is dict:
                for key, child in item.items():
                    if type(key) is not str:
                        return "Object keys must be strings."
                    if len(key) > limits.max_key_length:
                        return f"A key is longer than {limits.max_key_length} characters."
                    problem = _bad_text(key)
                    if problem:
                        return problem
                    chars += len(key) + 3
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        else:
            problem = _bad_scalar(item)
            if problem:
                return problem
            chars += len(item) + 2 if kind is str else len(str(item)) if item is not None else 4
        if chars > limits.max_chars:
            return f"Larger than {limits.max_chars} characters as JSON."
    return None


def labels_problem(value: Any) -> str | None:
    """Labels are a flat string map: at most MAX_LABELS keys of bounded length."""
    if type(value) is not dict:
        return "Must be a JSON object of strings."
    if len(value) > MAX_LABELS:
        return f"At most {MAX_LABELS} labels."
    for key in value:
        if type(key) is not str or not key:
            return "Label keys must be non-empty strings."
        if len(key) > MAX_LABEL_KEY_LENGTH:
            return f"A label key is longer than {MAX_LABEL_KEY_LENGTH} characters."
        problem = _bad_text(key)
        if problem:
            return problem
    return None
