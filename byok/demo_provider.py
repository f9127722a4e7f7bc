"""A local fake of the OpenAI and Anthropic APIs, byte for byte on the wire: list models, chat
completions (JSON and SSE, with the usage chunk when ``stream_options.include_usage``), messages
(JSON and the event stream) and embeddings.

Demo only: ``make demo`` (``run_demo``) starts one so the seeded BYOK credential is validated
and probed for real (statuses, liveness, breaker) and calls through the demo's LLM proxy get an
answer and a usage to commit, without reaching a provider; the test suite uses the same server.
Never configured in production: nothing starts it there.

The auth header style picks the dialect: ``Authorization: Bearer`` gets OpenAI-shaped bodies,
``x-api-key``/``anthropic-version`` gets Anthropic-shaped bodies. ``mode`` forces an outcome:

- ``ok``: 200 list of models (still 401 for keys not in ``valid_keys``)
- ``unauthorized`` / ``forbidden``: 401 / 403
- ``rate_limited``: 429 with ``Retry-After: <retry_after>`` when ``retry_after`` is not None
- ``server_error`` / ``unavailable`` / ``overloaded``: 500 / 503 / 529
- ``hang``: accept the request and never answer until the mode changes or ``stop()``
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

DEFAULT_VALID_KEY = "sk-proj-fakeVALIDkey0123456789abcd"
ANTHROPIC_VALID_KEY = "sk-ant-api03-fakeVALIDkey0123456789-abcdAA"
# A second OpenAI key the demo accepts, so the rotation walk-through has somewhere to rotate to.
OPENAI_ROTATED_KEY = "sk-proj-fakeROTATEDkey0123456789wxyz"
DEMO_VALID_KEYS = frozenset({DEFAULT_VALID_KEY, ANTHROPIC_VALID_KEY, OPENAI_ROTATED_KEY})
# Demo only: POST a mode name here to make the fake fail (e.g. server_error) or recover (ok).
CONTROL_PATH = "/__demo__/mode"
MODES = (
    "ok",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "server_error",
    "unavailable",
    "overloaded",
    "hang",
)
# Upper bound on a hung handler so a forgotten stop() cannot wedge a test run forever.
_MAX_HANG_SECONDS = 30.0

OPENAI_MODELS = [
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
]
ANTHROPIC_MODELS = [
    {
        "type": "model",
        "id": "claude-sonnet-4-20250514",
        "display_name": "Claude Sonnet 4",
        "created_at": "2025-05-22T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-3-5-haiku-20241022",
        "display_name": "Claude Haiku 3.5",
        "created_at": "2024-10-22T00:00:00Z",
    },
]


# Generation endpoints: (method, path) -> handler method. The reply is canned; the usage is
# counted from the request (about 4 bytes per token), as a provider would report it.
GENERATION_ROUTES = {
    ("POST", "/v1/chat/completions"): "_chat_completion",
    ("POST", "/v1/embeddings"): "_embedding",
    ("POST", "/v1/messages"): "_message",
}
DEMO_REPLY = "This answer comes from Tollgate's demo provider; no model ran and nothing was billed."


def _tokens(value: Any) -> int:
    """A provider-like token count of a request part: about 4 UTF-8 bytes per token."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


def _reply_tokens(request: dict[str, Any], limit_field: str) -> tuple[str, int, str]:
    """(text, completion tokens, finish reason) within the request's output limit."""
    words = DEMO_REPLY.split()
    limit = request.get(limit_field) or request.get("max_completion_tokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        return " ".join(words[:limit]), limit, "length"
    return DEMO_REPLY, len(words), "stop"


class RecordedRequest(NamedTuple):
    """One request as the server saw it; header names are lowercased."""

    method: str
    path: str
    headers: dict[str, str]


def unused_port() -> int:
    """Return a localhost TCP port with nothing listening on it (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _masked(key: str) -> str:
    """OpenAI echoes invalid keys masked like this; reproduced so leak tests are realistic."""
    return f"{key[:3]}{'*' * 12}{key[-4:]}" if len(key) > 8 else "***"


def _openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _anthropic_error(type_: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": "req_fake0001",
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.server.fake.control and self.path == CONTROL_PATH:
            return self._control(body)
        self._dispatch(body)

    def _control(self, body: bytes) -> None:
        wanted = body.decode("utf-8", "replace").strip()
        try:
            self.server.fake.mode = wanted
        except ValueError:
            return self._send(400, {"error": f"unknown mode {wanted!r}", "modes": list(MODES)})
        self._send(200, {"mode": wanted})

    def _dispatch(self, body: bytes = b"") -> None:
        fake = self.server.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake._record(RecordedRequest(self.command, self.path, headers))
        auth = headers.get("authorization", "")
        dialect = (
            "openai"
            if auth.lower().startswith("bearer ")
            else "anthropic"
            if "x-api-key" in headers or "anthropic-version" in headers
            else "openai"
        )
        if fake.mode == "hang":
            fake._hang()
            # Drop the connection without a response: the client has long since timed out.
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        route = GENERATION_ROUTES.get((self.command, path))
        if route is None and (path != "/v1/models" or self.command != "GET"):
            return self._not_found(dialect)
        if dialect == "openai":
            refused = self._openai(auth, answer=route is None)
        else:
            refused = self._anthropic(headers, answer=route is None)
        if route is not None and not refused:
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                request = None
            if not isinstance(request, dict) or "model" not in request:
                error = "Invalid JSON body: `model` is required."
                return self._send(
                    400,
                    _openai_error(error, "invalid_request_error", None)
                    if dialect == "openai"
                    else _anthropic_error("invalid_request_error", error),
                )
            getattr(self, route)(request)

    def _openai(self, auth: str, *, answer: bool = True) -> bool:
        """Refuse as OpenAI would (True), else answer the model list when ``answer`` (False)."""
        fake = self.server.fake
        server_fault = self._server_fault("openai")
        if server_fault:
            return True
        if not auth.lower().startswith("bearer "):
            self._send(
                401,
                _openai_error(
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                    None,
                ),
            )
            return True
        key = auth[len("bearer ") :].strip()
        if key not in fake.valid_keys or fake.mode == "unauthorized":
            self._send(
                401,
                _openai_error(
                    f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
            return True
        if fake.mode == "forbidden":
            self._send(
                403,
                _openai_error(
                    "Country, region, or territory not supported",
                    "request_forbidden",
                    "unsupported_country_region_territory",
                ),
            )
            return True
        if fake.mode == "rate_limited":
            self._send(
                429,
                _openai_error(
                    "Rate limit reached for requests. Please try again later.",
                    "requests",
                    "rate_limit_exceeded",
                ),
                retry_after=fake.retry_after,
            )
            return True
        if answer:
            self._send(200, {"object": "list", "data": OPENAI_MODELS})
        return False

    def _anthropic(self, headers: dict[str, str], *, answer: bool = True) -> bool:
        """Refuse as Anthropic would (True), else answer the model list when ``answer``."""
        fake = self.server.fake
        if self._server_fault("anthropic"):
            return True
        key = headers.get("x-api-key")
        if not key:
            self._send(
                401, _anthropic_error("authentication_error", "x-api-key header is required")
            )
            return True
        if not headers.get("anthropic-version"):
            self._send(
                400,
                _anthropic_error("invalid_request_error", "anthropic-version: header is required"),
            )
            return True
        if key not in fake.valid_keys or fake.mode == "unauthorized":
            self._send(401, _anthropic_error("authentication_error", "invalid x-api-key"))
            return True
        if fake.mode == "forbidden":
            self._send(
                403,
                _anthropic_error(
                    "permission_error",
                    "Your API key does not have permission to use this resource.",
                ),
            )
            return True
        if fake.mode == "rate_limited":
            self._send(
                429,
                _anthropic_error(
                    "rate_limit_error", "Number of requests has exceeded your rate limit."
                ),
                retry_after=fake.retry_after,
            )
            return True
        data = ANTHROPIC_MODELS
        if answer:
            self._send(
                200,
                {
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"],
                    "last_id": data[-1]["id"],
                },
            )
        return False

    def _chat_completion(self, request: dict[str, Any]) -> None:
        text, completion, finish = _reply_tokens(request, "max_tokens")
        prompt = _tokens(request.get("messages") or [])
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        base = {
            "id": "chatcmpl-demo0001",
            "created": 1733300000,
            "model": request["model"],
            "system_fingerprint": "fp_demo",
        }
        if not request.get("stream"):
            message = {"role": "assistant", "content": text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            return self._send(
                200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunk = {**base, "object": "chat.completion.chunk"}
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}
        events = [
            {
                **chunk,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                **extra,
            },
            *(
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": word if i == 0 else " " + word},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                    **extra,
                }
                for i, word in enumerate(text.split())
            ),
            {
                **chunk,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}],
                **extra,
            },
        ]
        if include_usage:
            events.append({**chunk, "choices": [], "usage": usage})
        lines = [
            b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events
        ]
        self._send_sse([*lines, b"data: [DONE]\n\n"])

    def _message(self, request: dict[str, Any]) -> None:
        text, output, finish = _reply_tokens(request, "max_tokens")
        prompt = _tokens(request.get("messages") or []) + (
            _tokens(request["system"]) if request.get("system") else 0
        )
        stop = "max_tokens" if finish == "length" else "end_turn"
        usage = {
            "input_tokens": prompt,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output,
        }
        message = {
            "id": "msg_demo0001",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not request.get("stream"):
            return self._send(200, message)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
            *(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": word if i == 0 else " " + word},
                    },
                )
                for i, word in enumerate(text.split())
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._send_sse(
            [
                f"event: {kind}\n".encode()
                + b"data: "
                + json.dumps(data, separators=(",", ":")).encode()
                + b"\n\n"
                for kind, data in events
            ]
        )

    def _embedding(self, request: dict[str, Any]) -> None:
        tokens = _tokens(request.get("input") or "")
        self._send(
            200,
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.012, -0.034, 0.056]}],
                "model": request["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _send_sse(self, events: list[bytes]) -> None:
        """A server-sent event stream, chunked as the providers send it, then closed."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _server_fault(self, dialect: str) -> bool:
        """Answer with the mode's 5xx in the dialect's error shape; False when mode is not 5xx."""
        mode = self.server.fake.mode
        if mode == "server_error":
            body = (
                _openai_error(
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                    None,
                )
                if dialect == "openai"
                else _anthropic_error("api_error", "Internal server error")
            )
            self._send(500, body)
        elif mode == "unavailable":
            body = (
                _openai_error(
                    "The server is overloaded or not ready yet.", "service_unavailable", None
                )
                if dialect == "openai"
                else _anthropic_error("api_error", "Service unavailable")
            )
            self._send(503, body)
        elif mode == "overloaded":
            body = (
                _openai_error("The engine is currently overloaded.", "server_error", None)
                if dialect == "openai"
                else _anthropic_error("overloaded_error", "Overloaded")
            )
            self._send(529, body, reason="Overloaded")
        else:
            return False
        return True

    def _not_found(self, dialect: str) -> None:
        if dialect == "openai":
            body = _openai_error(
                f"Invalid URL ({self.command} {self.path})", "invalid_request_error", None
            )
        else:
            body = _anthropic_error("not_found_error", "Not found")
        self._send(404, body)

    def _send(
        self,
        status: int,
        body: dict[str, Any],
        *,
        retry_after: int | str | None = None,
        reason: str | None = None,
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status, reason)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        if retry_after is not None:
            self.send_header("retry-after", str(retry_after))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeProviderServer


class FakeProviderServer:
    """Threaded fake OpenAI/Anthropic API on 127.0.0.1 with a switchable failure ``mode``."""

    def __init__(
        self,
        *,
        valid_keys: set[str] | None = None,
        mode: str = "ok",
        port: int = 0,
        control: bool = False,
    ) -> None:
        self.valid_keys: set[str] = (
            set(valid_keys) if valid_keys is not None else {DEFAULT_VALID_KEY, ANTHROPIC_VALID_KEY}
        )
        self.mode = mode
        self.control = control  # accept POST /__demo__/mode (the demo's failure switch)
        self._port = port
        self.retry_after: int | str | None = None
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; expected one of {MODES}")
        self._mode = value

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeProviderServer:
        """Bind an ephemeral port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopped.clear()
        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-provider-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hung handlers, stop serving and close the socket."""
        self._stopped.set()
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def reset(self) -> None:
        """Back to mode ``ok`` with no Retry-After and no recorded requests."""
        self.mode = "ok"
        self.retry_after = None
        with self._lock:
            self.requests.clear()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _hang(self) -> None:
        waited = 0.0
        while self.mode == "hang" and waited < _MAX_HANG_SECONDS:
            if self._stopped.wait(0.05):
                return
            waited += 0.05
