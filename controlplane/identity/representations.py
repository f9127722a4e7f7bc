"""SCIM representations of users and approver groups (RFC 7643), and their versions (ETags).

Takes rows and already-read relations; reads nothing itself. The version is a digest of the
representation without ``meta`` and with relative references, so it changes exactly when what a
client sees changes (group memberships included) and not with the host name used to reach us.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from controlplane.core.canonical import canonical_json, sha256_hex
from controlplane.identity.models import ApproverGroup, ScimUser
from controlplane.identity.scim.schema import GROUP, USER


def _utc(value: datetime) -> str:
    """xsd:dateTime in UTC with microseconds, so an ``eq`` filter can match it exactly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version(body: dict[str, Any]) -> str:
    """A weak ETag over a representation rendered with ``base=""`` and without ``meta``."""
    return f'W/"{sha256_hex(canonical_json(body))[:24]}"'


def user_body(
    scim_user: ScimUser, groups: Iterable[tuple[str, str]], *, base: str
) -> dict[str, Any]:
    """The User without ``meta``: stored attributes, plus ``groups`` (id, name) it belongs to."""
    attributes = scim_user.attributes or {}
    body: dict[str, Any] = {
        "schemas": [USER.core.id, *(e.id for e in USER.extensions if e.id in attributes)],
        "id": scim_user.id,
        **attributes,
    }
    memberships = [
        {"value": gid, "$ref": f"{base}/Groups/{gid}", "display": name, "type": "direct"}
        for gid, name in groups
    ]
    if memberships:
        body["groups"] = memberships
    return body


def group_body(group: ApproverGroup, member_ids: Iterable[str], *, base: str) -> dict[str, Any]:
    """The Group without ``meta``; members are the tenant's SCIM users in the approver group."""
    body: dict[str, Any] = {"schemas": [GROUP.core.id], "id": group.id}
    if group.external_id:
        body["externalId"] = group.external_id
    body["displayName"] = group.name
    members = [{"value": sid, "$ref": f"{base}/Users/{sid}", "type": "User"} for sid in member_ids]
    if members:
        body["members"] = members
    return body


def document(row, body, *, kind: str, base: str) -> dict[str, Any]:
    """A rendered resource with ``meta``; ``body(base)`` renders it without ``meta``."""
    endpoint = "Users" if kind == "User" else "Groups"
    return {
        **body(base),
        "meta": {
            "resourceType": kind,
            "created": _utc(row.created_at),
            "lastModified": _utc(row.updated_at),
            "location": f"{base}/{endpoint}/{row.pk}",
            "version": version(body("")),
        },
    }


def user_document(scim_user: ScimUser, groups: list[tuple[str, str]], *, base: str) -> dict:
    return document(
        scim_user, lambda b: user_body(scim_user, groups, base=b), kind="User", base=base
    )


def group_document(group: ApproverGroup, member_ids: list[str], *, base: str) -> dict:
    return document(group, lambda b: group_body(group, member_ids, base=b), kind="Group", base=base)
