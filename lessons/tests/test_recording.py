"""Recording a lesson's call through the signalling socket with a real media
worker and aiortc participants: the host starts and stops it, everyone in
the call (and whoever joins later, and a guest in the lobby) is told, the
worker writes a WebM file the test opens and decodes, and the posting task
puts it into the class chat, once, where class members may download it and
nobody else may."""

from pathlib import Path

import pytest
from aiortc import VideoStreamTrack
from channels.db import database_sync_to_async
from django.test import Client

from chats.models import Attachment, Chat, ChatKind, Message
from lessons import recordings, services, tasks
from lessons.media.testing import ToneAudioTrack
from lessons.media.tests.test_recording import webm_contents
from lessons.models import Recording, RecordingStatus
from lessons.tests.factories import make_lesson_now, make_lesson_world, make_parent_meeting_now, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def tracks() -> list:
    return [VideoStreamTrack(), ToneAudioTrack()]


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, int]]:
    """The recording tasks enqueued (the test runs them itself)."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(tasks.recording_post, "delay", lambda pk: calls.append(("post", pk)))
    monkeypatch.setattr(tasks.recording_complete, "delay", lambda pk: calls.append(("complete", pk)))
    return calls


def recordings_state() -> list[tuple[str, bool]]:
    return [(item.status, item.finished_at is not None) for item in Recording.objects.order_by("id")]


def recording_files(root: str) -> list[Path]:
    return sorted(path for path in (Path(root) / "recordings").rglob("*") if path.is_file())


def download(user, url: str) -> tuple[int, bytes]:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""  # type: ignore[attr-defined]
    return response.status_code, body


async def lesson_call(world, call_clients, **meeting_fields):
    meeting = await database_sync_to_async(make_lesson_now)(world, **meeting_fields)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    student = await call_clients(occurrence.pk, world.students[0], tracks=[ToneAudioTrack()])
    joined = await teacher.join()
    assert joined["type"] == "joined", joined
    await teacher.publish()
    student_joined = await student.join()
    assert student_joined["type"] == "joined", student_joined
    await student.publish()
    await student.until_decoded(joined["participant"]["peer"], "video", 5)
    return occurrence, teacher, joined, student, student_joined


async def test_host_records_everyone_is_told_and_the_file_goes_to_the_class_chat_once(
    media_worker, call_clients, enqueued, settings
):
    world = await database_sync_to_async(make_lesson_world)(students=2)
    occurrence, teacher, joined, student, student_joined = await lesson_call(
        world, call_clients, is_recording_enabled=True
    )
    assert joined["recording"] is None
    assert student_joined["recording"] is None

    started = await teacher.request({"type": "recording", "active": True})

    assert (started["type"], started["for"], started["recording"]["active"]) == ("ack", "recording", True), started
    recording_id = started["recording"]["id"]
    told = await student.wait_for(lambda frame: frame["type"] == "call.recording")
    assert told["recording"] == {**started["recording"], "finished_at": None}
    # Whoever joins later is told on joining.
    late = await call_clients(occurrence.pk, world.students[1])
    late_joined = await late.join()
    assert late_joined["recording"]["id"] == recording_id
    assert late_joined["recording"]["active"] is True
    room = media_worker.rooms[joined["room"]]
    await until(lambda: room.recorder is not None and room.recorder.video_frames >= 60, what="60 frames recorded")

    stopped = await teacher.request({"type": "recording", "active": False})

    assert (stopped["type"], stopped["recording"]) == ("ack", {"id": recording_id}), stopped
    ended = await student.wait_for(
        lambda frame: frame["type"] == "call.recording" and frame["recording"]["active"] is False
    )
    assert ended["recording"]["finished_at"] is not None
    await late.wait_for(lambda frame: frame["type"] == "call.recording" and frame["recording"]["active"] is False)
    recording = await database_sync_to_async(Recording.objects.get)()
    assert recording.pk == recording_id
    assert recording.status == RecordingStatus.READY
    path = Path(settings.MEDIA_ROOT) / recording.file.name
    assert recording.size == path.stat().st_size > 0
    assert recording.duration_seconds > 1
    assert recording_files(settings.MEDIA_ROOT) == [path, path.with_name(path.name + ".json")]
    contents = webm_contents(path)
    assert contents["streams"] == [("video", "vp8"), ("audio", "opus")]
    assert contents["video_frames"] >= 60
    assert contents["starts_with_keyframe"] is True
    assert contents["audio_frames"] > 50
    assert contents["audio_peak"] > 1000
    # Every socket passed the worker's report on; the posting was enqueued once.
    assert enqueued.count(("post", recording_id)) == 1

    # The task runs twice (a retry, a duplicate delivery): one message.
    await database_sync_to_async(tasks.recording_post)(recording_id)
    await database_sync_to_async(tasks.recording_post)(recording_id)

    chat = await database_sync_to_async(Chat.objects.get)(study_group=world.group, kind=ChatKind.CLASS_STUDENTS)
    posted = await database_sync_to_async(
        lambda: [
            (message.author_id, message.body, [(item.content_type, item.size) for item in message.attachments.all()])
            for message in Message.objects.filter(chat=chat, attachments__isnull=False).distinct()
        ]
    )()
    assert len(posted) == 1
    author, body, attachments = posted[0]
    assert author == world.teacher.pk
    # "Запись «Урок математики», <date>, 0:02." once translated.
    assert "Урок математики" in body
    assert body.endswith(", " + recordings.duration_text(recording.duration_seconds) + ".")
    assert attachments == [("video/webm", recording.size)]
    recording = await database_sync_to_async(Recording.objects.get)()
    assert recording.status == RecordingStatus.POSTED
    attachment = await database_sync_to_async(Attachment.objects.get)(chat=chat)
    assert recording.chat_message_id == attachment.message_id
    url = f"/chats/files/{attachment.pk}/"
    status, content = await database_sync_to_async(download)(world.students[1], url)
    assert (status, content) == (200, path.read_bytes())
    # A parent of the class is not in the students' chat.
    status, content = await database_sync_to_async(download)(world.parent, url)
    assert (status, content) == (404, b"")


async def test_a_student_cannot_record_and_nothing_is_recorded(media_worker, call_clients, settings):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    _occurrence, teacher, joined, student, _joined = await lesson_call(world, call_clients, is_recording_enabled=True)

    refused = await student.request({"type": "recording", "active": True})
    stop_refused = await student.request({"type": "recording", "active": False})

    assert (refused["type"], refused["code"]) == ("error", "not_host")
    assert (stop_refused["type"], stop_refused["code"]) == ("error", "not_host")
    pong = await teacher.request({"type": "ping"})
    assert pong["type"] == "pong"
    assert await database_sync_to_async(recordings_state)() == []
    assert media_worker.rooms[joined["room"]].recorder is None
    assert not (Path(settings.MEDIA_ROOT) / "recordings").exists()
    assert [frame for frame in student.frames + teacher.frames if frame["type"] == "call.recording"] == []


async def test_recording_is_refused_when_the_meeting_does_not_allow_it(media_worker, call_clients, settings):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    _occurrence, teacher, joined, _student, _joined = await lesson_call(world, call_clients)

    refused = await teacher.request({"type": "recording", "active": True})
    not_recording = await teacher.request({"type": "recording", "active": False})
    invalid = await teacher.request({"type": "recording", "active": "yes"})

    assert (refused["type"], refused["code"]) == ("error", "recording_not_allowed")
    assert (not_recording["type"], not_recording["code"]) == ("error", "not_recording")
    assert (invalid["code"], invalid["field"]) == ("invalid", "active")
    assert await database_sync_to_async(recordings_state)() == []
    assert media_worker.rooms[joined["room"]].recorder is None
    assert not (Path(settings.MEDIA_ROOT) / "recordings").exists()


async def test_ending_the_meeting_while_recording_completes_the_file(media_worker, call_clients, enqueued, settings):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    _occurrence, teacher, joined, student, _joined = await lesson_call(world, call_clients, is_recording_enabled=True)
    started = await teacher.request({"type": "recording", "active": True})
    assert started["type"] == "ack", started
    room = media_worker.rooms[joined["room"]]
    await until(lambda: room.recorder is not None and room.recorder.video_frames >= 30, what="30 frames recorded")

    ended = await teacher.request({"type": "end"})

    assert ended["type"] == "ack"
    await student.wait_type("ended", reason="ended")
    await until(lambda: ("post", started["recording"]["id"]) in enqueued, what="the posting enqueued")
    recording = await database_sync_to_async(Recording.objects.get)()
    assert recording.status == RecordingStatus.READY
    path = Path(settings.MEDIA_ROOT) / recording.file.name
    assert recording.size == path.stat().st_size
    contents = webm_contents(path)
    assert contents["streams"] == [("video", "vp8"), ("audio", "opus")]
    assert contents["video_frames"] >= 30
    assert contents["starts_with_keyframe"] is True
    assert joined["room"] not in media_worker.rooms


async def test_a_guest_in_the_lobby_is_told_that_the_meeting_is_recorded(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world, is_recording_enabled=True)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    _link, token = await database_sync_to_async(services.join_link_create)(actor=world.teacher, meeting_id=meeting.pk)
    host = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    await host.join()
    await host.publish()
    guest = await call_clients(occurrence.pk)
    waiting = await guest.join(link=token, display_name="Бабушка")
    assert (waiting["type"], waiting["recording"]) == ("lobby", None)

    started = await host.request({"type": "recording", "active": True})
    assert started["type"] == "ack", started

    told = await guest.wait_type("call.recording")
    assert told["recording"]["active"] is True
    # Someone who comes to the lobby now hears it on arrival.
    second = await call_clients(occurrence.pk)
    _link, other_token = await database_sync_to_async(services.join_link_create)(
        actor=world.teacher, meeting_id=meeting.pk
    )
    second_waiting = await second.join(link=other_token, display_name="Дедушка")
    assert second_waiting["recording"]["active"] is True
    assert (await host.request({"type": "recording", "active": False}))["type"] == "ack"
    stopped = await guest.wait_for(
        lambda frame: frame["type"] == "call.recording" and frame["recording"]["active"] is False
    )
    assert stopped["recording"]["id"] == started["recording"]["id"]
