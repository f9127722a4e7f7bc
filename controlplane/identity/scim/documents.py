"""Reading SCIM resource bodies into canonical documents, validating them, and projecting
responses through ``attributes``/``excludedAttributes``.

A document is a dict keyed by the schema's spelling of each attribute (names in requests are
case-insensitive, RFC 7643 section 2.1), extension attributes nested under the extension URN.
Unassigned means absent: null, empty strings, empty lists and empty complex values are dropped
(RFC 7643 section 2.5), so every attribute either has a value or is not there.
"""

from __future__ import annotations

import base64
import binascii
import copy
from datetime import datetime
from typing import Any

from controlplane.identity.scim import errors
from controlplane.identity.scim.filters import AttrRef, parse_path
from controlplane.identity.scim.schema import (
    COMMON,
    Attr,
    ForeignSchema,
    ResourceSchema,
    UnknownAttribute,
    resolve,
    whole_extension,
)

MAX_STRING = 2048
MAX_VALUES = 100
_IGNORED_MEMBERS = ("schemas", "id", "meta")


def _label(attr: Attr, parent: Attr | None) -> str:
    return f"{parent.name}.{attr.name}" if parent else attr.name


def coerce(attr: Attr, value: Any, *, parent: Attr | None = None, element: bool = False) -> Any:
    """``value`` as ``attr`` holds it, or None when unassigned; 400 invalidValue when it cannot be.

    Lenient where identity providers are known to deviate and the meaning is unambiguous:
    booleans as "True"/"False" strings, a single value for a multi-valued attribute, a bare
    string for a complex attribute with a ``value`` sub-attribute (Entra's ``manager``).
    """
    label = _label(attr, parent)
    if value is None:
        return None
    if attr.multi and not element:
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_VALUES:
            raise errors.invalid_value(f"{label} holds at most {MAX_VALUES} values.")
        out = [v for v in (coerce(attr, item, parent=parent, element=True) for item in items) if v]
        return out or None
    if attr.is_complex:
        if not isinstance(value, dict):
            if attr.child("value") is not None and isinstance(value, str | int | float | bool):
                value = {"value": value}
            else:
                raise errors.invalid_value(f"{label} must be an object of sub-attributes.")
        out = {}
        for key, item in value.items():
            child = attr.child(key) if isinstance(key, str) else None
            if child is None or child.read_only:
                continue  # undefined or server-computed sub-attributes are not stored
            coerced = coerce(child, item, parent=attr)
            if coerced is not None:
                out[child.name] = coerced
        return out or None
    return _simple(attr, value, label)


def _simple(attr: Attr, value: Any, label: str) -> Any:
    if attr.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise errors.invalid_value(f"{label} must be true or false, not {value!r}.")
    if not isinstance(value, str):
        raise errors.invalid_value(f"{label} must be a string, not {type(value).__name__}.")
    if value == "":
        return None  # IdPs send "" for "no value": it is stored as unassigned
    if len(value) > MAX_STRING:
        raise errors.invalid_value(f"{label} is longer than {MAX_STRING} characters.")
    if "\x00" in value:
        raise errors.invalid_value(f"{label} contains a NUL character.")
    if attr.type == "binary":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise errors.invalid_value(f"{label} must be base64.") from None
    if attr.type == "dateTime":
        parse_datetime(value, label)
    return value


def parse_datetime(value: Any, label: str) -> datetime:
    """An xsd:dateTime with a time zone (``2026-01-02T03:04:05Z``)."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise errors.invalid_value(
            f"{label} must be a date-time with a zone, e.g. 2026-01-31T12:00:00Z."
        )
    return parsed


def _set(doc: dict, ext_id: str | None, name: str, value: Any) -> None:
    container = doc.setdefault(ext_id, {}) if ext_id else doc
    if value is None:
        container.pop(name, None)
    else:
        container[name] = value
    if ext_id and not doc[ext_id]:
        del doc[ext_id]


def read_resource(resource: ResourceSchema, body: Any) -> dict:
    """The document a POST/PUT body describes (read-only members and unknown names ignored)."""
    if not isinstance(body, dict):
        raise errors.invalid_syntax("The body must be a JSON object describing the resource.")
    schemas = body.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas)
    ):
        raise errors.invalid_syntax("schemas must be a list of schema URIs.")
    doc: dict[str, Any] = {}
    for key, value in body.items():
        if not isinstance(key, str) or key.lower() in _IGNORED_MEMBERS:
            continue
        ext = resource.extension(key)
        if ext is not None:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise errors.invalid_value(f"{ext.id} must be an object.")
            for name, item in value.items():
                attr = ext.attr(name) if isinstance(name, str) else None
                if attr is not None and not attr.read_only:
                    _set(doc, ext.id, attr.name, coerce(attr, item))
            continue
        uri, _, name = key.rpartition(":") if ":" in key else (None, "", key)
        try:
            found = resolve(resource, uri or None, name, None)
        except (UnknownAttribute, ForeignSchema):
            continue  # attributes Tollgate does not define are ignored (documented)
        if found.attr.read_only:
            continue
        _set(doc, found.ext.id if found.ext else None, found.attr.name, coerce(found.attr, value))
    validate(resource, doc)
    return doc


def validate(resource: ResourceSchema, doc: dict) -> None:
    """Required attributes present; ``primary: true`` at most once per multi-valued attribute."""
    for attr in resource.core.attrs:
        if attr.required and not doc.get(attr.name):
            raise errors.invalid_value(f"{attr.name} is required.")
    for schema in (resource.core, *resource.extensions):
        container = doc if schema is resource.core else doc.get(schema.id, {})
        for attr in schema.attrs:
            values = container.get(attr.name)
            primaries = (
                sum(1 for v in values if v.get("primary") is True)
                if attr.multi and attr.child("primary") and isinstance(values, list)
                else 0
            )
            if primaries > 1:
                raise errors.invalid_value(
                    f"At most one of {attr.name} may be primary (RFC 7643 section 2.4)."
                )


# --- attributes / excludedAttributes -----------------------------------------------------------


def _selection(
    resource: ResourceSchema, names: list[str]
) -> list[tuple[str | None, str, str | None]]:
    """(extension id or None, attribute, sub-attribute) for each known name; unknown are skipped."""
    out = []
    for text in names:
        try:
            path = parse_path(text)
        except errors.ScimError:
            raise errors.invalid_value(f"{text!r} is not an attribute name.") from None
        if path.filter is not None:
            raise errors.invalid_value(f"{text!r}: attribute lists take names, not filters.")
        ref: AttrRef = path.attr
        ext = whole_extension(resource, ref.uri, ref.name)
        if ext is not None:
            out.append((ext.id, "", None))
            continue
        try:
            found = resolve(resource, ref.uri, ref.name, ref.sub)
        except (UnknownAttribute, ForeignSchema):
            continue
        out.append(
            (
                found.ext.id if found.ext else None,
                found.attr.name,
                found.sub.name if found.sub else None,
            )
        )
    return out


_ALWAYS = {a.name for a in COMMON if a.returned == "always"} | {"schemas"}


def project(
    resource: ResourceSchema,
    doc: dict,
    *,
    attributes: list[str] | None = None,
    excluded: list[str] | None = None,
) -> dict:
    """Apply RFC 7644 section 3.4.2.5 to a rendered resource (``id`` and ``schemas`` always stay)."""
    if attributes:
        out: dict[str, Any] = {k: v for k, v in doc.items() if k in _ALWAYS}
        for ext_id, name, sub in _selection(resource, attributes):
            source = doc.get(ext_id, {}) if ext_id else doc
            target = out.setdefault(ext_id, {}) if ext_id else out
            if not name:
                if ext_id in doc:
                    out[ext_id] = copy.deepcopy(doc[ext_id])
                continue
            if name not in source:
                continue
            value = source[name]
            if sub is None:
                target[name] = copy.deepcopy(value)
            elif isinstance(value, list):
                held = target.setdefault(name, [{} for _ in value])
                for kept, item in zip(held, value, strict=True):
                    if sub in item:
                        kept[sub] = item[sub]
            elif isinstance(value, dict) and sub in value:
                target.setdefault(name, {})[sub] = value[sub]
        _drop_empty(out)
    else:
        out = copy.deepcopy(doc)
    for ext_id, name, sub in _selection(resource, excluded or []):
        source = out.get(ext_id) if ext_id else out
        if source is None or name in _ALWAYS:
            continue
        if not name:
            out.pop(ext_id, None)
        elif sub is None:
            source.pop(name, None)
        elif isinstance(source.get(name), list):
            for item in source[name]:
                item.pop(sub, None)
        elif isinstance(source.get(name), dict):
            source[name].pop(sub, None)
        if ext_id and ext_id in out and not out[ext_id]:
            del out[ext_id]
    out["schemas"] = [s for s in doc.get("schemas", []) if s == resource.core.id or s in out]
    return out


def _drop_empty(container: dict) -> None:
    """Remove what a sub-attribute selection left empty (unassigned is absent)."""
    for key in list(container):
        value = container[key]
        if isinstance(value, list):
            value[:] = [v for v in value if v != {}]
        elif isinstance(value, dict) and key != "meta":
            _drop_empty(value)
        if value in ({}, []):
            del container[key]


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag[:2] in ("W/", "w/") else tag


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-Match/If-None-Match header names ``etag`` (weak comparison, ``*`` matches)."""
    if header is None:
        return False
    wanted = [t for t in (part.strip() for part in header.split(",")) if t]
    return "*" in wanted or _opaque(etag) in {_opaque(t) for t in wanted}


def precondition(if_match: str | None, etag: str) -> None:
    """RFC 7644 section 3.14: a write with If-Match proceeds only on the current version."""
    if if_match is not None and not etag_matches(if_match, etag):
        raise errors.ScimError(
            412,
            f"The resource changed (its version is {etag}); read it again and retry the change.",
        )
