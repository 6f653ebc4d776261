"""A real daphne process serving the test database, for end-to-end and
browser tests (and the benchmarks)."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_environment() -> dict[str, str]:
    """Point a child process at the database this test run uses."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": str(database["NAME"])}
    user = database.get("USER") or "postgres"
    password = (":" + database["PASSWORD"]) if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"}


def static_collect() -> None:
    """collectstatic into STATIC_ROOT unless it is newer than every source
    file: the live server serves static files as production does, from
    STATIC_ROOT with their gzip copies (portal/settings/base.py)."""
    stamp = Path(str(settings.STATIC_ROOT) + ".collected")
    newest = max(
        os.stat(storage.path(path)).st_mtime for finder in finders.get_finders() for path, storage in finder.list(None)
    )
    if stamp.exists() and stamp.stat().st_mtime >= newest:
        return
    call_command("collectstatic", interactive=False, verbosity=0)
    stamp.touch()


class LiveServer:
    def __init__(self, extra_environment: Mapping[str, str] | None = None) -> None:
        static_collect()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ)
        environment.update(
            {
                "DJANGO_SETTINGS_MODULE": "portal.settings.test",
                "SMS_BACKEND": settings.SMS_BACKEND,
                "SMS_OUTBOX": settings.SMS_OUTBOX,
                "PYTHONUNBUFFERED": "1",
            }
        )
        environment.update(database_environment())
        environment.update(extra_environment or {})
        self.log_path = ROOT / "var" / f"live-daphne-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "portal.asgi:application"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("daphne exited: " + self.log_path.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError("daphne did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def problems_watch(page: Any, problems: list[str]) -> None:
    """Collect a browser page's script errors and console errors (CSP
    refusals and failed loads among them) into `problems`."""

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text + " " + message.location["url"])

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
