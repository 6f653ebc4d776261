"""The worker as its own process (`python -m lessons.media`): it answers on
its channel, and on SIGTERM it closes its rooms, says so, and exits."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from lessons.media import protocol
from lessons.media.testing import WorkerLink

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.asyncio


async def test_a_worker_process_serves_and_stops_cleanly():
    worker_id = "proc-" + uuid.uuid4().hex[:10]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "VAR_DIR": str(settings.VAR_DIR),
        "EMBEDDED_REDIS_SOCKET_TEST": settings.EMBEDDED_REDIS_SOCKET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lessons.media", "--worker-id", worker_id],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    link = await WorkerLink(get_channel_layer(), protocol.worker_channel_name(worker_id)).start()
    try:
        for _ in range(150):
            try:
                reply = await link.request("stats", timeout=0.2)
                break
            except TimeoutError:
                assert process.poll() is None, process.stderr.read().decode()
        else:
            pytest.fail("the worker process did not answer")
        assert reply["worker"] == worker_id
        assert reply["pid"] == process.pid

        assert (await link.request("room.open", room="r1"))["ok"] is True
        assert (await link.request("peer.join", room="r1", peer="p1"))["ok"] is True
        process.send_signal(signal.SIGTERM)
        left = await link.wait_for(lambda event: event["event"] == "peer.left")
        assert left["reason"] == "worker-stopped"
        closed = await link.wait_for(lambda event: event["event"] == "room.closed")
        assert closed["reason"] == "worker-stopped"
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        await link.close()
