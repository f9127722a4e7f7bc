"""SCIM filter and PATCH path parsing (RFC 7644 sections 3.4.2.2 and 3.5.2) into a small AST.

Our own recursive-descent parser rather than django-scim2's (which turns filters into raw SQL)
or scim2-filter-parser's Q transpiler (which silently drops unknown attributes, widening a
query): every input either parses into the AST below or raises ``invalidFilter``/``invalidPath``
with the position of the problem. Bounded in length and depth, so no input can exhaust the
stack. Precedence: ``not`` > ``and`` > ``or``; keywords and operators are case-insensitive.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from controlplane.identity.scim.errors import ScimError, invalid_filter, invalid_path

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"})

_ATTR_NAME = r"\$?[A-Za-z][\w\-]*"
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<punct>[()\[\]])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<path>(?:[uU][rR][nN]:[^\s\[\]()"]*:)?"""
    + _ATTR_NAME
    + r"""(?:\."""
    + _ATTR_NAME
    + r""")?)
  | (?P<subattr>\."""
    + _ATTR_NAME
    + r""")
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class AttrRef:
    """``[uri:]name[.sub]`` as written; resolved against a schema later (names fold case)."""

    uri: str | None
    name: str
    sub: str | None = None

    def __str__(self) -> str:
        text = f"{self.uri}:{self.name}" if self.uri else self.name
        return f"{text}.{self.sub}" if self.sub else text


@dataclass(frozen=True)
class Compare:
    attr: AttrRef
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    attr: AttrRef


@dataclass(frozen=True)
class And:
    left: Any
    right: Any


@dataclass(frozen=True)
class Or:
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    expr: Any


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: the filter's attribute names are sub-attributes of ``attr``."""

    attr: AttrRef
    filter: Any


@dataclass(frozen=True)
class PatchPath:
    """A PATCH ``path``: ``attr``, ``attr.sub``, ``attr[filter]`` or ``attr[filter].sub``."""

    attr: AttrRef
    filter: Any = None
    sub: str | None = None


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(text: str, error) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise error(f"Unexpected character {text[pos]!r} at position {pos}.")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return out


def _attr_ref(token: _Token) -> AttrRef:
    text = token.text
    uri = None
    if ":" in text:
        uri, _, text = text.rpartition(":")
    name, _, sub = text.partition(".")
    return AttrRef(uri=uri, name=name, sub=sub or None)


class _Parser:
    def __init__(self, text: str, error) -> None:
        self.error = error
        if len(text) > MAX_FILTER_LENGTH:
            raise error(f"Longer than {MAX_FILTER_LENGTH} characters.")
        self.tokens = _tokens(text, error)
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------------
    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "path" and token.text.lower() in words:
            self.i += 1
            return token.text.lower()
        return None

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text != text:
            where = f"at position {token.pos}" if token else "at the end"
            raise self.error(f"Expected {text!r} {where}.")
        self.i += 1

    def fail(self, what: str):
        token = self.peek()
        if token is None:
            return self.error(f"Expected {what} at the end of the expression.")
        return self.error(f"Expected {what} at position {token.pos}, found {token.text!r}.")

    # -- grammar -------------------------------------------------------------------------------
    def expression(self, *, nested: bool) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"Nested deeper than {MAX_DEPTH} levels.")
        left = self.conjunction(nested=nested)
        while self.keyword("or"):
            left = Or(left, self.conjunction(nested=nested))
        self.depth -= 1
        return left

    def conjunction(self, *, nested: bool) -> Any:
        left = self.unary(nested=nested)
        while self.keyword("and"):
            left = And(left, self.unary(nested=nested))
        return left

    def unary(self, *, nested: bool) -> Any:
        token = self.peek()
        if token is None:
            raise self.fail("an attribute, 'not' or '('")
        if token.kind == "path" and token.text.lower() == "not":
            following = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if following is not None and following.text == "(":
                self.i += 1
                self.expect("(")
                inner = self.expression(nested=nested)
                self.expect(")")
                return Not(inner)
        if token.text == "(":
            self.i += 1
            inner = self.expression(nested=nested)
            self.expect(")")
            return inner
        return self.attribute_expression(nested=nested)

    def attribute_expression(self, *, nested: bool) -> Any:
        token = self.peek()
        if token is None or token.kind != "path":
            raise self.fail("an attribute name")
        self.i += 1
        attr = _attr_ref(token)
        following = self.peek()
        if following is not None and following.text == "[":
            if nested:
                raise self.error(f"A value filter cannot nest another one (position {token.pos}).")
            if attr.sub:
                raise self.error(f"{attr} cannot take a value filter: name the attribute only.")
            self.i += 1
            inner = self.expression(nested=True)
            self.expect("]")
            return ValuePath(attr, inner)
        op = self.keyword("pr", *COMPARE_OPS)
        if op is None:
            raise self.fail("an operator (eq, ne, co, sw, ew, gt, lt, ge, le, pr)")
        if op == "pr":
            return Present(attr)
        return Compare(attr, op, self.value())

    def value(self) -> Any:
        token = self.peek()
        if token is None:
            raise self.fail("a value")
        self.i += 1
        if token.kind == "string":
            try:
                return json.loads(token.text)
            except ValueError:
                raise self.error(f"Malformed string at position {token.pos}.") from None
        if token.kind == "number":
            number = float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
            if not math.isfinite(number):
                raise self.error(f"Number out of range at position {token.pos}.")
            return number
        words = {"true": True, "false": False, "null": None}
        if token.kind == "path" and token.text.lower() in words:
            return words[token.text.lower()]
        raise self.error(
            f'Expected a value (a "string", number, true, false or null) at position '
            f"{token.pos}, found {token.text!r}."
        )

    def done(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.error(f"Unexpected {token.text!r} at position {token.pos}.")


def _filter_error(detail: str) -> ScimError:
    return invalid_filter(f"Invalid filter: {detail} See RFC 7644 section 3.4.2.2.")


def parse_filter(text: str) -> Any:
    """Parse a ``filter`` query parameter (or SearchRequest member) into an AST."""
    if not isinstance(text, str) or not text.strip():
        raise _filter_error("the filter is empty.")
    parser = _Parser(text, _filter_error)
    expr = parser.expression(nested=False)
    parser.done()
    return expr


def _path_error(detail: str) -> ScimError:
    return invalid_path(f"Invalid path: {detail} See RFC 7644 section 3.5.2.")


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH operation ``path``."""
    if not isinstance(text, str) or not text.strip():
        raise _path_error("the path is empty.")
    parser = _Parser(text.strip(), _path_error)
    token = parser.peek()
    if token is None or token.kind != "path":
        raise parser.fail("an attribute name")
    parser.i += 1
    attr = _attr_ref(token)
    if parser.peek() is None:
        return PatchPath(attr)
    if attr.sub:
        raise _path_error(f"{attr} cannot take a value filter.")
    parser.expect("[")
    flt = parser.expression(nested=True)
    parser.expect("]")
    sub = None
    token = parser.peek()
    if token is not None and token.kind == "subattr":
        sub = token.text[1:]
        parser.i += 1
    parser.done()
    return PatchPath(attr, flt, sub)
