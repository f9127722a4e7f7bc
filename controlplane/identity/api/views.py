"""SCIM 2.0 endpoints under /scim/v2 (RFC 7644): thin views over identity.services/selectors.

DRF views with their own authentication (the tenant's SCIM token), renderer
(``application/scim+json``) and error handling: every failure, 401 included, is a SCIM Error
body. Request bodies are read here (JSON of any content type: IdPs differ), not by DRF parsers.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions as drf
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from controlplane.core.errors import TollgateError
from controlplane.identity.api import discovery
from controlplane.identity.api.resources import (
    GROUPS,
    MAX_RESULTS,
    USERS,
    Kind,
    Query,
    list_response,
    search,
)
from controlplane.identity.auth import ScimTokenAuthentication
from controlplane.identity.scim import errors
from controlplane.identity.scim.documents import etag_matches, project, read_resource
from controlplane.identity.scim.errors import ScimError
from controlplane.identity.scim.schema import SEARCH_REQUEST

log = structlog.get_logger(__name__)
SCIM_CONTENT_TYPE = "application/scim+json"
_DOCS = "SCIM 2.0 (RFC 7644); see docs/scim.md."


class ScimRenderer(JSONRenderer):
    media_type = SCIM_CONTENT_TYPE
    format = "scim"
    charset = None


class ScimNegotiation(BaseContentNegotiation):
    """SCIM speaks one media type whatever the client accepts (IdPs send */* or application/json)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _error_for(exc: Exception, view: APIView) -> ScimError:
    if isinstance(exc, ScimError):
        return exc
    if isinstance(exc, drf.MethodNotAllowed):
        allow = ", ".join(view.allowed_methods)
        return ScimError(405, f"{exc.detail} Allowed: {allow}.", headers={"Allow": allow})
    if isinstance(exc, Http404 | drf.NotFound):
        return ScimError(404, "No such SCIM endpoint or resource.")
    if isinstance(exc, RequestDataTooBig):
        return ScimError(413, "The request body is larger than this server accepts.")
    if isinstance(exc, SuspiciousOperation):
        return ScimError(400, "The request was refused as malformed.")
    if isinstance(exc, TollgateError):
        # A rule of the product (e.g. the plan's approver limit), in a SCIM error body: the
        # stable code and how to fix it in the detail. 402 is not a SCIM status (RFC 7644
        # 3.12) and IdPs do not retry on it anyway: the operation is forbidden as it stands.
        status = 403 if exc.status_code == 402 else exc.status_code
        detail = " ".join(filter(None, [f"{exc.code}: {exc.message}", exc.remediation]))
        return ScimError(status, detail)
    if isinstance(exc, drf.APIException):
        return ScimError(exc.status_code, str(exc.detail))
    log.exception("scim_unhandled_exception", exc_type=type(exc).__name__)
    return ScimError(500, "An internal error occurred; it has been logged.")


def scim_base_url(request) -> str:
    """Absolute URL of /scim/v2 as clients reach it (TOLLGATE_PUBLIC_URL when set)."""
    public = settings.TOLLGATE_PUBLIC_URL
    return f"{public}/scim/v2" if public else request.build_absolute_uri("/scim/v2")


class ScimView(APIView):
    authentication_classes = [ScimTokenAuthentication]
    permission_classes: list = []
    renderer_classes = [ScimRenderer]
    parser_classes: list = []
    content_negotiation_class = ScimNegotiation
    throttle_classes: list = []

    def handle_exception(self, exc):
        error = _error_for(exc, self)
        set_rollback()
        return Response(
            error.to_dict(),
            status=error.status,
            headers=error.headers,
            content_type=SCIM_CONTENT_TYPE,
        )

    @property
    def tenant(self):
        return self.request.auth.tenant

    @property
    def base(self) -> str:
        return scim_base_url(self.request)

    def body(self) -> Any:
        raw = self.request.body
        if not raw.strip():
            raise errors.invalid_syntax("The request needs a JSON body.")
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise errors.invalid_syntax("The body is not valid JSON.") from None

    def query(self) -> Query:
        params = self.request.query_params
        if "filter" in params and not params["filter"].strip():
            raise errors.invalid_filter("Invalid filter: the filter is empty.")
        return _query(
            filter=params.get("filter"),
            sort_by=params.get("sortBy"),
            sort_order=params.get("sortOrder"),
            start_index=params.get("startIndex"),
            count=params.get("count"),
            attributes=params.get("attributes"),
            excluded=params.get("excludedAttributes"),
        )

    def resource(self, kind: Kind, document: dict, status: int = 200) -> Response:
        query = self.query()
        headers = {"ETag": document["meta"]["version"]}
        if status == 201:
            headers["Location"] = document["meta"]["location"]
        shown = project(kind.schema, document, attributes=query.attributes, excluded=query.excluded)
        return Response(shown, status=status, headers=headers)


def _names(value: Any, label: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] or None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value or None
    raise errors.invalid_value(f"{label} must be a comma-separated string or a list of names.")


def _integer(value: Any, label: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise errors.invalid_value(f"{label} must be an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.invalid_value(f"{label} must be an integer, not {value!r}.") from None


def _query(*, filter, sort_by, sort_order, start_index, count, attributes, excluded) -> Query:
    if filter is not None and not isinstance(filter, str):
        raise errors.invalid_filter("Invalid filter: filter must be a string.")
    if sort_by is not None and not isinstance(sort_by, str):
        raise errors.invalid_value("sortBy must be an attribute name.")
    order = (sort_order or "ascending") if isinstance(sort_order, str | None) else None
    if order is None or order.lower() not in ("ascending", "descending"):
        raise errors.invalid_value("sortOrder must be ascending or descending.")
    return Query(
        filter=filter,
        sort_by=sort_by or None,
        descending=order.lower() == "descending",
        # RFC 7644 section 3.4.2.4: below 1 means 1; a negative count means 0; we cap at the max.
        start_index=max(_integer(start_index, "startIndex", 1), 1),
        count=min(max(_integer(count, "count", MAX_RESULTS), 0), MAX_RESULTS),
        attributes=_names(attributes, "attributes"),
        excluded=_names(excluded, "excludedAttributes"),
    )


_SCHEMA = {
    "tags": ["SCIM"],
    "request": OpenApiTypes.OBJECT,
    "responses": {200: OpenApiTypes.OBJECT},
}


class ResourceListView(ScimView):
    kind: Kind = None  # type: ignore[assignment]  # set by the per-route subclasses below

    @extend_schema(**_SCHEMA, description=f"List/filter (RFC 7644 3.4.2). {_DOCS}")
    def get(self, request):
        return Response(search(self.tenant.id, [self.kind], self.query(), self.base))

    @extend_schema(**{**_SCHEMA, "responses": {201: OpenApiTypes.OBJECT}}, description=_DOCS)
    def post(self, request):
        row = self.kind.create(tenant=self.tenant, doc=read_resource(self.kind.schema, self.body()))
        return self.resource(self.kind, self.kind.render(self.tenant.id, [row], self.base)[0], 201)


class ResourceDetailView(ScimView):
    kind: Kind = None  # type: ignore[assignment]  # set by the per-route subclasses below

    @extend_schema(**_SCHEMA, description=f"Read one; If-None-Match answers 304. {_DOCS}")
    def get(self, request, ident: str):
        document = self.kind.one(self.tenant.id, ident, self.base)
        if etag_matches(request.headers.get("If-None-Match"), document["meta"]["version"]):
            return Response(status=304, headers={"ETag": document["meta"]["version"]})
        return self.resource(self.kind, document)

    def _after(self, row) -> Response:
        return self.resource(self.kind, self.kind.render(self.tenant.id, [row], self.base)[0])

    @extend_schema(**_SCHEMA, description=f"Replace (PUT); If-Match honoured. {_DOCS}")
    def put(self, request, ident: str):
        row = self.kind.replace(
            tenant=self.tenant,
            **{_KEY[self.kind.schema.name]: ident},
            doc=read_resource(self.kind.schema, self.body()),
            if_match=request.headers.get("If-Match"),
        )
        return self._after(row)

    @extend_schema(**_SCHEMA, description=f"PATCH (RFC 7644 3.5.2); If-Match honoured. {_DOCS}")
    def patch(self, request, ident: str):
        row = self.kind.patch(
            tenant=self.tenant,
            **{_KEY[self.kind.schema.name]: ident},
            body=self.body(),
            if_match=request.headers.get("If-Match"),
        )
        return self._after(row)

    @extend_schema(**{**_SCHEMA, "responses": {204: None}}, description=_DOCS)
    def delete(self, request, ident: str):
        self.kind.delete(
            tenant=self.tenant,
            **{_KEY[self.kind.schema.name]: ident},
            if_match=request.headers.get("If-Match"),
        )
        return Response(status=204)


_KEY = {"User": "scim_id", "Group": "group_id"}


class SearchView(ScimView):
    """POST .search (RFC 7644 3.4.3) on one resource type, or on all of them at the root."""

    kinds: list[Kind] = [USERS, GROUPS]

    @extend_schema(**_SCHEMA, description=f"Search with a SearchRequest body. {_DOCS}")
    def post(self, request):
        body = self.body()
        if not isinstance(body, dict):
            raise errors.invalid_syntax("The body must be a SearchRequest object.")
        members = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
        schemas = members.get("schemas")
        if schemas is not None and SEARCH_REQUEST not in (
            schemas if isinstance(schemas, list) else []
        ):
            raise errors.invalid_syntax(f"schemas must be [{SEARCH_REQUEST!r}].")
        query = _query(
            filter=members.get("filter"),
            sort_by=members.get("sortby"),
            sort_order=members.get("sortorder"),
            start_index=members.get("startindex"),
            count=members.get("count"),
            attributes=members.get("attributes"),
            excluded=members.get("excludedattributes"),
        )
        return Response(search(self.tenant.id, self.kinds, query, self.base), status=200)


class _DiscoveryView(ScimView):
    def refuse_filter(self) -> None:
        if "filter" in self.request.query_params:
            raise ScimError(403, "Discovery endpoints do not take a filter (RFC 7644 section 4).")


class ServiceProviderConfigView(_DiscoveryView):
    @extend_schema(**_SCHEMA, description=_DOCS)
    def get(self, request):
        self.refuse_filter()
        docs = f"{settings.TOLLGATE_PUBLIC_URL}/docs/scim" if settings.TOLLGATE_PUBLIC_URL else None
        document = discovery.service_provider_config(
            self.base, docs or "https://www.rfc-editor.org/rfc/rfc7644"
        )
        return Response(document)


class _CollectionView(_DiscoveryView):
    """A discovery list (RFC 7644 ListResponse); each subclass defines ``documents()``."""

    @extend_schema(**_SCHEMA, description=_DOCS)
    def get(self, request, ident: str | None = None):
        self.refuse_filter()
        documents = self.documents()
        if ident is None:
            return Response(list_response(documents, total=len(documents), start_index=1))
        found = next((d for d in documents if d["id"].lower() == ident.lower()), None)
        if found is None:
            raise ScimError(404, f"No {self.label} {ident!r}.")
        return Response(found)


class ResourceTypesView(_CollectionView):
    label = "resource type"

    def documents(self) -> list[dict]:
        return discovery.resource_types(self.base)


class SchemasView(_CollectionView):
    label = "schema"

    def documents(self) -> list[dict]:
        return discovery.schemas(self.base)


def _ids(**operations: str):
    """Name each method's OpenAPI operation (the generic views serve several routes)."""
    return extend_schema_view(
        **{method: extend_schema(operation_id=op) for method, op in operations.items()}
    )


# One class per route, so every OpenAPI operation has its own id.
UsersView = _ids(get="scim_users_list", post="scim_users_create")(
    type("UsersView", (ResourceListView,), {"kind": USERS})
)
UserView = _ids(
    get="scim_users_retrieve",
    put="scim_users_replace",
    patch="scim_users_patch",
    delete="scim_users_delete",
)(type("UserView", (ResourceDetailView,), {"kind": USERS}))
GroupsView = _ids(get="scim_groups_list", post="scim_groups_create")(
    type("GroupsView", (ResourceListView,), {"kind": GROUPS})
)
GroupView = _ids(
    get="scim_groups_retrieve",
    put="scim_groups_replace",
    patch="scim_groups_patch",
    delete="scim_groups_delete",
)(type("GroupView", (ResourceDetailView,), {"kind": GROUPS}))
RootSearchView = _ids(post="scim_search")(type("RootSearchView", (SearchView,), {}))
UsersSearchView = _ids(post="scim_users_search")(
    type("UsersSearchView", (SearchView,), {"kinds": [USERS]})
)
GroupsSearchView = _ids(post="scim_groups_search")(
    type("GroupsSearchView", (SearchView,), {"kinds": [GROUPS]})
)
ResourceTypeListView = _ids(get="scim_resource_types_list")(
    type("ResourceTypeListView", (ResourceTypesView,), {})
)
ResourceTypeDetailView = _ids(get="scim_resource_types_retrieve")(
    type("ResourceTypeDetailView", (ResourceTypesView,), {})
)
SchemaListView = _ids(get="scim_schemas_list")(type("SchemaListView", (SchemasView,), {}))
SchemaDetailView = _ids(get="scim_schemas_retrieve")(type("SchemaDetailView", (SchemasView,), {}))


class BulkView(ScimView):
    @extend_schema(**_SCHEMA, description="Bulk is not supported (ServiceProviderConfig says so).")
    def post(self, request):
        raise ScimError(501, "Bulk operations are not supported; send one request per change.")


class NotFoundView(ScimView):
    """Anything else under /scim/v2: a SCIM 404 (after authentication, so nothing is revealed)."""

    schema = None  # not part of the OpenAPI document

    def _missing(self, request, *args, **kwargs):
        raise ScimError(404, f"No SCIM endpoint at {request.path}.")

    get = post = put = patch = delete = options = _missing
