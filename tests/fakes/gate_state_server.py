"""A gate state service (docs/billing.md#gate-state-service) for the lifecycle and billing
gates' HTTP providers: answers from ``lifecycle`` / ``billing`` / ``usage`` dicts per tenant.

``mode``: ``ok``; ``slow`` (answers after ``delay`` s); ``error`` (500); ``garbage`` (200 with
a body that is not the contract); ``flap`` (alternates ok / 500 per request).
"""

from __future__ import annotations

import itertools
import time

from tests.fakes.json_http import JsonHandler, LocalServer


class GateStateServer(LocalServer):
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.lifecycle: dict[str, dict] = {}
        self.billing: dict[str, dict] = {}
        self.usage: dict[str, dict] = {}
        self.requests: list[str] = []
        self._flap = itertools.count()
        server = self

        class Handler(JsonHandler):
            def do_GET(self):
                server.requests.append(self.path)
                mode = server.mode
                if mode == "flap":
                    mode = "ok" if next(server._flap) % 2 == 0 else "error"
                if mode == "slow":
                    time.sleep(server.delay)  # the injected latency itself
                    mode = "ok"
                parts = self.path.strip("/").split("/")  # v1 tenants <id> <what>
                if mode == "error":
                    return self.send_json(500, {"error": "internal"})
                if mode == "garbage":
                    return self.send_json(200, {"unexpected": True})
                if len(parts) != 4 or parts[:2] != ["v1", "tenants"]:
                    return self.send_json(404, {"error": "not found"})
                table = getattr(server, parts[3], None)
                if not isinstance(table, dict) or parts[2] not in table:
                    return self.send_json(404, {"error": "unknown tenant"})
                return self.send_json(200, table[parts[2]])

        self.serve(Handler)
