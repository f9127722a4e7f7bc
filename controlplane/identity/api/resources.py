"""What the SCIM views need per resource type: the scoped query, rendering and the services.

Reads go through ``identity.selectors`` (tenant scoping in one place); writes through
``identity.services``; representations through ``identity.representations``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from controlplane.identity import representations, scim_query, selectors
from controlplane.identity.scim import errors
from controlplane.identity.scim.documents import project
from controlplane.identity.scim.evaluate import bind_filter
from controlplane.identity.scim.filters import parse_path
from controlplane.identity.scim.schema import (
    GROUP,
    USER,
    ForeignSchema,
    ResourceSchema,
    UnknownAttribute,
    resolve,
)
from controlplane.identity.services import groups as group_services
from controlplane.identity.services import users as user_services

MAX_RESULTS = 200


@dataclass(frozen=True)
class Query:
    """The list parameters of RFC 7644 section 3.4.2 (query string or SearchRequest)."""

    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    count: int = MAX_RESULTS
    attributes: list[str] | None = None
    excluded: list[str] | None = None


@dataclass(frozen=True)
class Kind:
    schema: ResourceSchema
    rows: Callable[[str], QuerySet]
    render_rows: Callable[[str, list, str], list[dict]]
    create: Callable[..., Any]
    replace: Callable[..., Any]
    patch: Callable[..., Any]
    delete: Callable[..., Any]

    def queryset(self, tenant_id: str, query: Query) -> QuerySet:
        rows = self.rows(tenant_id)
        if query.filter is not None:
            rows = rows.filter(
                scim_query.condition(self.schema, bind_filter(self.schema, query.filter))
            )
        target = None
        if query.sort_by:
            path = parse_path(query.sort_by)
            if path.filter is not None:
                raise errors.invalid_value("sortBy takes an attribute name, not a filter.")
            try:
                target = resolve(self.schema, path.attr.uri, path.attr.name, path.attr.sub)
            except (UnknownAttribute, ForeignSchema):
                raise errors.invalid_value(
                    f"sortBy {query.sort_by!r} is not an attribute."
                ) from None
        return rows.order_by(*scim_query.ordering(self.schema, target, query.descending))

    def render(
        self, tenant_id: str, rows: list, base: str, query: Query | None = None
    ) -> list[dict]:
        documents = self.render_rows(tenant_id, rows, base)
        if query is None:
            return documents
        return [
            project(self.schema, d, attributes=query.attributes, excluded=query.excluded)
            for d in documents
        ]

    def one(self, tenant_id: str, ident: str, base: str) -> dict:
        row = self.rows(tenant_id).filter(pk=ident).first()
        if row is None:
            raise errors.not_found(self.schema.name, ident)
        return self.render_rows(tenant_id, [row], base)[0]


def _render_users(tenant_id: str, rows: list, base: str) -> list[dict]:
    groups = selectors.groups_of_users(tenant_id=tenant_id, user_ids=[r.user_id for r in rows])
    return [representations.user_document(r, groups.get(r.user_id, []), base=base) for r in rows]


def _render_groups(tenant_id: str, rows: list, base: str) -> list[dict]:
    members = selectors.scim_members_of_groups(tenant_id=tenant_id, group_ids=[r.pk for r in rows])
    return [representations.group_document(r, members.get(r.pk, []), base=base) for r in rows]


USERS = Kind(
    schema=USER,
    rows=lambda tenant_id: selectors.scim_users(tenant_id=tenant_id),
    render_rows=_render_users,
    create=user_services.scim_user_create,
    replace=user_services.scim_user_replace,
    patch=user_services.scim_user_patch,
    delete=user_services.scim_user_delete,
)
GROUPS = Kind(
    schema=GROUP,
    rows=lambda tenant_id: selectors.scim_groups(tenant_id=tenant_id),
    render_rows=_render_groups,
    create=group_services.scim_group_create,
    replace=group_services.scim_group_replace,
    patch=group_services.scim_group_patch,
    delete=group_services.scim_group_delete,
)
KINDS = {"Users": USERS, "Groups": GROUPS}


def list_response(resources: list[dict], *, total: int, start_index: int) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def search(tenant_id: str, kinds: list[Kind], query: Query, base: str) -> dict:
    """One page across ``kinds`` (Users then Groups at the root), filtered and projected.

    At the root, a filter naming attributes one type lacks selects nothing of that type; it is
    an error only when no type defines them.
    """
    querysets, failures = [], []
    for kind in kinds:
        try:
            querysets.append((kind, kind.queryset(tenant_id, query)))
        except errors.ScimError as exc:
            if len(kinds) == 1 or exc.scim_type != "invalidFilter":
                raise
            failures.append(exc)
    if not querysets and failures:
        raise failures[0]
    totals = [(kind, rows, rows.count()) for kind, rows in querysets]
    total = sum(count for _, _, count in totals)
    skip, room, page = query.start_index - 1, query.count, []
    for kind, rows, count in totals:
        if room <= 0:
            break
        if skip >= count:
            skip -= count
            continue
        chunk = list(rows[skip : skip + room])
        skip = 0
        room -= len(chunk)
        page.extend(kind.render(tenant_id, chunk, base, query))
    return list_response(page, total=total, start_index=query.start_index)
