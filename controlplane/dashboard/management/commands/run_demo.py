"""Run the whole demo: migrate, seed, then web + Celery worker + beat in one terminal.

Also starts, for the demo only, a local fake LLM provider (so the seeded BYOK credential is
validated and probed for real) and, when ``redis-server`` is installed, a private Redis for the
BYOK breakers and quota. Child output goes to ``var/log/``: the terminal keeps the banner with
the login and the API key. Ctrl-C stops everything, without a traceback.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from byok.demo_provider import DEMO_VALID_KEYS, FakeProviderServer
from byok.providers import provider_names

READY_TIMEOUT_SECONDS = 60


def _free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise CommandError("No free TCP port on 127.0.0.1.")


class Command(BaseCommand):
    help = "Migrate, seed the demo tenant and run web, worker and beat until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args, **options):
        self.children: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.fake: FakeProviderServer | None = None
        # Ctrl-C works even when started from a shell that ignores SIGINT in background jobs;
        # SIGTERM (e.g. from a process manager) stops the demo like Ctrl-C does.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            self._run(options)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping web, worker, beat and the demo services…")
        finally:
            self._stop()
        self.stdout.write("Stopped.")

    def _run(self, options) -> None:
        if settings.REDIS_URL == "" and not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            raise CommandError("The demo expects the file broker; unset CELERY_BROKER_URL.")
        for folder in ("queue", "processed"):
            (settings.CELERY_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
        log_dir = settings.VAR_DIR / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        port = options["port"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("BYOK_LIVENESS_INTERVAL_SECONDS", "60")
        self._start_fake_provider(port, env)
        redis_url = self._start_redis(log_dir, env)
        self.stdout.write("Preparing the demo database…")
        call_command("migrate", interactive=False, verbosity=0)
        self._load_prices()
        seeded = None
        if not options["no_seed"]:
            buffer = io.StringIO()
            call_command("seed_demo", json=True, stdout=buffer)
            seeded = json.loads(buffer.getvalue())
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        celery = [python, "-m", "celery", "-A", "controlplane"]
        commands = {
            "web": [python, manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
            "worker": [
                *celery,
                *("worker", "-l", "warning", "--pool", "threads", "--concurrency", "2"),
                *("-n", "demo-worker@%h"),
            ],
            "beat": [
                *celery,
                *("beat", "-l", "warning", "--scheduler"),
                "django_celery_beat.schedulers:DatabaseScheduler",
                *("--schedule", str(settings.VAR_DIR / "celerybeat-schedule")),
            ],
        }
        self.proxy_port = _free_port(port + 2)
        commands["proxy"] = [
            *(python, "-m", "uvicorn", "controlplane.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(self.proxy_port)),
            *("--no-access-log", "--log-level", "warning"),
        ]
        for name, argv in commands.items():
            self._spawn(name, argv, env, log_dir)
        self._wait_ready(port)
        self._banner(port, seeded, log_dir, redis_url)
        while True:
            for name, child in self.children.items():
                if child.poll() is not None:
                    tail = self._tail(name)
                    raise CommandError(
                        f"{name} exited with code {child.returncode}; stopping. "
                        f"Last lines of {self.logs[name]}:\n{tail}"
                    )
            time.sleep(0.5)

    # --- demo services ---------------------------------------------------------------------

    def _load_prices(self) -> None:
        """The LLM gateway prices calls from the catalog: load a small one if none is there
        (``manage.py import_prices`` loads the full LiteLLM map)."""
        from billing.services.prices import current_catalog, price_catalog_import

        if current_catalog() is None:
            demo_prices = settings.BASE_DIR / "billing" / "pricing" / "demo_prices.json"
            price_catalog_import(text=demo_prices.read_bytes(), source=str(demo_prices))

    def _start_fake_provider(self, port: int, env: dict) -> None:
        """The BYOK providers of the demo point at a local fake (never at a real provider)."""
        self.fake = FakeProviderServer(
            valid_keys=set(DEMO_VALID_KEYS), port=_free_port(port + 1), control=True
        ).start()
        urls = dict.fromkeys(provider_names(), self.fake.base_url)
        settings.BYOK_PROVIDER_BASE_URLS = urls
        env["BYOK_PROVIDER_BASE_URLS"] = ",".join(f"{k}={v}" for k, v in urls.items())

    def _start_redis(self, log_dir: Path, env: dict) -> str | None:
        """A private, memory-only Redis for BYOK breakers and quotas, when one is installed."""
        if settings.BYOK_REDIS_URL:
            return settings.BYOK_REDIS_URL  # configured by the operator: use theirs
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        redis_port = _free_port()
        self._spawn(
            "redis",
            [
                binary,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            env,
            log_dir,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", redis_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"redis://127.0.0.1:{redis_port}/0"
        settings.BYOK_REDIS_URL = url
        env["BYOK_REDIS_URL"] = url
        return url

    def _spawn(self, name: str, argv: list[str], env: dict, log_dir: Path) -> None:
        log = log_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            # A session of its own: Ctrl-C reaches only this command, which stops the children
            # in order (no KeyboardInterrupt tracebacks from them on the terminal).
            self.children[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and args
                argv,
                cwd=settings.BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _stop(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        for child in self.children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.fake is not None:
            self.fake.stop()

    def _tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.logs[name].read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- readiness and banner --------------------------------------------------------------

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        url = f"http://127.0.0.1:{port}/healthz"
        while time.monotonic() < deadline:
            if self.children["web"].poll() is not None:
                raise CommandError(
                    f"The web server failed to start (is port {port} in use? try "
                    f"`make demo DEMO_PORT=8765`).\n{self._tail('web')}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise CommandError(f"The web server did not answer {url} within {READY_TIMEOUT_SECONDS} s.")

    def _banner(self, port: int, seeded: dict | None, log_dir: Path, redis_url: str | None):
        base = f"http://127.0.0.1:{port}"
        lines = [
            "",
            "Tollgate demo is running (web + LLM proxy + worker + beat). Ctrl-C stops everything.",
            f"  Dashboard:    {base}/dashboard/",
        ]
        if seeded:
            lines += [
                f"  Login:        {seeded['username']} / {seeded['password']}",
                f"  API key:      {seeded['api_key']}",
            ]
        lines += [
            f"  Admin:        {base}/admin/     API docs: {base}/api/docs/",
            f"  LLM proxy:    http://127.0.0.1:{self.proxy_port}/v1   (OpenAI base_url; "
            f"Anthropic: http://127.0.0.1:{self.proxy_port})",
            f"  Fake LLM provider (BYOK): {self.fake.base_url}"
            + ("" if redis_url else "   (no redis-server: BYOK breakers and quota unavailable)"),
            f"  Logs:         {log_dir}/",
        ]
        if seeded:
            lines += [
                "",
                "Try it:",
                f"  curl -s -H 'Authorization: Bearer {seeded['api_key']}' {base}/api/v1/tenant",
            ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
