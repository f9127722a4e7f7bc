"""Bound SCIM filters as Django ORM conditions, and ``sortBy`` as an ordering. Never raw SQL.

Every leaf is ``COALESCE(condition, false)``: SQL's unknown (an absent JSON key, a null column)
becomes false, so ``not`` and ``ne`` mean what they mean on the document (the in-memory
``identity.scim.evaluate``; a differential test holds the two together). Multi-valued attributes
are ``EXISTS`` subqueries, which compose under and/or/not without a join widening or duplicating
rows. Strings order by code point (``COLLATE "C"`` on PostgreSQL), as Python compares them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Exists, F, OuterRef, Q, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Collate, Length, Lower, NullIf
from django.db.models.lookups import (
    Contains,
    EndsWith,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)

from controlplane.identity.models import ApproverGroup, ScimUser, ScimUserEmail
from controlplane.identity.scim import errors
from controlplane.identity.scim.evaluate import BCompare, BPresent, BValuePath, fold
from controlplane.identity.scim.schema import GROUP, USER, Attr, Resolved, ResourceSchema

GroupMembership = ApproverGroup.members.through

_EXACT = {"eq": Exact, "co": Contains, "sw": StartsWith, "ew": EndsWith}
_FOLDED = {"eq": IExact, "co": IContains, "sw": IStartsWith, "ew": IEndsWith}
_ORDERED = {"gt": GreaterThan, "ge": GreaterThanOrEqual, "lt": LessThan, "le": LessThanOrEqual}


def _unsupported(what: str) -> errors.ScimError:
    return errors.invalid_filter(
        f"Invalid filter: filtering on {what} is not supported. Users filter on id, externalId, "
        "userName, displayName, name.*, title and the other single-valued attributes, emails, "
        "active, groups.value, groups.display, meta.created, meta.lastModified; Groups on id, "
        "externalId, displayName, members, members.value, meta.created, meta.lastModified."
    )


def _known(condition) -> Q:
    """Two-valued logic: unknown (NULL) is false."""
    return Q(Coalesce(condition, Value(False), output_field=BooleanField()))


def _code_point(expression):
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


def _compare(lhs, leaf: Attr, op: str, value: Any) -> Q:
    """``lhs op value`` under the attribute's case rule (``ne`` is ``not eq``, done by callers)."""
    if isinstance(value, bool | datetime):
        return _known(_ORDERED.get(op, Exact)(lhs, value))
    if op in _ORDERED:
        left, right = (lhs, Value(value)) if leaf.case_exact else (Lower(lhs), Lower(Value(value)))
        return _known(_ORDERED[op](_code_point(left), _code_point(right)))
    return _known((_EXACT if leaf.case_exact else _FOLDED)[op](lhs, value))


def _present(lhs, leaf: Attr) -> Q:
    if leaf.type in ("boolean", "dateTime"):
        return Q(IsNull(lhs, False))
    return _known(GreaterThan(Length(lhs), 0))


def _label(target: Resolved) -> str:
    name = f"{target.ext.id}:{target.attr.name}" if target.ext else target.attr.name
    return f"{name}.{target.sub.name}" if target.sub else name


@dataclass(frozen=True)
class _Relation:
    """A multi-valued attribute stored in rows: ``exists(q)`` holds when a row satisfies ``q``."""

    exists: Callable[[Q], Exists]
    columns: dict[str, str]  # sub-attribute -> column of the related rows

    def compile(self, expr: Any) -> Q:
        """A condition on one related row, from a filter bound inside ``attr[...]``."""
        return fold(expr, self._leaf, negate=operator.invert)

    def _leaf(self, expr: Any) -> Q:
        sub = expr.target.sub
        column = self.columns.get(sub.name)
        if column is None:
            raise _unsupported(_label(expr.target))
        if isinstance(expr, BPresent):
            return _present(F(column), sub)
        if expr.op == "ne":
            return ~_compare(F(column), sub, "eq", expr.value)
        return _compare(F(column), sub, expr.op, expr.value)


@dataclass(frozen=True)
class _Compiler:
    columns: dict[tuple[str | None, str, str | None], str]
    relations: dict[str, _Relation]
    json_field: str | None = None

    def compile(self, expr: Any) -> Q:
        return fold(expr, self._leaf, negate=operator.invert)

    def _leaf(self, expr: Any) -> Q:
        if isinstance(expr, BCompare) and expr.op == "ne":
            return ~self._leaf(BCompare(expr.target, "eq", expr.value))
        target: Resolved = expr.target
        if isinstance(expr, BValuePath):
            relation = self._relation(target)
            return Q(relation.exists(relation.compile(expr.inner)))
        if target.attr.multi:
            return self._multi(target, expr)
        key = (target.ext.id if target.ext else None, target.attr.name, _sub_name(target))
        if key in self.columns:
            column = F(self.columns[key])
            leaf = target.sub or target.attr
            if isinstance(expr, BPresent):
                return _present(column, leaf)
            if key == (None, "userName", None) and expr.op == "eq":
                # The (tenant, lower(user_name)) unique index serves the IdPs' lookup.
                return _known(Exact(Lower(column), Lower(Value(expr.value))))
            if leaf.type == "string" and (expr.op in _ORDERED or expr.value == ""):
                # Text columns hold "" for unassigned: only these comparisons could match it.
                column = NullIf(column, Value(""))
            return _compare(column, leaf, expr.op, expr.value)
        if self.json_field is None or target.attr.name in ("id", "meta"):
            raise _unsupported(_label(target))
        return self._json(target, expr)

    def _relation(self, target: Resolved) -> _Relation:
        relation = None if target.ext else self.relations.get(target.attr.name)
        if relation is None:
            raise _unsupported(_label(target))
        return relation

    def _multi(self, target: Resolved, expr: Any) -> Q:
        relation = self._relation(target)
        if target.sub is None and isinstance(expr, BPresent):
            return Q(relation.exists(Q()))  # has any value at all
        sub = target.sub or target.attr.child("value")
        moved = Resolved(target.ext, target.attr, sub)
        inner = (
            BPresent(moved) if isinstance(expr, BPresent) else BCompare(moved, expr.op, expr.value)
        )
        return Q(relation.exists(relation.compile(inner)))

    def _json(self, target: Resolved, expr: Any) -> Q:
        keys = [target.ext.id] if target.ext else []
        keys.append(target.attr.name)
        if target.attr.is_complex and target.sub is None:
            if not isinstance(expr, BPresent):
                raise _unsupported(_label(target))
            parent = "__".join([self.json_field, *keys[:-1]])
            return _known(Q(**{f"{parent}__has_key": keys[-1]}))
        if target.sub is not None:
            keys.append(target.sub.name)
        text = KT("__".join([self.json_field, *keys]))
        leaf = target.sub or target.attr
        if isinstance(expr, BPresent):
            return _present(text, leaf)
        if isinstance(expr.value, bool):
            return _known(Exact(text, "true" if expr.value else "false"))
        return _compare(text, leaf, expr.op, expr.value)


def _sub_name(target: Resolved) -> str | None:
    return target.sub.name if target.sub else None


_COMMON_COLUMNS = {
    (None, "id", None): "id",
    (None, "externalId", None): "external_id",
    (None, "meta", "created"): "created_at",
    (None, "meta", "lastModified"): "updated_at",
}
_USER = _Compiler(
    columns={
        **_COMMON_COLUMNS,
        (None, "userName", None): "user_name",
        (None, "displayName", None): "display_name",
        (None, "active", None): "active",
    },
    relations={
        "emails": _Relation(
            exists=lambda q: Exists(
                ScimUserEmail.objects.filter(scim_user=OuterRef("pk")).filter(q)
            ),
            columns={"value": "value", "type": "type", "display": "display", "primary": "primary"},
        ),
        "groups": _Relation(
            exists=lambda q: Exists(
                GroupMembership.objects.filter(
                    user_id=OuterRef("user_id"), approvergroup__tenant_id=OuterRef("tenant_id")
                ).filter(q)
            ),
            columns={"value": "approvergroup_id", "display": "approvergroup__name"},
        ),
    },
    json_field="attributes",
)
_GROUP = _Compiler(
    columns={**_COMMON_COLUMNS, (None, "displayName", None): "name"},
    relations={
        "members": _Relation(
            exists=lambda q: Exists(
                ScimUser.objects.filter(
                    tenant_id=OuterRef("tenant_id"), user__approver_groups=OuterRef("pk")
                ).filter(q)
            ),
            columns={"value": "id"},
        ),
    },
)
_COMPILERS = {USER.name: _USER, GROUP.name: _GROUP}


def condition(resource: ResourceSchema, bound: Any) -> Q:
    """The ORM condition of a filter bound to ``resource`` (400 invalidFilter if unsupported)."""
    return _COMPILERS[resource.name].compile(bound)


def ordering(resource: ResourceSchema, target: Resolved | None, descending: bool) -> list:
    """``order_by`` arguments for ``sortBy`` (creation order, then id, when absent)."""
    if target is None:
        return ["-created_at", "-id"] if descending else ["created_at", "id"]
    key = (target.ext.id if target.ext else None, target.attr.name, _sub_name(target))
    column = _COMPILERS[resource.name].columns.get(key)
    if column is None:
        raise errors.invalid_value(
            f"sortBy {_label(target)} is not supported; sort by "
            + ", ".join(sorted(_sort_names(resource)))
            + "."
        )
    leaf = target.sub or target.attr
    expression = F(column) if leaf.case_exact or leaf.type != "string" else Lower(column)
    expression = _code_point(expression) if leaf.type == "string" else expression
    primary = expression.desc() if descending else expression.asc()
    return [primary, "-id" if descending else "id"]


def _sort_names(resource: ResourceSchema) -> list[str]:
    return [f"{name}.{sub}" if sub else name for _, name, sub in _COMPILERS[resource.name].columns]
