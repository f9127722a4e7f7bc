"""Shared steps for SCIM tests: a tenant's token, a client speaking SCIM, and the WSGI app."""

from __future__ import annotations

import contextlib

from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from rest_framework.test import APIClient

from controlplane.identity.services.tokens import scim_token_issue

SCIM = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_token(tenant) -> str:
    return scim_token_issue(tenant=tenant, name="test idp")[1]


class ScimClient:
    """A Django test client that speaks SCIM JSON with a tenant's bearer token."""

    def __init__(self, token: str) -> None:
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def _send(self, method: str, path: str, body=None, **headers):
        import json

        kwargs = {}
        if body is not None:
            kwargs = {"data": json.dumps(body), "content_type": SCIM}
        return getattr(self.client, method)(f"/scim/v2{path}", **kwargs, **headers)

    def get(self, path, **headers):
        return self._send("get", path, **headers)

    def post(self, path, body, **headers):
        return self._send("post", path, body, **headers)

    def put(self, path, body, **headers):
        return self._send("put", path, body, **headers)

    def patch(self, path, body, **headers):
        return self._send("patch", path, body, **headers)

    def delete(self, path, **headers):
        return self._send("delete", path, **headers)


def patch_op(*operations) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def assert_scim_error(response, status: int, scim_type: str | None = None) -> dict:
    """An RFC 7644 section 3.12 error: SCIM media type, Error schema, status as a string."""
    assert response.status_code == status, (response.status_code, response.content[:800])
    assert response["Content-Type"].startswith(SCIM), response["Content-Type"]
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(status), body
    assert body["detail"], body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


@contextlib.contextmanager
def wsgi_app():
    """The project's WSGI application, called in-process inside the test's transaction.

    Django's own test client does the same: it keeps the request signals from closing the
    connection that holds the test transaction.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
