"""A NUL character in a URL is a client error (400), never a database error (500)."""

from __future__ import annotations

import pytest

from tests.api_contracts import assert_problem

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/decisions?project=a%00b",
        "/api/v1/decisions?environment=%00",
        "/api/v1/decisions?outcome=%00",
        "/api/v1/ledger?chain=%00",
        "/api/v1/decisions/dec%00x",
        "/api/v1/reservations/res%00x",
        "/api/v1/budgets/b%00",
    ],
)
def test_nul_in_url_is_400(client_a, path):
    problem = assert_problem(client_a.get(path), 400, "MALFORMED_REQUEST")
    assert "NUL" in problem["detail"]


def test_nul_in_a_post_path_is_400(client_a):
    response = client_a.post("/api/v1/reservations/res%00x/release")
    assert_problem(response, 400, "MALFORMED_REQUEST")
