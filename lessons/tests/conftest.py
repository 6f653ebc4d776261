"""Fixtures of the call's tests: a media worker run in-process on the test
suite's real channel layer (Redis pub/sub), and sockets of the call through
the project's whole WebSocket stack."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.services import api_token_create
from chats.ws_auth import websocket_stack
from lessons.media.sfu import MediaSettings
from lessons.media.worker import MediaWorker
from lessons.routing import websocket_urlpatterns
from lessons.tests.call_client import CallClient, CommunicatorTransport
from lessons.tests.factories import directory_changes_forget

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def _forget_directory_changes() -> Iterator[None]:
    """A test's transaction never commits: the directory changes it made
    must not leak into the next test (see chats.tests.factories)."""
    directory_changes_forget()
    yield
    directory_changes_forget()


@pytest.fixture
async def media_worker(settings, tmp_path) -> AsyncIterator[MediaWorker]:
    """A real media worker; the signalling side places every room on it.
    MEDIA_ROOT (where it writes recordings) is the test's own directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    worker = MediaWorker(
        worker_id="test-" + uuid.uuid4().hex[:12],
        channel_layer=get_channel_layer(),
        settings=MediaSettings(
            connect_timeout=10.0, answer_timeout=10.0, keyframe_interval=0.2, recordings_root=settings.MEDIA_ROOT
        ),
    )
    task = asyncio.ensure_future(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 15)
    settings.LESSONS_MEDIA_WORKERS = [worker.worker_id]
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def socket_application() -> Any:
    return websocket_stack(URLRouter(websocket_urlpatterns))


async def open_socket(occurrence_id: int, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(socket_application(), f"/ws/lessons/{occurrence_id}/", headers=headers)
    connected, _subprotocol = await communicator.connect(timeout=5)
    assert connected
    return communicator


def token_headers(user: Any) -> list[tuple[bytes, bytes]]:
    key = api_token_create(user=user, name="test")
    return [(b"authorization", ("Token " + key).encode()), (b"accept-language", b"en")]


@pytest.fixture
async def call_clients() -> AsyncIterator[Callable[..., Awaitable[CallClient]]]:
    """make(occurrence_id, user=None, tracks=None, headers=None): a CallClient
    on a new socket, signed in by token as `user` (no credentials for None:
    a guest)."""
    made: list[tuple[CallClient, WebsocketCommunicator]] = []

    async def make(occurrence_id: int, user: Any = None, tracks: list | None = None, headers=None) -> CallClient:
        if headers is None:
            headers = (
                await database_sync_to_async(token_headers)(user) if user is not None else [(b"accept-language", b"en")]
            )
        communicator = await open_socket(occurrence_id, headers)
        client = CallClient(CommunicatorTransport(communicator), tracks=tracks)
        client.communicator = communicator  # type: ignore[attr-defined]
        made.append((client, communicator))
        return client

    yield make
    for client, communicator in made:
        await client.close()
        with contextlib.suppress(Exception):
            await communicator.disconnect(timeout=10)
