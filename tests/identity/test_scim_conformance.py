"""The official SCIM conformance checker (scim2-tester) against the real app, through WSGI."""

from __future__ import annotations

from collections import Counter

import pytest
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status, check_server

from tests.identity.scim_helpers import scim_token, wsgi_app

pytestmark = pytest.mark.django_db


def test_check_server_has_no_error_and_no_critical(tenant, capsys):
    token = scim_token(tenant)
    with wsgi_app() as app:
        client = WSGISCIMClient(
            app,
            base_url="http://localhost/scim/v2",
            headers={"Authorization": f"Bearer {token}"},
        )
        results = check_server(client)
    counts = Counter(result.status for result in results)
    failures = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    with capsys.disabled():
        print(
            f"\nscim2-tester check_server: {counts[Status.SUCCESS]} SUCCESS, "
            + ", ".join(
                f"{counts[s]} {s.name}" for s in Status if s != Status.SUCCESS and counts[s]
            )
        )
    assert not failures, "\n".join(
        f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason} {r.data!r}"[:1500]
        for r in failures
    )
    assert counts[Status.SUCCESS] > 0
