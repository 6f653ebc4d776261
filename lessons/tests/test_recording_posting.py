"""After the media worker: a finished recording is recorded once, collected
from the worker's report file when its event reached nobody, and posted
once — to the staff chat for a staff meeting, and for a meeting without a
class or staff chat to the call's own chat, with a link only the meeting's
people can open."""

import json
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone, translation
from rest_framework.test import APIClient

from chats.models import Attachment, Chat, ChatKind, Message
from chats.services.sync import chats_sync
from lessons import recordings, services
from lessons.models import CallMessage, MeetingKind, Participant, ParticipantRole, Recording, RecordingStatus
from lessons.tests.factories import in_minutes, make_lesson_world, make_meeting

pytestmark = pytest.mark.django_db

CONTENT = b"\x1a\x45\xdf\xa3 a webm file"


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def recording_of(meeting, media_root: Path, *, status: str = RecordingStatus.RECORDING) -> Recording:
    # The directory's chats, as the commits of a real request would make them.
    chats_sync(organisation_ids=[meeting.organisation_id])
    occurrence = meeting.occurrences.get()
    user = meeting.host
    services.meeting_join(user=user, meeting_id=meeting.pk)
    name = f"recordings/2026/11/occurrence-{occurrence.pk}-test.webm"
    (media_root / name).parent.mkdir(parents=True, exist_ok=True)
    (media_root / name).write_bytes(CONTENT)
    return Recording.objects.create(
        occurrence=occurrence, status=status, file=name, started_at=timezone.now(), started_by=user
    )


def finished(recording: Recording) -> bool:
    return recordings.recording_finished(
        recording_id=str(recording.pk), path=recording.file.name, duration=125.4, size=len(CONTENT)
    )


def download(user, url: str) -> tuple[int, bytes]:
    client = Client()
    if user is not None:
        client.force_login(user)
    response = client.get(url)
    content = b"".join(response.streaming_content) if response.status_code == 200 else b""  # type: ignore[attr-defined]
    return response.status_code, content


def test_the_workers_report_is_recorded_once_and_a_wrong_one_changes_nothing(media_root):
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(-5), is_recording_enabled=True)
    recording = recording_of(meeting, media_root)

    wrong_path = recordings.recording_finished(
        recording_id=recording.pk, path="recordings/other.webm", duration=1, size=1
    )
    garbage = recordings.recording_finished(recording_id="x", path=recording.file.name, duration="y", size=None)
    assert (wrong_path, garbage) == (False, False)
    recording.refresh_from_db()
    assert (recording.status, recording.size, recording.finished_at) == (RecordingStatus.RECORDING, None, None)

    assert finished(recording) is True
    assert finished(recording) is False
    recording.refresh_from_db()
    assert (recording.status, recording.size, recording.duration_seconds) == (
        RecordingStatus.READY,
        len(CONTENT),
        125.4,
    )
    assert recordings.duration_text(recording.duration_seconds) == "2:05"


def test_a_report_nobody_heard_is_collected_from_the_file_next_to_the_recording(media_root):
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(-5), is_recording_enabled=True)
    recording = recording_of(meeting, media_root)

    assert recordings.recording_complete(recording_id=recording.pk) is False
    recording.refresh_from_db()
    assert recording.status == RecordingStatus.RECORDING

    report = {"recording": str(recording.pk), "path": recording.file.name, "duration": 3.5, "size": len(CONTENT)}
    (media_root / (recording.file.name + ".json")).write_text(json.dumps(report))
    assert recordings.recording_complete(recording_id=recording.pk) is True
    recording.refresh_from_db()
    assert (recording.status, recording.duration_seconds) == (RecordingStatus.READY, 3.5)
    # A recording whose report never came is given up.
    other = Recording.objects.create(
        occurrence=recording.occurrence,
        status=RecordingStatus.RECORDING,
        file="recordings/x.webm",
        started_at=timezone.now(),
    )
    assert recordings.recording_fail(recording_id=other.pk) is True
    assert recordings.recording_fail(recording_id=recording.pk) is False
    other.refresh_from_db()
    assert other.status == RecordingStatus.FAILED


def test_a_recording_not_ready_is_not_posted(media_root):
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(-5), is_recording_enabled=True)
    recording = recording_of(meeting, media_root)

    recordings.recording_post(recording_id=recording.pk)

    assert not Attachment.objects.exists()
    recording.refresh_from_db()
    assert (recording.status, recording.chat_message_id) == (RecordingStatus.RECORDING, None)


def test_a_staff_meetings_recording_goes_to_the_staff_chat(media_root):
    world = make_lesson_world(students=1)
    meeting = make_meeting(
        world=world, kind=MeetingKind.STAFF_MEETING, starts_at=in_minutes(-5), is_recording_enabled=True
    )
    recording = recording_of(meeting, media_root)
    finished(recording)

    recordings.recording_post(recording_id=recording.pk)
    recordings.recording_post(recording_id=recording.pk)

    staff_chat = Chat.objects.get(organisation=world.school, kind=ChatKind.STAFF)
    attachment = Attachment.objects.get()
    assert attachment.chat_id == staff_chat.pk
    assert (attachment.content_type, attachment.size, attachment.file.name) == (
        "video/webm",
        len(CONTENT),
        recording.file.name,
    )
    assert Message.objects.filter(chat=staff_chat, attachments__isnull=False).count() == 1
    assert download(world.administrator, f"/chats/files/{attachment.pk}/") == (200, CONTENT)
    assert download(world.student, f"/chats/files/{attachment.pk}/") == (404, b"")


def test_a_consultations_recording_goes_to_the_calls_own_chat_for_its_people_only(media_root):
    world = make_lesson_world(students=2)
    meeting = make_meeting(
        world=world, kind=MeetingKind.CONSULTATION, starts_at=in_minutes(-5), is_recording_enabled=True
    )
    recording = recording_of(meeting, media_root)
    finished(recording)

    recordings.recording_post(recording_id=recording.pk)
    recordings.recording_post(recording_id=recording.pk)

    assert not Attachment.objects.exists()
    message = CallMessage.objects.get()
    host = Participant.objects.get(role=ParticipantRole.HOST)
    url = f"/lessons/recordings/{recording.pk}/file/"
    assert (message.participant_id, message.occurrence_id) == (host.pk, recording.occurrence_id)
    assert message.body.endswith("\n" + url)
    recording.refresh_from_db()
    assert (recording.status, recording.call_message_id) == (RecordingStatus.POSTED, message.pk)
    # The invited parent and the host may download it; another parent not.
    assert download(world.parents[0], url) == (200, CONTENT)
    assert download(world.teacher, url) == (200, CONTENT)
    assert download(world.parents[1], url) == (404, b"")
    status, _body = download(None, url)
    assert status == 302


def test_the_lobby_page_says_when_the_meeting_is_being_recorded(media_root):
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(-5), is_recording_enabled=True, lobby_for_everyone=True)
    client = Client()
    client.force_login(world.student)
    client.post(f"/lessons/{meeting.pk}/join/")

    before = client.get(f"/lessons/{meeting.pk}/join/").content.decode()
    recording_of(meeting, media_root)
    during = client.get(f"/lessons/{meeting.pk}/join/").content.decode()

    assert 'data-status="waiting"' in during
    assert 'id="lobby-recording"' not in before
    # "Идёт запись" once the Russian catalogue has the msgid.
    with translation.override("ru"):
        text = translation.gettext("Recording is on")
    assert f'<p id="lobby-recording" class="call-recording notice" role="status">{text}</p>' in during


def test_the_call_page_has_the_recording_banner_and_only_the_host_the_button(media_root):
    world = make_lesson_world(students=1)
    allowed = make_meeting(world=world, starts_at=in_minutes(-5), is_recording_enabled=True)
    not_allowed = make_meeting(world=world, starts_at=in_minutes(-5), title="Без записи")

    pages = {}
    for name, user, meeting in (
        ("host", world.teacher, allowed),
        ("student", world.student, allowed),
        ("host_not_allowed", world.teacher, not_allowed),
    ):
        client = Client()
        client.force_login(user)
        client.post(f"/lessons/{meeting.pk}/join/")
        pages[name] = client.get(f"/lessons/{meeting.pk}/join/").content.decode()

    banner = '<p id="call-recording" class="call-recording notice" role="status" aria-live="polite" hidden></p>'
    assert all(banner in page for page in pages.values())
    # The call's buttons carry their text before the script runs.
    assert '<button type="button" id="toggle-recording">Начать запись</button>' in pages["host"]
    assert 'id="toggle-recording"' not in pages["student"]
    assert 'id="toggle-recording"' not in pages["host_not_allowed"]
    assert 'data-recording-allowed="true"' in pages["student"]
    assert 'data-recording-allowed="false"' in pages["host_not_allowed"]


def test_the_join_status_says_whether_the_sitting_is_being_recorded(media_root):
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(-5), is_recording_enabled=True, lobby_for_everyone=True)
    client = APIClient()
    client.force_authenticate(world.student)
    client.post(f"/api/v1/meetings/{meeting.pk}/join/")

    before = client.get(f"/api/v1/meetings/{meeting.pk}/join/").json()
    recording = recording_of(meeting, media_root)
    during = client.get(f"/api/v1/meetings/{meeting.pk}/join/").json()
    finished(recording)
    after = client.get(f"/api/v1/meetings/{meeting.pk}/join/").json()

    assert during["participant"]["status"] == "waiting"
    assert (before["is_being_recorded"], during["is_being_recorded"], after["is_being_recorded"]) == (
        False,
        True,
        False,
    )
