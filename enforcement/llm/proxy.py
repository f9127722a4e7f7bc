"""The ASGI LLM proxy: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/messages``.

Served in front of Django's ASGI application (``controlplane.asgi``); every other path goes to
Django. Per call: read the body, then one thread hop for admission (authenticate, gates, price,
reserve: ``enforcement.llm.admission``), forward with a shared ``httpx.AsyncClient`` (a stream
holds no thread), and one thread hop to commit from the provider's usage
(``enforcement.llm.gateway.llm_commit``). When usage never arrives (the client went away,
the upstream cut the stream) the whole reservation is committed as estimated and flagged for
reconciliation. Errors are in the provider's own shape (``enforcement.llm.shapes``).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import structlog
from asgiref.sync import sync_to_async
from django.conf import settings

from controlplane.core.errors import TollgateError
from enforcement.errors import EnforcementErrorCode
from enforcement.llm.admission import ROUTES, Admitted, Route, admit
from enforcement.llm.gateway import llm_commit
from enforcement.llm.shapes import error_body, from_tollgate_error
from enforcement.metrics import LLM_CALLS

log = structlog.get_logger(__name__)
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "te",
    "trailer",
    "upgrade",
}
# Request headers passed to the provider (never the caller's credentials: the upstream's own
# authentication replaces them).
_FORWARD_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta", "user-agent")


class _Clients:
    """One ``httpx.AsyncClient`` per event loop (uvicorn runs one loop per worker)."""

    def __init__(self) -> None:
        self._by_loop: dict[int, httpx.AsyncClient] = {}

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._by_loop.get(id(loop))
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    settings.LLM_UPSTREAM_READ_TIMEOUT_SECONDS,
                    connect=settings.LLM_UPSTREAM_CONNECT_TIMEOUT_SECONDS,
                ),
                limits=httpx.Limits(
                    max_connections=settings.LLM_UPSTREAM_MAX_CONNECTIONS,
                    max_keepalive_connections=settings.LLM_UPSTREAM_MAX_CONNECTIONS,
                ),
                follow_redirects=False,  # a redirect could carry the key to another host
            )
            self._by_loop[id(loop)] = client
        return client

    async def aclose(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        client = self._by_loop.pop(loop_id, None)
        if client is not None:
            await client.aclose()


clients = _Clients()


class LlmProxy:
    """ASGI app: the LLM routes here, everything else to ``django_app``."""

    def __init__(self, django_app) -> None:
        self.django_app = django_app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        route = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.django_app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send_error(
                send, route, 405, "METHOD_NOT_ALLOWED", "Use POST.", {"Allow": "POST"}
            )
            return
        await ProxyCall(route, scope, receive, send).run()

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await clients.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send, route: Route, status, code, message, headers=None) -> None:
    await _send(
        send, status, error_body(route.format, status=status, code=code, message=message), headers
    )


class ProxyCall:
    """One proxied call: admit, forward, commit exactly once."""

    def __init__(self, route: Route, scope, receive, send) -> None:
        self.route, self.scope, self.receive, self.send = route, scope, receive, send
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        client = scope.get("client") or ("", 0)
        self.client = client[0] or ""
        self.disconnected = asyncio.Event()
        self.admitted: Admitted | None = None
        self.committed = False
        self.streaming = False
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        self.task = asyncio.current_task()
        body = await self._read_body()
        if body is None:
            return
        try:
            self.admitted = await sync_to_async(admit, thread_sensitive=False)(
                route=self.route, headers=self.headers, body=body, client=self.client
            )
        except TollgateError as exc:
            status, payload, headers = from_tollgate_error(self.route.format, exc)
            await _send(self.send, status, payload, headers)
            return
        except Exception:
            # A bug: nothing was reserved (admission is one transaction); say so in the
            # provider's shape rather than dropping the connection.
            log.exception("llm_admission_failed", path=self.route.path)
            await _send_error(
                self.send, self.route, 500, "INTERNAL_ERROR", "Internal error; nothing was sent."
            )
            return
        watcher = asyncio.ensure_future(self._watch_disconnect())
        try:
            await self._forward()
        finally:
            watcher.cancel()
            if not self.committed:  # cancelled or crashed before a commit: never left pending
                await self._commit(None, "proxy_error", None)

    async def _read_body(self) -> bytes | None:
        chunks, size, limit = [], 0, settings.LLM_PROXY_MAX_BODY_BYTES
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_error(
                    self.send,
                    self.route,
                    413,
                    EnforcementErrorCode.LLM_REQUEST_TOO_LARGE,
                    f"The body is larger than {limit} bytes.",
                )
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _watch_disconnect(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                if self.streaming and self.task is not None:
                    # A stream waits on the upstream: stop it now, not at its next chunk.
                    self.task.cancel()
                return

    def _upstream_request(self) -> httpx.Request:
        a = self.admitted
        headers = {
            "content-type": "application/json",
            "accept": self.headers.get("accept", "*/*"),
            # Streams are passed through as raw bytes: ask for them uncompressed.
            "accept-encoding": "identity",
        }
        for name in _FORWARD_REQUEST_HEADERS:
            if name in self.headers:
                headers[name] = self.headers[name]
        headers.update(a.upstream.headers)
        url = a.upstream.base_url + self.route.upstream_path
        return clients.get().build_request("POST", url, content=a.payload, headers=headers)

    async def _forward(self) -> None:
        client = clients.get()
        try:
            response = await client.send(self._upstream_request(), stream=True)
        except httpx.HTTPError as exc:
            sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            await self._commit(None, "upstream_cut" if sent else "upstream_error", None)
            await _send_error(
                self.send,
                self.route,
                502,
                EnforcementErrorCode.LLM_UPSTREAM_UNAVAILABLE,
                f"The provider could not be reached ({type(exc).__name__}).",
            )
            return
        try:
            if response.status_code >= 400 or not self._is_stream(response):
                await self._forward_whole(response)
            else:
                await self._forward_stream(response)
        finally:
            await response.aclose()

    def _is_stream(self, response: httpx.Response) -> bool:
        return self.admitted.stream and "text/event-stream" in response.headers.get(
            "content-type", ""
        )

    def _response_headers(self, response: httpx.Response) -> list[tuple[bytes, bytes]]:
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            if k.lower() not in _HOP_HEADERS
        ]
        reservation = self.admitted.reserved.reservation_id
        if reservation:
            out.append((b"tollgate-reservation-id", reservation.encode()))
        return out

    async def _forward_whole(self, response: httpx.Response) -> None:
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            await self._commit(None, "upstream_cut", response.status_code)
            await _send_error(
                self.send,
                self.route,
                502,
                EnforcementErrorCode.LLM_UPSTREAM_UNAVAILABLE,
                f"The provider's answer was cut ({type(exc).__name__}).",
            )
            return
        usage = None
        if response.status_code < 400:
            try:
                usage = json.loads(body).get("usage")
            except (ValueError, AttributeError):
                usage = None
        reason = (
            ""
            if usage is not None
            else ("upstream_error" if response.status_code >= 400 else "no_usage")
        )
        await self._commit(usage if isinstance(usage, dict) else None, reason, response.status_code)
        headers = self._response_headers(response)
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await self.send({"type": "http.response.body", "body": body})

    async def _forward_stream(self, response: httpx.Response) -> None:
        reader = _UsageReader(self.route.format, strip_usage=not self.admitted.client_wants_usage)
        await self.send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": self._response_headers(response),
            }
        )
        cut = None
        self.streaming = True
        try:
            async for chunk in response.aiter_raw():
                if self.disconnected.is_set():
                    cut = "client_disconnected"
                    break
                out = reader.feed(chunk)
                if out:
                    await self.send({"type": "http.response.body", "body": out, "more_body": True})
        except httpx.HTTPError:
            cut = "upstream_cut"
        except asyncio.CancelledError:
            if not self.disconnected.is_set():
                raise
            cut = "client_disconnected"  # cancelled by the disconnect watcher
        finally:
            self.streaming = False
        if cut is None and self.disconnected.is_set():
            cut = "client_disconnected"
        tail = reader.finish()
        usage = reader.usage() if cut is None else None
        await self._commit(
            usage, cut or ("" if usage is not None else "no_usage"), response.status_code
        )
        if cut != "client_disconnected":
            await self.send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _commit(self, usage: dict | None, reason: str, status: int | None) -> None:
        if self.committed:
            return
        self.committed = True
        a = self.admitted
        if a is None or a.reserved.reservation_id is None:
            return  # shadow mode: nothing was reserved, nothing to commit
        commit = sync_to_async(_commit_sync, thread_sensitive=False)
        # Shielded: a client that goes away must not cancel the commit half-way.
        await asyncio.shield(commit(a, usage, reason, status))


def _commit_sync(a: Admitted, usage: dict | None, reason: str, status: int | None) -> None:
    from django.db import close_old_connections

    try:
        llm_commit(
            reservation_id=a.reserved.reservation_id,
            frozen=a.reserved.frozen,
            usage=usage,
            surface="proxy",
            model=a.model,
            api_key=a.api_key,
            end_user=a.end_user,
            estimate_reason=reason if usage is None else "",
            upstream_status=status,
            reserved_micros=a.reserved.amount_micros,
        )
        LLM_CALLS.labels(
            provider=a.upstream.provider,
            commit="usage"
            if usage is not None
            else ("zero" if reason == "upstream_error" else "estimated"),
        ).inc()
    except Exception:
        # The reservation stays pending and expires; the ledger shows it (never a silent loss).
        log.exception("llm_commit_failed", reservation=a.reserved.reservation_id, reason=reason)
    finally:
        close_old_connections()


_TERMINAL_EVENTS = (b"data: [DONE]", b"event: message_stop")


class _UsageReader:
    """Passes SSE events through and keeps the usage they carry.

    OpenAI: the chunk with ``usage`` (after ``finish_reason``; ``choices`` empty) is dropped when
    the client did not ask for it (it was injected). Anthropic: ``message_start`` carries the
    input and cache counts, each ``message_delta`` the cumulative ``output_tokens``.
    """

    def __init__(self, fmt: str, *, strip_usage: bool) -> None:
        self.fmt = fmt
        self.strip = strip_usage and fmt == "openai"
        self.buffer = b""
        self.held = b""
        self._usage: dict | None = None
        self._final = False

    def feed(self, chunk: bytes) -> bytes:
        self.buffer += chunk
        if b"\n\n" not in self.buffer:
            return b""
        complete, _, self.buffer = self.buffer.rpartition(b"\n\n")
        out = []
        for event in complete.split(b"\n\n"):
            if (
                (b'"usage":{' in event or b'"usage": {' in event)
                and self._take(event)
                and self.strip
            ):
                continue
            if event.startswith(_TERMINAL_EVENTS):
                # Held back until the call is committed: a client that stops reading at the
                # end marker finds its spend already recorded.
                self.held += event + b"\n\n"
                continue
            out.append(event + b"\n\n")
        return b"".join(out)

    def finish(self) -> bytes:
        rest, self.buffer, held, self.held = self.buffer, b"", self.held, b""
        return held + rest

    def _take(self, event: bytes) -> bool:
        """Read usage out of one event; True when it was OpenAI's usage-only chunk."""
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                data = json.loads(line[5:])
            except ValueError:
                return False
            if not isinstance(data, dict):
                return False
            if self.fmt == "openai":
                usage = data.get("usage")
                if isinstance(usage, dict):
                    self._usage, self._final = usage, True
                    return not data.get("choices")
                return False
            kind = data.get("type")
            if kind == "message_start":
                usage = (data.get("message") or {}).get("usage")
                if isinstance(usage, dict):
                    self._usage = dict(usage)
            elif kind == "message_delta" and isinstance(data.get("usage"), dict):
                self._usage = {**(self._usage or {}), **data["usage"]}
                self._final = True
        return False

    def usage(self) -> dict | None:
        return self._usage if self._final else None
