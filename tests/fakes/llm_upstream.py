"""A fake OpenAI + Anthropic upstream speaking their wire formats (JSON and SSE), and a helper
that serves any ASGI app with uvicorn on port 0 in a thread (the proxy under test, too).

OpenAI: ``POST /v1/chat/completions`` (``chat.completion`` JSON, or ``chat.completion.chunk``
SSE ending in ``data: [DONE]``, with the usage-only chunk when
``stream_options.include_usage`` is true) and ``POST /v1/embeddings``. Anthropic:
``POST /v1/messages`` (a ``message`` JSON, or the event stream ``message_start`` ...
``message_stop``). The usage it reports is ``usage`` below, settable per test; ``hang`` makes a
stream stop after its first content event and wait (until ``release``) so a test can cut it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
ANTHROPIC_USAGE = {
    "input_tokens": 200,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 1000,
    "output_tokens": 300,
}


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class FakeLlmUpstream:
    openai_usage: dict = field(default_factory=lambda: dict(OPENAI_USAGE))
    anthropic_usage: dict = field(default_factory=lambda: dict(ANTHROPIC_USAGE))
    hang: bool = False
    fail_status: int | None = None
    requests: list = field(default_factory=list)
    release: asyncio.Event | None = None
    hanging: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.release = asyncio.Event()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        data = json.loads(body) if body else {}
        self.requests.append({"path": scope["path"], "headers": headers, "body": data})
        if self.fail_status:
            await self._json(send, self.fail_status, self._error(scope["path"]))
            return
        path = scope["path"]
        if path == "/v1/models":  # the BYOK liveness probe
            key = headers.get("x-api-key") or headers.get("authorization", "")[7:]
            ok = key.startswith("sk-")
            await self._json(send, 200 if ok else 401, {"object": "list", "data": []})
            return
        if path == "/v1/chat/completions":
            await (self._openai_stream if data.get("stream") else self._openai_json)(send, data)
        elif path == "/v1/embeddings":
            usage = {"prompt_tokens": 8, "total_tokens": 8}
            await self._json(
                send,
                200,
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]}],
                    "model": data["model"],
                    "usage": usage,
                },
            )
        elif path == "/v1/messages":
            stream = data.get("stream")
            await (self._anthropic_stream if stream else self._anthropic_json)(send, data)
        else:
            await self._json(send, 404, {"error": {"message": "not found", "type": "not_found"}})

    def _error(self, path: str) -> dict:
        if path == "/v1/messages":
            return {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return {"error": {"message": "upstream failed", "type": "server_error", "code": None}}

    async def _json(self, send, status: int, value) -> None:
        body = _dumps(value)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _sse(self, send, events) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        for index, event in enumerate(events):
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if self.hang and index == 1:
                self.hanging.set()
                await self.release.wait()
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _openai_json(self, send, data) -> None:
        await self._json(
            send,
            200,
            {
                "id": "chatcmpl-fake1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": data["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": self.openai_usage,
                "system_fingerprint": "fp_fake",
            },
        )

    async def _openai_stream(self, send, data) -> None:
        base = {
            "id": "chatcmpl-fake2",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": data["model"],
            "system_fingerprint": "fp_fake",
        }
        include = (data.get("stream_options") or {}).get("include_usage") is True

        def chunk(choices, usage=None):
            body = {**base, "choices": choices}
            if include:
                body["usage"] = usage
            return b"data: " + _dumps(body) + b"\n\n"

        events = [
            chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            ),
            chunk([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]),
            chunk([{"index": 0, "delta": {"content": "lo!"}, "finish_reason": None}]),
            chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        ]
        if include:
            events.append(chunk([], self.openai_usage))
        events.append(b"data: [DONE]\n\n")
        await self._sse(send, events)

    def _message(self, data, usage) -> dict:
        return {
            "id": "msg_fake1",
            "type": "message",
            "role": "assistant",
            "model": data["model"],
            "content": [{"type": "text", "text": "Hello!"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }

    async def _anthropic_json(self, send, data) -> None:
        await self._json(send, 200, self._message(data, self.anthropic_usage))

    async def _anthropic_stream(self, send, data) -> None:
        def event(kind, value):
            return b"event: " + kind.encode() + b"\ndata: " + _dumps(value) + b"\n\n"

        start = self._message(data, {**self.anthropic_usage, "output_tokens": 1})
        start["content"], start["stop_reason"] = [], None
        await self._sse(
            send,
            [
                event("message_start", {"type": "message_start", "message": start}),
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                event("ping", {"type": "ping"}),
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "Hello!"},
                    },
                ),
                event("content_block_stop", {"type": "content_block_stop", "index": 0}),
                event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": self.anthropic_usage["output_tokens"]},
                    },
                ),
                event("message_stop", {"type": "message_stop"}),
            ],
        )


class ServedApp:
    """Serve an ASGI app with uvicorn on 127.0.0.1, port 0, in a daemon thread."""

    def __init__(self, app, **config) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **config)
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
