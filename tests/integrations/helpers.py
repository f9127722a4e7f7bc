"""Shared builders for the integration tests."""

from __future__ import annotations

import json
from pathlib import Path

from rest_framework.test import APIClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_json(*parts: str):
    return json.loads(FIXTURES.joinpath(*parts).read_text(encoding="utf-8"))


def key_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client
