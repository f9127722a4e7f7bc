"""Run the whole demo: migrate, seed, then web + Celery worker + beat in one terminal."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Migrate, seed the demo tenant and run web, worker and beat until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args, **options):
        if settings.REDIS_URL == "" and settings.CELERY_BROKER_URL != "filesystem://":
            raise CommandError("The demo expects the file broker; unset CELERY_BROKER_URL.")
        for folder in ("queue", "processed"):
            (settings.CELERY_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
        self.stdout.write("Applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        seeded = None
        if not options["no_seed"]:
            buffer = io.StringIO()
            call_command("seed_demo", json=True, stdout=buffer)
            seeded = json.loads(buffer.getvalue())
        port = options["port"]
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        commands = {
            "web": [python, manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-l",
                "warning",
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "-n",
                "demo-worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "beat",
                "-l",
                "warning",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        children: dict[str, subprocess.Popen] = {}
        try:
            for name, argv in commands.items():
                children[name] = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env)  # noqa: S603
            self._wait_ready(port, children)
            self._banner(port, seeded)
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        raise CommandError(f"{name} exited with code {child.returncode}; stopping.")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping web, worker and beat…")
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    def _wait_ready(self, port: int, children: dict) -> None:
        deadline = time.monotonic() + 60
        url = f"http://127.0.0.1:{port}/healthz"
        while time.monotonic() < deadline:
            if children["web"].poll() is not None:
                raise CommandError("The web server failed to start (is the port in use?).")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise CommandError(f"The web server did not answer {url} within 60 s.")

    def _banner(self, port: int, seeded: dict | None) -> None:
        base = f"http://127.0.0.1:{port}"
        lines = [
            "",
            "Tollgate demo is running (web + worker + beat). Ctrl-C stops everything.",
            f"  Admin:        {base}/admin/",
            f"  API docs:     {base}/api/docs/",
            f"  Health:       {base}/healthz   Ready: {base}/readyz   Metrics: {base}/metrics",
        ]
        if seeded:
            lines += [
                f"  Login:        {seeded['username']} / {seeded['password']}",
                f"  API key:      {seeded['api_key']}",
                "",
                "Try it:",
                f"  curl -s -H 'Authorization: Bearer {seeded['api_key']}' {base}/api/v1/tenant",
            ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
