"""The call's signalling end to end: a real daphne, a real media worker
process, and the example client of docs/protocol.md ("Lesson call
WebSocket") run exactly as printed there — as a member with an API token,
and as a guest by link who waits in the lobby — against a teacher written
from the same document (lessons.tests.call_client)."""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import VideoStreamTrack
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect

from accounts.services import api_token_create
from lessons import services
from lessons.media.testing import ToneAudioTrack
from lessons.models import AttendanceSession, Participant
from lessons.tests.call_client import CallClient, WebsocketTransport
from lessons.tests.factories import make_lesson_world, make_parent_meeting_now
from lessons.tests.live_media import MediaWorkerProcess
from tests.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
ENOUGH = 30


@pytest.fixture
def call_server(transactional_db, sms_outbox) -> Iterator[LiveServer]:
    worker = MediaWorkerProcess()
    try:
        server = LiveServer(extra_environment={"LESSONS_MEDIA_WORKERS": worker.worker_id})
        try:
            yield server
        finally:
            server.stop()
    finally:
        worker.stop()


def example_client() -> dict[str, Any]:
    """The Python example client of the lesson call section, executed."""
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- lesson-call-example-client -->\n```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/protocol.md must hold exactly one lesson call example client"
    namespace: dict[str, Any] = {"__name__": "lesson_call_example"}
    exec(compile(blocks[0], str(PROTOCOL_DOC), "exec"), namespace)  # noqa: S102 - our own document
    return namespace


def parent_meeting() -> tuple[Any, Any, Any]:
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    return world, meeting, meeting.occurrences.get()


async def teacher_in_call(server: LiveServer, occurrence_id: int, teacher: Any) -> CallClient:
    key = await database_sync_to_async(api_token_create)(user=teacher, name="teacher")
    url = server.url.replace("http://", "ws://") + f"/ws/lessons/{occurrence_id}/"
    socket = await connect(url, additional_headers={"Authorization": "Token " + key})
    client = CallClient(WebsocketTransport(socket), tracks=[VideoStreamTrack(), ToneAudioTrack()])
    joined = await client.join()
    assert joined["type"] == "joined", joined
    assert (await client.publish())["type"] == "answer"
    return client


async def test_the_example_client_joins_publishes_and_receives(call_server):
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    take_part = example_client()["take_part"]
    teacher = await teacher_in_call(call_server, occurrence.pk, world.teacher)
    key = await database_sync_to_async(api_token_create)(user=world.parent, name="example")
    try:
        received = await take_part(call_server.url, occurrence.pk, token=key, enough=ENOUGH, seconds=90)
        teacher_peer = teacher.frames[0]["participant"]["peer"]
        assert received[(teacher_peer, "video")] >= ENOUGH
        assert received[(teacher_peer, "audio")] >= ENOUGH
        parent = await database_sync_to_async(Participant.objects.get)(user=world.parent)
        await teacher.until_decoded("p" + str(parent.pk), "video", 5)
        await teacher.until_decoded("p" + str(parent.pk), "audio", 5)
        await teacher.wait_for(
            lambda frame: (
                frame["type"] == "call.presence"
                and frame["action"] == "left"
                and frame["participant"]["id"] == parent.pk
            )
        )
        sessions = await database_sync_to_async(
            lambda: list(AttendanceSession.objects.filter(participant=parent).values_list("left_at", flat=True))
        )()
        assert len(sessions) == 1 and sessions[0] is not None
    finally:
        await teacher.close()


async def test_the_example_client_as_a_guest_waits_until_admitted(call_server):
    world, meeting, occurrence = await database_sync_to_async(parent_meeting)()
    _link, token = await database_sync_to_async(services.join_link_create)(actor=world.teacher, meeting_id=meeting.pk)
    take_part = example_client()["take_part"]
    teacher = await teacher_in_call(call_server, occurrence.pk, world.teacher)
    try:
        guest = asyncio.ensure_future(
            take_part(call_server.url, occurrence.pk, link=token, name="Нина Петровна", enough=ENOUGH, seconds=90)
        )
        lobby = await teacher.wait_for(lambda frame: frame["type"] == "lobby.changed" and frame["participants"])
        (waiting,) = lobby["participants"]
        assert (waiting["display_name"], waiting["is_guest"]) == ("Нина Петровна", True)
        assert not guest.done()
        assert (await teacher.request({"type": "admit", "participant": waiting["id"]}))["type"] == "ack"
        received = await asyncio.wait_for(guest, 120)
        teacher_peer = teacher.frames[0]["participant"]["peer"]
        assert received[(teacher_peer, "video")] >= ENOUGH
        assert received[(teacher_peer, "audio")] >= ENOUGH
        await teacher.wait_for(
            lambda frame: (
                frame["type"] == "call.presence"
                and frame["action"] == "left"
                and frame["participant"]["id"] == waiting["id"]
            )
        )
        assert await database_sync_to_async(
            AttendanceSession.objects.filter(participant_id=waiting["id"], left_at__isnull=False).exists
        )()
    finally:
        await teacher.close()
