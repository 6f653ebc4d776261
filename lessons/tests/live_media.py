"""A real media worker process (`python -m lessons.media`) for end-to-end
tests, on the test settings' channel layer, and an asyncio loop of its own
for aiortc participants next to synchronous test code (Playwright)."""

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class MediaWorkerProcess:
    """Started on construction; ready once it says it listens."""

    def __init__(self) -> None:
        self.worker_id = "e2e-" + uuid.uuid4().hex[:10]
        self.log_path = ROOT / "var" / f"media-worker-{self.worker_id}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lessons.media", "--worker-id", self.worker_id],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log_path.read_text(errors="replace")
            if self.process.poll() is not None:
                raise RuntimeError("the media worker exited: " + log[-2000:])
            if "listening on" in log:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the media worker did not start: " + self.log_path.read_text(errors="replace")[-2000:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class LoopThread:
    """An asyncio loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 90.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
