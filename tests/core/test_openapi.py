"""The OpenAPI document generates without warnings and validates (drf-spectacular + validator)."""

from __future__ import annotations

import io

from django.core.management import call_command


def test_schema_generates_without_warnings_and_validates():
    out, err = io.StringIO(), io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=err)
    assert "openapi: 3" in out.getvalue()
    assert "/api/v1/policies/simulate" in out.getvalue()
