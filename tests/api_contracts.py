"""Generic API contracts reused by every endpoint family (NetBox-style test mixins)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str | None = None) -> dict:
    """The response is RFC 9457 problem+json with the given status (and code)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith(PROBLEM), response["Content-Type"]
    body = response.json()
    for member in ("type", "title", "status", "detail", "code", "errors"):
        assert member in body, (member, body)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


@dataclass
class IsolationCase:
    """One tenant-scoped endpoint: how to make tenant A's object and how to address it."""

    name: str
    method: str
    make: Callable[[Any], Any]  # tenant -> object
    path: Callable[[Any], str]  # object -> URL path
    body: dict = field(default_factory=dict)
    ok_status: int = 200  # what tenant A's own key gets (proves the case addresses a real object)


class TenantIsolationContract:
    """For every case: tenant B's key gets 404 on tenant A's object, tenant A's key does not.

    Subclasses set ``isolation_cases``; ``tests/conftest.py`` parametrises them.
    """

    isolation_cases: list[IsolationCase] = []

    def _call(self, client, case: IsolationCase, obj):
        method = getattr(client, case.method.lower())
        if case.method.upper() in ("GET", "DELETE"):
            return method(case.path(obj))
        return method(case.path(obj), case.body, format="json")

    def test_other_tenant_gets_404(self, isolation_case, tenant, client_a, client_b):
        obj = isolation_case.make(tenant)
        response = self._call(client_b, isolation_case, obj)
        body = assert_problem(response, 404, "NOT_FOUND")
        assert obj.pk not in response.content.decode(), body
        own = self._call(client_a, isolation_case, obj)
        assert own.status_code == isolation_case.ok_status, own.content[:500]


@dataclass(frozen=True)
class Route:
    """One method of one API route, as the URLconf declares it."""

    template: str  # "/api/v1/decisions/<str:id>"
    view: type
    method: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def has_param(self) -> bool:
        return "<" in self.template


def url_patterns() -> list[tuple[str, object]]:
    """Every ``(route, callback)`` of the whole URLconf, with its full route text."""
    out: list[tuple[str, object]] = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                out.append((route, pattern.callback))

    walk(get_resolver().url_patterns, "")
    return out


def api_routes() -> list[Route]:
    """Every method of every ``/api/v1`` route, from the URLconf (walks need no list to keep)."""
    out: list[Route] = []
    for route, callback in url_patterns():
        view = getattr(callback, "view_class", None)
        if not route.startswith("api/v1/") or view is None:
            continue
        for method in view.http_method_names:
            if method not in ("options", "head", "trace") and hasattr(view, method):
                out.append(Route("/" + route, view, method.upper()))
    return sorted(set(out), key=lambda r: r.id)
