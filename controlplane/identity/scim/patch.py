"""PATCH (RFC 7644 section 3.5.2) applied to a document: pure, all-or-nothing.

Works on a copy; any failing operation raises and the caller writes nothing. Identity-provider
shapes accepted besides the RFC's own (each exercised in tests):
- op names in any case ("Replace", "Add"); Entra ID
- no ``path`` with a value object whose keys are attribute paths ("name.givenName",
  'emails[type eq "work"].value', extension URNs), e.g. ``{"active": false}``; Okta and Entra
- ``remove`` on a multi-valued attribute with a ``value`` listing what to remove; Entra groups
- ``add``/``replace`` through an ``eq`` value filter that matches nothing creates that value
  (``emails[type eq "work"].value``); Entra users
- read-only members (``id``, ``meta``, ``schemas``) inside a no-path value are ignored; Okta
Attributes qualified by a schema URN Tollgate does not use are skipped, as in POST bodies.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.identity.scim import errors
from controlplane.identity.scim.documents import coerce
from controlplane.identity.scim.evaluate import bind, element_matches, eq_assertions
from controlplane.identity.scim.filters import PatchPath, parse_path
from controlplane.identity.scim.schema import (
    PATCH_OP,
    Attr,
    ForeignSchema,
    Resolved,
    ResourceSchema,
    Schema,
    UnknownAttribute,
    resolve,
    whole_extension,
)

MAX_OPERATIONS = 1000
_OPS = ("add", "remove", "replace")
_IGNORED = ("schemas", "id", "meta")
_PLAIN = PatchPath(attr=None)  # type: ignore[arg-type]  # no filter, no sub-attribute


def read_operations(body: Any) -> list[dict[str, Any]]:
    """The operations of a PatchOp body, checked for shape (op, path, value)."""
    if not isinstance(body, dict):
        raise errors.invalid_syntax("The body must be a PatchOp JSON object.")
    members = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
    schemas = members.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or PATCH_OP.lower() not in [str(s).lower() for s in schemas]
    ):
        raise errors.invalid_syntax(f"schemas must be [{PATCH_OP!r}].")
    operations = members.get("operations")
    if not isinstance(operations, list) or not operations:
        raise errors.invalid_syntax("Operations must be a non-empty list of operations.")
    if len(operations) > MAX_OPERATIONS:
        raise errors.ScimError(
            413, f"At most {MAX_OPERATIONS} operations per request; split the change."
        )
    out = []
    for index, raw in enumerate(operations):
        if not isinstance(raw, dict):
            raise errors.invalid_syntax(f"Operations[{index}] must be an object.")
        item = {k.lower(): v for k, v in raw.items() if isinstance(k, str)}
        op = item.get("op")
        if not isinstance(op, str) or op.lower() not in _OPS:
            raise errors.invalid_syntax(
                f"Operations[{index}].op must be add, remove or replace, not {op!r}."
            )
        path = item.get("path")
        if path is not None and not isinstance(path, str):
            raise errors.invalid_path(f"Operations[{index}].path must be a string.")
        if op.lower() != "remove" and "value" not in item:
            raise errors.invalid_syntax(f"Operations[{index}] ({op}) needs a value.")
        out.append(
            {
                "op": op.lower(),
                "path": path,
                "value": item.get("value"),
                "has_value": "value" in item,
            }
        )
    return out


def apply_patch(resource: ResourceSchema, doc: dict, body: Any) -> dict:
    """The document after every operation of ``body``; ``doc`` itself is left untouched."""
    result = copy.deepcopy(doc)
    for operation in read_operations(body):
        _Operation(resource, result, operation).run()
    return result


class _Operation:
    def __init__(self, resource: ResourceSchema, doc: dict, operation: dict) -> None:
        self.resource = resource
        self.doc = doc
        self.op = operation["op"]
        self.path = operation["path"]
        self.value = operation["value"]
        self.has_value = operation["has_value"]

    def run(self) -> None:
        if self.path is None:
            if self.op == "remove":
                raise errors.no_target("remove needs a path naming what to remove.")
            self._no_path(self.value)
            return
        path = parse_path(self.path)
        ext = whole_extension(self.resource, path.attr.uri, path.attr.name)
        if ext is not None and path.filter is None and path.attr.sub is None:
            self._whole_extension(ext, self.value)
            return
        try:
            target = resolve(self.resource, path.attr.uri, path.attr.name, path.attr.sub)
        except ForeignSchema:
            return  # an extension Tollgate does not use
        except UnknownAttribute:
            raise errors.invalid_path(
                f"{self.path!r} does not name an attribute of {self.resource.name}."
            ) from None
        if target.attr.read_only:
            raise errors.mutability(f"{target.attr.name} is read-only.")
        self._at(target, path, self.value)

    # -- no path / whole extension ------------------------------------------------------------
    def _no_path(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise errors.invalid_value(f"{self.op} without a path needs an object value.")
        for key, item in value.items():
            if not isinstance(key, str) or key.lower() in _IGNORED:
                continue
            ext = self.resource.extension(key)
            if ext is not None:
                self._whole_extension(ext, item)
                continue
            path = parse_path(key)
            try:
                target = resolve(self.resource, path.attr.uri, path.attr.name, path.attr.sub)
            except (ForeignSchema, UnknownAttribute):
                continue  # as in POST bodies: names Tollgate does not define are ignored
            if target.attr.read_only:
                continue
            self._at(target, path, item)

    def _whole_extension(self, ext: Schema, value: Any) -> None:
        if self.op == "remove":
            self.doc.pop(ext.id, None)
            return
        if not isinstance(value, dict):
            raise errors.invalid_value(f"{ext.id} must be an object of its attributes.")
        if self.op == "replace" and self.path is not None:
            self.doc.pop(ext.id, None)
        for name, item in value.items():
            attr = ext.attr(name) if isinstance(name, str) else None
            if attr is None or attr.read_only:
                continue
            self._at(Resolved(ext, attr), _PLAIN, item)

    # -- one attribute ------------------------------------------------------------------------
    def _container(self, target: Resolved) -> dict:
        return self.doc.setdefault(target.ext.id, {}) if target.ext else self.doc

    def _store(self, target: Resolved, value: Any) -> None:
        container = self._container(target)
        if value in (None, [], {}):
            container.pop(target.attr.name, None)
        else:
            container[target.attr.name] = value
        if target.ext and not self.doc.get(target.ext.id):
            self.doc.pop(target.ext.id, None)

    def _at(self, target: Resolved, path: PatchPath, value: Any) -> None:
        attr = target.attr
        current = self._container(target).get(attr.name)
        if path.filter is not None:
            self._filtered(target, path, current, value)
        elif target.sub is not None:
            self._sub(target, current, value)
        elif self.op == "remove":
            if attr.required:
                raise errors.mutability(f"{attr.name} is required and cannot be removed.")
            if attr.multi and self.has_value and value is not None:
                self._store(target, _without(attr, current or [], coerce(attr, value) or []))
            else:
                self._store(target, None)
        else:
            self._set(target, current, coerce(attr, value))

    def _set(self, target: Resolved, current: Any, value: Any) -> None:
        attr = target.attr
        if value is None:
            if self.op == "replace":
                self._check_removable(attr)
                self._store(target, None)
            return
        if attr.mutability == "immutable" and current not in (None, value):
            raise errors.mutability(f"{attr.name} is immutable once set.")
        if attr.multi:
            if self.op == "add":
                held = list(current or [])
                added = [v for v in value if not any(_same(attr, v, h) for h in held)]
                held.extend(added)
                value = _one_primary(held, [v for v in added if v.get("primary") is True])
            self._store(target, value)
        elif attr.is_complex:
            self._store(target, {**(current or {}), **value})  # both add and replace merge
        else:
            self._store(target, value)

    def _check_removable(self, attr: Attr) -> None:
        if attr.required:
            raise errors.mutability(f"{attr.name} is required and cannot be removed.")

    def _sub(self, target: Resolved, current: Any, value: Any) -> None:
        attr, sub = target.attr, target.sub
        if attr.multi:
            raise errors.invalid_path(
                f"{attr.name}.{sub.name} needs a value filter, "
                f'e.g. {attr.name}[type eq "work"].{sub.name}.'
            )
        held = dict(current or {})
        coerced = None if self.op == "remove" else coerce(sub, value, parent=attr)
        if coerced is None:
            held.pop(sub.name, None)
        else:
            held[sub.name] = coerced
        self._store(target, held)

    def _filtered(self, target: Resolved, path: PatchPath, current: Any, value: Any) -> None:
        attr = target.attr
        if not (attr.multi and attr.is_complex):
            raise errors.invalid_path(f"{attr.name} is not multi-valued: drop the value filter.")
        inner = bind(self.resource, path.filter, within=target)
        sub = None
        if path.sub is not None:
            sub = attr.child(path.sub)
            if sub is None or sub.read_only:
                raise errors.invalid_path(
                    f"{path.sub} is not a writable sub-attribute of {attr.name}."
                )
        elements = [dict(e) for e in current or []]
        hits = [i for i, e in enumerate(elements) if element_matches(e, inner)]
        if self.op == "remove":
            if sub is None:
                elements = [e for i, e in enumerate(elements) if i not in hits]
            else:
                for i in hits:
                    elements[i].pop(sub.name, None)
            self._store(target, [e for e in elements if e])
            return
        if not hits:
            seed = eq_assertions(inner)
            if seed is None:
                raise errors.no_target(f"No value of {attr.name} matches {self.path!r}.")
            elements.append(coerce(attr, seed, element=True) or {})
            hits = [len(elements) - 1]
        for i in hits:
            if sub is not None:
                coerced = coerce(sub, value, parent=attr)
                if coerced is None:
                    elements[i].pop(sub.name, None)
                else:
                    elements[i][sub.name] = coerced
            else:
                replacement = coerce(attr, value, element=True) or {}
                elements[i] = (
                    replacement if self.op == "replace" else {**elements[i], **replacement}
                )
        primaries = [elements[i] for i in hits if elements[i].get("primary") is True]
        self._store(target, _one_primary([e for e in elements if e], primaries))


def _same(attr: Attr, new: Any, held: Any) -> bool:
    """Whether adding ``new`` would duplicate ``held`` (every sub-attribute it gives agrees)."""
    if not attr.is_complex:
        return new == held
    return all(held.get(k) == v for k, v in new.items() if k != "primary")


def _without(attr: Attr, current: list, remove: list) -> list:
    return [h for h in current if not any(_same(attr, r, h) for r in remove)]


def _one_primary(values: list, primaries: list) -> list:
    """A value just made primary takes the flag from the others (RFC 7644 section 3.5.2)."""
    if not primaries:
        return values
    keep = primaries[-1]
    for value in values:
        if value is not keep and value.get("primary") is True:
            value["primary"] = False
    return values
