"""A TCP proxy in front of a real server (Redis) that can be made slow, dead or flapping.

Modes, switchable at any time:
- ``pass``: bytes flow both ways;
- ``delay``: every chunk from the client waits ``delay`` seconds before it is forwarded;
- ``refuse``: new connections are closed at once and open ones are cut (server down);
- ``blackhole``: connections are accepted and nothing is ever forwarded (server hung);
- ``flap``: alternates ``pass`` and ``refuse`` per new connection.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.delay = 0.0
        self.connections = 0
        self.client_writes = 0  # chunks received from clients (one per command with redis-py)
        self._flap = itertools.count()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._listener.close()
        self.cut()

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay
        if mode in ("refuse", "blackhole"):
            self.cut()

    def cut(self) -> None:
        """Close every open connection (both sides)."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            mode = self.mode
            if mode == "flap":
                mode = "pass" if next(self._flap) % 2 == 0 else "refuse"
            if mode == "refuse":
                client.close()
                continue
            with self._lock:
                self._open.add(client)
            if mode == "blackhole":
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.add(upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    self.client_writes += 1
                if from_client and self.mode == "delay" and self.delay:
                    time.sleep(self.delay)  # the injected latency itself
                if self.mode == "blackhole":
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
