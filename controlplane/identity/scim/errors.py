"""SCIM error responses (RFC 7644 section 3.12): one exception type, rendered by the SCIM views."""

from __future__ import annotations

from typing import Any

from django_scim.constants import SchemaURI
from django_scim.exceptions import SCIMException


class ScimError(SCIMException):
    """A SCIM failure: HTTP ``status``, optional ``scimType`` and a ``detail`` that says how to fix it.

    Builds on django-scim2's exception; the body follows RFC 7644 exactly (status as a string),
    because identity providers and ``scim2-models`` refuse any member the RFC does not define.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail, status=status, scim_type=scim_type)
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [SchemaURI.ERROR],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidPath")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="invalidSyntax")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="mutability")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, scim_type="noTarget")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, scim_type="uniqueness")


def not_found(kind: str, ident: str) -> ScimError:
    return ScimError(
        404,
        f"No {kind} with id {ident!r} in this tenant. List /{kind}s with a filter to find its id.",
    )
