"""Every client error path renders RFC 9457 problem+json with a stable code; none is a 500."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db


def test_malformed_json(client_a):
    response = client_a.generic(
        "POST", "/api/v1/projects", '{"slug": "x",', content_type="application/json"
    )
    assert_problem(response, 400, "MALFORMED_JSON")


def test_nan_is_not_json(client_a):
    response = client_a.generic(
        "POST", "/api/v1/projects", '{"slug": NaN}', content_type="application/json"
    )
    assert_problem(response, 400, "MALFORMED_JSON")


def test_wrong_content_type(client_a):
    response = client_a.generic(
        "POST", "/api/v1/projects", "slug=x", content_type="application/x-www-form-urlencoded"
    )
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_unknown_fields_are_rejected(client_a):
    response = client_a.post("/api/v1/projects", {"slug": "x", "colour": "red"}, format="json")
    body = assert_problem(response, 400, "VALIDATION_FAILED")
    assert body["errors"][0]["field"] == "colour"


def test_a_json_array_body_is_a_validation_error(client_a):
    response = client_a.generic(
        "POST", "/api/v1/projects", "[1, 2]", content_type="application/json"
    )
    assert_problem(response, 400, "VALIDATION_FAILED")


@override_settings(MAX_REQUEST_BODY_BYTES=1024)
def test_oversized_body(client_a):
    response = client_a.generic(
        "POST",
        "/api/v1/projects",
        '{"slug": "' + "x" * 2000 + '"}',
        content_type="application/json",
    )
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


def test_unknown_route_is_404_problem(client_a):
    assert_problem(client_a.get("/api/v1/nope"), 404, "NOT_FOUND")


def test_method_not_allowed(client_a):
    response = client_a.put("/api/v1/tenant", {}, format="json")
    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response["Allow"]


def test_unknown_object_is_404(client_a):
    assert_problem(client_a.get("/api/v1/projects/prj_doesnotexist"), 404, "NOT_FOUND")


def test_odd_accept_header_still_gets_json(client_a):
    response = client_a.get("/api/v1/tenant", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response.json()["slug"] == "acme"


def test_problem_carries_request_id(client_a):
    response = client_a.get("/api/v1/nope", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert assert_problem(response, 404)["request_id"] == "abc-123"


def test_hostile_request_id_is_replaced(client_a):
    response = client_a.get("/api/v1/tenant", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert (
        response["X-Request-ID"] != "bad id\nwith newline" and len(response["X-Request-ID"]) == 32
    )


def test_bad_content_length_header(client_a):
    response = client_a.generic(
        "POST", "/api/v1/projects", "{}", content_type="application/json", CONTENT_LENGTH="abc"
    )
    assert_problem(response, 400, "MALFORMED_REQUEST")
