"""The resources Tollgate serves over SCIM, described once (RFC 7643).

These definitions drive everything else: the ``/Schemas`` documents identity providers read,
how request bodies are read (case-insensitive names, types, mutability), PATCH, filters and
``attributes``/``excludedAttributes``. An attribute absent here is not stored; ``password``
is left out on purpose (people do not sign in with IdP-pushed passwords).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django_scim.constants import SchemaURI

ENTERPRISE_USER = SchemaURI.ENTERPRISE_USER
LIST_RESPONSE = SchemaURI.LIST_RESPONSE
PATCH_OP = SchemaURI.PATCH_OP
SEARCH_REQUEST = SchemaURI.SERACH_REQUEST  # (sic) django-scim2's spelling
ERROR = SchemaURI.ERROR


@dataclass(frozen=True)
class Attr:
    """One attribute definition as RFC 7643 section 7 describes it."""

    name: str
    type: str = "string"
    multi: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    canonical: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub: tuple[Attr, ...] = ()
    description: str = ""

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    @property
    def read_only(self) -> bool:
        return self.mutability == "readOnly"

    def child(self, name: str) -> Attr | None:
        """The sub-attribute called ``name`` (attribute names are case-insensitive)."""
        folded = name.lower()
        return next((a for a in self.sub if a.name.lower() == folded), None)

    def to_scim(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical:
            body["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            body["referenceTypes"] = list(self.reference_types)
        if self.sub:
            body["subAttributes"] = [a.to_scim() for a in self.sub]
        return body


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attrs: tuple[Attr, ...]

    def attr(self, name: str) -> Attr | None:
        folded = name.lower()
        return next((a for a in self.attrs if a.name.lower() == folded), None)

    def to_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attrs],
            "meta": {"resourceType": "Schema", "location": location},
        }


@dataclass(frozen=True)
class ResourceSchema:
    """A resource type: its endpoint, core schema and extensions."""

    name: str
    endpoint: str
    description: str
    core: Schema
    extensions: tuple[Schema, ...] = field(default=())

    def schema(self, urn: str) -> Schema | None:
        folded = urn.lower()
        return next((s for s in (self.core, *self.extensions) if s.id.lower() == folded), None)

    def extension(self, urn: str) -> Schema | None:
        folded = urn.lower()
        return next((s for s in self.extensions if s.id.lower() == folded), None)

    def to_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
            "schemaExtensions": [{"schema": s.id, "required": False} for s in self.extensions],
            "meta": {"resourceType": "ResourceType", "location": location},
        }


def _s(name: str, **kw: Any) -> Attr:
    return Attr(name=name, **kw)


def _multi(name: str, *, value_type: str = "string", canonical=(), refs=(), **kw) -> Attr:
    """The usual value/display/type/primary multi-valued complex attribute."""
    return Attr(
        name=name,
        type="complex",
        multi=True,
        sub=(
            _s("value", type=value_type, reference_types=refs),
            _s("display"),
            _s("type", canonical=canonical),
            _s("primary", type="boolean"),
        ),
        **kw,
    )


# Common attributes (RFC 7643 section 3.1): every resource has them; no schema publishes them.
ID = _s("id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server")
EXTERNAL_ID = _s("externalId", case_exact=True)
META = Attr(
    name="meta",
    type="complex",
    mutability="readOnly",
    sub=(
        _s("resourceType", case_exact=True, mutability="readOnly"),
        _s("created", type="dateTime", mutability="readOnly"),
        _s("lastModified", type="dateTime", mutability="readOnly"),
        _s("location", type="reference", mutability="readOnly", reference_types=("uri",)),
        _s("version", case_exact=True, mutability="readOnly"),
    ),
)
COMMON = (ID, EXTERNAL_ID, META)

USER_CORE = Schema(
    id=SchemaURI.USER,
    name="User",
    description="A person with access to a Tollgate tenant.",
    attrs=(
        _s(
            "userName",
            required=True,
            uniqueness="server",
            description="Unique (case-insensitively) within the tenant; usually the sign-in email.",
        ),
        Attr(
            name="name",
            type="complex",
            sub=tuple(
                _s(n)
                for n in (
                    "formatted",
                    "familyName",
                    "givenName",
                    "middleName",
                    "honorificPrefix",
                    "honorificSuffix",
                )
            ),
        ),
        _s("displayName"),
        _s("nickName"),
        _s("profileUrl", type="reference", reference_types=("external",)),
        _s("title"),
        _s("userType"),
        _s("preferredLanguage"),
        _s("locale"),
        _s("timezone"),
        _s(
            "active",
            type="boolean",
            description="false deprovisions the person in this tenant (membership, API keys, "
            "pending votes, dashboard sessions); true restores the membership.",
        ),
        _multi("emails", canonical=("work", "home", "other")),
        _multi("phoneNumbers", canonical=("work", "home", "mobile", "fax", "pager", "other")),
        _multi("ims", canonical=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        _multi(
            "photos", value_type="reference", refs=("external",), canonical=("photo", "thumbnail")
        ),
        Attr(
            name="addresses",
            type="complex",
            multi=True,
            sub=(
                _s("formatted"),
                _s("streetAddress"),
                _s("locality"),
                _s("region"),
                _s("postalCode"),
                _s("country"),
                _s("type", canonical=("work", "home", "other")),
                _s("primary", type="boolean"),
            ),
        ),
        Attr(
            name="groups",
            type="complex",
            multi=True,
            mutability="readOnly",
            description="The approver groups the person belongs to (change them through Groups).",
            sub=(
                _s("value", case_exact=True, mutability="readOnly"),
                _s("$ref", type="reference", reference_types=("Group",), mutability="readOnly"),
                _s("display", mutability="readOnly"),
                _s("type", canonical=("direct",), mutability="readOnly"),
            ),
        ),
        _multi("entitlements"),
        _multi("roles"),
        _multi("x509Certificates", value_type="binary"),
    ),
)

ENTERPRISE_USER_SCHEMA = Schema(
    id=ENTERPRISE_USER,
    name="EnterpriseUser",
    description="Enterprise User (stored and returned; not used by Tollgate's decisions).",
    attrs=(
        _s("employeeNumber"),
        _s("costCenter"),
        _s("organization"),
        _s("division"),
        _s("department"),
        Attr(
            name="manager",
            type="complex",
            sub=(
                _s("value", case_exact=True),
                _s("$ref", type="reference", reference_types=("User",)),
                _s("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

GROUP_CORE = Schema(
    id=SchemaURI.GROUP,
    name="Group",
    description="An approver group: approval routing in the policy refers to it by displayName.",
    attrs=(
        _s(
            "displayName",
            required=True,
            uniqueness="server",
            description="The name approval routing refers to (policy `approvers.groups`).",
        ),
        Attr(
            name="members",
            type="complex",
            multi=True,
            description="Users of this tenant (nested groups are not supported).",
            sub=(
                _s("value", case_exact=True, mutability="immutable"),
                _s("$ref", type="reference", reference_types=("User",), mutability="immutable"),
                _s("type", canonical=("User",), mutability="immutable"),
            ),
        ),
    ),
)

USER = ResourceSchema(
    name="User",
    endpoint="/Users",
    description="People of the tenant (memberships).",
    core=USER_CORE,
    extensions=(ENTERPRISE_USER_SCHEMA,),
)
GROUP = ResourceSchema(
    name="Group",
    endpoint="/Groups",
    description="Approver groups of the tenant.",
    core=GROUP_CORE,
)
RESOURCES = (USER, GROUP)


@dataclass(frozen=True)
class Resolved:
    """Where an attribute reference points: ``ext`` is the extension holding it (None: core or
    common attribute), ``attr`` the attribute, ``sub`` the sub-attribute if one was named."""

    ext: Schema | None
    attr: Attr
    sub: Attr | None = None


class UnknownAttribute(Exception):
    """The reference names nothing this resource type defines."""


class ForeignSchema(Exception):
    """The reference is qualified by a schema URN this resource type does not use (an IdP's own
    extension): callers skip such attributes instead of failing the whole request."""


def resolve(resource: ResourceSchema, uri: str | None, name: str, sub: str | None) -> Resolved:
    """Resolve ``[uri:]name[.sub]`` (case-insensitive) or raise UnknownAttribute/ForeignSchema."""
    ext: Schema | None = None
    if uri is not None:
        schema = resource.schema(uri)
        if schema is None:
            raise ForeignSchema(f"{uri}:{name}")
        ext = schema if schema is not resource.core else None
    attr = (ext.attr(name) if ext else resource.core.attr(name)) or (
        None if ext else next((a for a in COMMON if a.name.lower() == name.lower()), None)
    )
    if attr is None:
        raise UnknownAttribute(f"{uri}:{name}" if uri else name)
    if sub is None:
        return Resolved(ext, attr)
    child = attr.child(sub)
    if child is None:
        raise UnknownAttribute(f"{attr.name}.{sub}")
    return Resolved(ext, attr, child)


def whole_extension(resource: ResourceSchema, uri: str | None, name: str) -> Schema | None:
    """The extension a reference names as a whole (``urn:...:enterprise:2.0:User``), if any."""
    if uri is None:
        return None
    return resource.extension(f"{uri}:{name}")
