"""A fake HCP Terraform API for run tasks: the plan JSON behind a redirect (as the real API
redirects ``/plans/:id/json-output`` to its archive), and the task-results callback (JSON:API
PATCH), which can be told to fail with 5xx first."""

from __future__ import annotations

import json
import threading

from tests.fakes.json_http import JsonHandler, LocalServer


class FakeHcp(LocalServer):
    def __init__(self, plan: dict, *, token: str, callback_failures: int = 0) -> None:
        self.plan = plan
        self.token = token
        self.callback_failures = callback_failures
        self.requests: list[tuple[str, str, dict, bytes]] = []  # method, path, headers, body
        self.callbacks: list[dict] = []
        self._lock = threading.Lock()
        self.serve(self._handler())

    def plan_url(self, plan_id: str = "plan-6AFmRJW1PFJ7qbAh") -> str:
        return f"{self.url}/api/v2/plans/{plan_id}/json-output"

    def callback_url(self, result: str = "5ea8d46c-2ceb-42cd-83f2-82e54697bddd") -> str:
        return f"{self.url}/api/v2/task-results/{result}/callback"

    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _record(self, body: bytes = b"") -> None:
                with fake._lock:
                    fake.requests.append((self.command, self.path, dict(self.headers), body))

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {fake.token}":
                    return True
                self.send_json(401, {"errors": [{"status": "401", "title": "unauthorized"}]})
                return False

            def do_GET(self):
                self._record()
                if self.path.startswith("/api/v2/plans/") and self.path.endswith("/json-output"):
                    if not self._authorized():
                        return
                    self.send_response(307)
                    self.send_header("Location", f"{fake.url}/archivist/v1/object/plan-json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/archivist/v1/object/plan-json":
                    self.send_json(200, fake.plan)
                    return
                self.send_json(404, {"errors": [{"status": "404", "title": "not found"}]})

            def do_PATCH(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._record(body)
                if not self.path.startswith("/api/v2/task-results/"):
                    self.send_json(404, {"errors": [{"status": "404"}]})
                    return
                if not self._authorized():
                    return
                with fake._lock:
                    failing = fake.callback_failures > 0
                    if failing:
                        fake.callback_failures -= 1
                if failing:
                    self.send_json(503, {"errors": [{"status": "503", "title": "unavailable"}]})
                    return
                if self.headers.get("Content-Type") != "application/vnd.api+json":
                    self.send_json(415, {"errors": [{"status": "415"}]})
                    return
                with fake._lock:
                    fake.callbacks.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
