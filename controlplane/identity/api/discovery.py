"""The discovery documents (RFC 7644 section 4): ServiceProviderConfig, ResourceTypes, Schemas.

Our resource schemas come from ``identity.scim.schema``; the three schemas that describe the
discovery resources themselves are django-scim2's copies of RFC 7643 section 8.7.2.
"""

from __future__ import annotations

import copy
from typing import Any

from django_scim.schemas import ALL as DJANGO_SCIM_SCHEMAS

from controlplane.identity.api.resources import MAX_RESULTS
from controlplane.identity.scim.schema import RESOURCES

_META_SCHEMA_IDS = (
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
    "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
    "urn:ietf:params:scim:schemas:core:2.0:Schema",
)
_META_SCHEMAS = [s for s in DJANGO_SCIM_SCHEMAS if s.get("id") in _META_SCHEMA_IDS]


def service_provider_config(base: str, docs_url: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": docs_url,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The tenant's SCIM token: Authorization: Bearer tgscim_...",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [r.to_scim(f"{base}/ResourceTypes/{r.name}") for r in RESOURCES]


def schemas(base: str) -> list[dict[str, Any]]:
    ours = []
    seen = set()
    for resource in RESOURCES:
        for schema in (resource.core, *resource.extensions):
            if schema.id not in seen:
                seen.add(schema.id)
                ours.append(schema.to_scim(f"{base}/Schemas/{schema.id}"))
    for meta_schema in _META_SCHEMAS:
        document = copy.deepcopy(meta_schema)
        document["schemas"] = ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
        document["meta"] = {
            "resourceType": "Schema",
            "location": f"{base}/Schemas/{document['id']}",
        }
        ours.append(document)
    return ours
