"""A media worker run in-process on the test suite's real channel layer
(Redis pub/sub), and aiortc participants that talk to it."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from channels.layers import get_channel_layer

from lessons.media import protocol
from lessons.media.sfu import MediaSettings
from lessons.media.testing import WorkerLink
from lessons.media.worker import MediaWorker


@pytest.fixture
def media_settings() -> MediaSettings:
    return MediaSettings(connect_timeout=10.0, answer_timeout=10.0, keyframe_interval=0.2)


@pytest.fixture
async def worker(media_settings) -> AsyncIterator[MediaWorker]:
    instance = MediaWorker(
        worker_id="test-" + uuid.uuid4().hex[:12], channel_layer=get_channel_layer(), settings=media_settings
    )
    task = asyncio.ensure_future(instance.run())
    await asyncio.wait_for(instance.ready.wait(), 15)
    try:
        yield instance
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def link_factory(worker) -> AsyncIterator[Callable[[], Awaitable[WorkerLink]]]:
    links: list[WorkerLink] = []

    async def make() -> WorkerLink:
        link = await WorkerLink(get_channel_layer(), protocol.worker_channel_name(worker.worker_id)).start()
        links.append(link)
        return link

    yield make
    for link in links:
        await link.close()


async def until(condition: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition") -> None:
    """Wait until condition() holds; fails the test after `timeout` seconds
    (a ceiling against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.02)
