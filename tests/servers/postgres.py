"""A private PostgreSQL server for fault-injection tests: its own data directory, a free port,
its own limits. The shared server is never restarted, limited or stopped by a test."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers.gunicorn import free_port

BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres() -> dict:
    """initdb refuses root: run the server as the `postgres` system user when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


class PrivatePostgres:
    def __init__(
        self, *, max_connections: int = 20, durable: bool = False, **settings: str
    ) -> None:
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="tollgate-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.settings = {
            "port": str(self.port),
            "max_connections": str(max_connections),
            "superuser_reserved_connections": "0",
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            **settings,
        }
        if not durable:  # faster; only a crash (kill -9) could lose acknowledged commits
            self.settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        self._run_as = _as_postgres()
        if self._run_as:
            os.chown(self.root, self._run_as["user"], self._run_as["group"])

    def url(self, dbname: str = "tollgate") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), check=check, capture_output=True, text=True, timeout=120, **self._run_as
        )

    def init(self) -> None:
        self._run(
            str(BIN / "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as conf:
            for name, value in self.settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        self._run(str(BIN / "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(BIN / "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False
        )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def kill9(self) -> None:
        """SIGKILL the postmaster (a crash); only this private server's pid."""
        pid_file = Path(self.data) / "postmaster.pid"
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 9)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return self._run(
            str(BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            dbname,
            "-Atc",
            sql,
        ).stdout

    def createdb(self, name: str = "tollgate") -> None:
        self._run(
            str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres(**kwargs):
    server = PrivatePostgres(**kwargs)
    try:
        server.init()
        server.start()
        server.createdb()
        yield server
    finally:
        server.destroy()


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # our own redis-server, by its pid
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def private_redis():
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()
