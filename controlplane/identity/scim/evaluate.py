"""Filters bound to a resource type's schema, and their evaluation on documents in memory.

``bind`` is the single place a filter is checked against the schema (unknown attributes,
operators that do not apply to a type, values of the wrong type: 400 invalidFilter), so the
ORM translation (``identity.scim_query``) and the in-memory evaluation here (PATCH value
filters; the differential test) agree on what every filter means. Semantics:
- a comparison holds when any value of a multi-valued attribute satisfies it;
- strings compare case-insensitively unless the attribute is ``caseExact`` (RFC 7643 2.2);
- ``ne`` and ``not`` are the negation of ``eq`` and of their operand (unassigned included);
- ``pr``: assigned and not empty; ``eq null`` is ``not pr``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.identity.scim import errors
from controlplane.identity.scim import filters as f
from controlplane.identity.scim.documents import parse_datetime
from controlplane.identity.scim.schema import (
    Attr,
    ForeignSchema,
    Resolved,
    ResourceSchema,
    UnknownAttribute,
    resolve,
)

_ORDERED = frozenset({"gt", "ge", "lt", "le"})
_TEXT = frozenset({"co", "sw", "ew"})


# Bound filters keep the parser's And/Or/Not; only their leaves are bound to the schema.
BAnd, BOr, BNot = f.And, f.Or, f.Not


@dataclass(frozen=True)
class BCompare:
    target: Resolved
    op: str
    value: Any  # str | bool | datetime


@dataclass(frozen=True)
class BPresent:
    target: Resolved


@dataclass(frozen=True)
class BValuePath:
    """``attr[inner]``: ``inner`` compares sub-attributes of one value of ``target.attr``."""

    target: Resolved
    inner: Any


def _error(detail: str) -> errors.ScimError:
    return errors.invalid_filter(f"Invalid filter: {detail}")


def _leaf(target: Resolved) -> Attr:
    """The attribute a comparison reads: the sub-attribute, or ``value`` of a multi-valued one."""
    if target.sub is not None:
        return target.sub
    if target.attr.is_complex:
        value = target.attr.child("value")
        if target.attr.multi and value is not None:
            return value
        raise _error(f"{target.attr.name} is complex: compare one of its sub-attributes.")
    return target.attr


def _check_value(target: Resolved, op: str, value: Any) -> Any:
    leaf = _leaf(target)
    label = f"{target.attr.name}.{leaf.name}" if leaf is not target.attr else leaf.name
    if leaf.type == "boolean":
        if op not in ("eq", "ne") or not isinstance(value, bool):
            raise _error(f"{label} is a boolean: use eq or ne with true or false.")
        return value
    if not isinstance(value, str):
        raise _error(f'{label} compares with a "string", not {value!r}.')
    if "\x00" in value:
        raise _error(f"the value compared with {label} contains a NUL character.")
    if leaf.type == "dateTime":
        if op in _TEXT:
            raise _error(f"{label} is a date-time: use eq, ne, gt, ge, lt or le.")
        try:
            return parse_datetime(value, label)
        except errors.ScimError as exc:
            raise _error(str(exc.detail)) from None
    if leaf.type == "binary" and op in _ORDERED:
        raise _error(f"{label} is binary: gt, ge, lt and le do not apply.")
    return value


def _resolve(resource: ResourceSchema, ref: f.AttrRef) -> Resolved:
    try:
        return resolve(resource, ref.uri, ref.name, ref.sub)
    except (UnknownAttribute, ForeignSchema):
        raise _error(f"{ref} is not an attribute of {resource.name}.") from None


def bind(resource: ResourceSchema, expr: Any, *, within: Resolved | None = None) -> Any:
    """Check ``expr`` against the schema; ``within`` binds the inside of a value filter."""
    if isinstance(expr, f.And):
        return BAnd(
            bind(resource, expr.left, within=within), bind(resource, expr.right, within=within)
        )
    if isinstance(expr, f.Or):
        return BOr(
            bind(resource, expr.left, within=within), bind(resource, expr.right, within=within)
        )
    if isinstance(expr, f.Not):
        return BNot(bind(resource, expr.expr, within=within))
    if isinstance(expr, f.ValuePath):
        target = _resolve(resource, expr.attr)
        if not (target.attr.multi and target.attr.is_complex):
            raise _error(f"{target.attr.name} is not multi-valued: a value filter does not apply.")
        return BValuePath(target, bind(resource, expr.filter, within=target))
    ref: f.AttrRef = expr.attr
    if within is not None:
        if ref.uri or ref.sub:
            raise _error(f"inside {within.attr.name}[...], name its sub-attributes only.")
        sub = within.attr.child(ref.name)
        if sub is None:
            raise _error(f"{ref.name} is not a sub-attribute of {within.attr.name}.")
        target = Resolved(within.ext, within.attr, sub)
    else:
        target = _resolve(resource, ref)
    if target.attr.returned == "never":
        raise _error(f"{target.attr.name} cannot be filtered on.")
    if isinstance(expr, f.Present):
        return BPresent(target)
    if expr.value is None:
        if expr.op == "eq":
            return BNot(BPresent(target))
        if expr.op == "ne":
            return BPresent(target)
        raise _error(f"null only compares with eq or ne ({ref}).")
    if expr.op in _ORDERED and _leaf(target).type == "boolean":
        raise _error(f"{ref} is a boolean: gt, ge, lt and le do not apply.")
    return BCompare(target, expr.op, _check_value(target, expr.op, expr.value))


def bind_filter(resource: ResourceSchema, text: str) -> Any:
    return bind(resource, f.parse_filter(text))


# --- evaluation on documents -------------------------------------------------------------------


def _values(doc: dict, target: Resolved) -> list[Any]:
    """Every value the target designates in a document (rendered form: id and meta included)."""
    container = doc.get(target.ext.id, {}) if target.ext else doc
    held = container.get(target.attr.name)
    if held is None:
        return []
    items = held if isinstance(held, list) else [held]
    if target.sub is None and not target.attr.is_complex:
        return items
    leaf = _leaf(target)
    return [item.get(leaf.name) for item in items if isinstance(item, dict) and leaf.name in item]


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def compare(leaf: Attr, op: str, actual: Any, wanted: Any) -> bool:
    """One value against one comparison (the attribute's case rule and type applied)."""
    if actual is None:
        return False
    if isinstance(wanted, bool):
        same = isinstance(actual, bool) and actual is wanted
        return same if op == "eq" else not same
    if isinstance(wanted, datetime):
        try:
            actual = parse_datetime(actual, leaf.name)
        except errors.ScimError:
            return False
    elif not isinstance(actual, str):
        return False
    elif not leaf.case_exact:
        actual, wanted = actual.casefold(), wanted.casefold()
    return {
        "eq": lambda: actual == wanted,
        "ne": lambda: actual != wanted,
        "co": lambda: wanted in actual,
        "sw": lambda: actual.startswith(wanted),
        "ew": lambda: actual.endswith(wanted),
        "gt": lambda: actual > wanted,
        "ge": lambda: actual >= wanted,
        "lt": lambda: actual < wanted,
        "le": lambda: actual <= wanted,
    }[op]()


def fold(expr: Any, leaf: Callable[[Any], Any], *, negate: Callable[[Any], Any]) -> Any:
    """Evaluate the and/or/not structure of a bound filter with ``&``, ``|`` and ``negate``;
    ``leaf`` evaluates the rest (booleans in memory, Q objects for the ORM)."""
    if isinstance(expr, BAnd | BOr):
        left, right = fold(expr.left, leaf, negate=negate), fold(expr.right, leaf, negate=negate)
        return left & right if isinstance(expr, BAnd) else left | right
    if isinstance(expr, BNot):
        return negate(fold(expr.expr, leaf, negate=negate))
    return leaf(expr)


def matches(doc: dict, expr: Any) -> bool:
    """Whether a (rendered) document satisfies a bound filter."""
    return fold(expr, lambda leaf: _matches_leaf(doc, leaf), negate=operator.not_)


def _matches_leaf(doc: dict, expr: Any) -> bool:
    if isinstance(expr, BValuePath):
        container = doc.get(expr.target.ext.id, {}) if expr.target.ext else doc
        return any(
            element_matches(e, expr.inner) for e in container.get(expr.target.attr.name) or []
        )
    if isinstance(expr, BPresent):
        target = expr.target
        if target.sub is None and target.attr.is_complex:  # the attribute has any value at all
            container = doc.get(target.ext.id, {}) if target.ext else doc
            return _present(container.get(target.attr.name))
        return any(_present(v) for v in _values(doc, target))
    if expr.op == "ne":
        return not _matches_leaf(doc, BCompare(expr.target, "eq", expr.value))
    leaf = _leaf(expr.target)
    return any(compare(leaf, expr.op, v, expr.value) for v in _values(doc, expr.target))


def element_matches(element: dict, expr: Any) -> bool:
    """Whether one value of a multi-valued complex attribute satisfies a value filter."""
    return fold(expr, lambda leaf: _element_leaf(element, leaf), negate=operator.not_)


def _element_leaf(element: dict, expr: Any) -> bool:
    leaf = expr.target.sub
    actual = element.get(leaf.name) if isinstance(element, dict) else None
    if isinstance(expr, BPresent):
        return _present(actual)
    if expr.op == "ne":
        return not compare(leaf, "eq", actual, expr.value)
    return compare(leaf, expr.op, actual, expr.value)


def eq_assertions(expr: Any) -> dict[str, Any] | None:
    """``{sub: value}`` when a value filter is only ``eq`` comparisons joined by ``and`` (such a
    filter describes the value to create when nothing matches); otherwise None."""
    if isinstance(expr, BAnd):
        left, right = eq_assertions(expr.left), eq_assertions(expr.right)
        if left is None or right is None:
            return None
        return {**left, **right}
    if isinstance(expr, BCompare) and expr.op == "eq" and not isinstance(expr.value, datetime):
        return {expr.target.sub.name: expr.value}
    return None
