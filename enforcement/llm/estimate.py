"""Conservative token bounds before a call is sent. Pure: no ORM, no I/O.

A token of any tokenizer the catalog's providers use covers at least one byte of UTF-8 text, so
the prompt's UTF-8 byte count bounds its tokens; each message adds a few tokens of framing
(role, separators) that are not in the text, bounded by ``PER_MESSAGE_OVERHEAD``. Output is
bounded by the request's ``max_tokens`` or else the model's maximum.
"""

from __future__ import annotations

import json

PER_MESSAGE_OVERHEAD = 8
PER_REQUEST_OVERHEAD = 16


def _text_bytes(value) -> int:
    """UTF-8 bytes of every string inside ``value`` (keys and values)."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return sum(_text_bytes(k) + _text_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_bytes(v) for v in value)
    if value is None or isinstance(value, bool):
        return 0
    return len(json.dumps(value))


def input_bound(*, messages=None, system=None, tools=None, text=None) -> int:
    """An upper bound of the prompt's tokens from its UTF-8 bytes."""
    total = PER_REQUEST_OVERHEAD
    if isinstance(messages, list):
        total += len(messages) * PER_MESSAGE_OVERHEAD + _text_bytes(messages)
    elif messages is not None:
        total += _text_bytes(messages)
    for extra in (system, tools, text):
        if extra is not None:
            total += _text_bytes(extra)
    return total


def prompt_bytes(body: dict, keys=("messages", "system", "tools", "input", "prompt")) -> int:
    return sum(_text_bytes(body.get(k)) for k in keys if k in body)
