"""Recording a lesson in the browser: a real daphne, a real media worker
process and Debian's Chromium with its fake camera and microphone. The
teacher starts recording from the call page, the student's page shows the
"Идёт запись" banner (a status region), stopping is shown too, and the file
the worker wrote is a WebM with the teacher's video and sound that ends up
in the class chat."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from chats.models import Attachment, ChatKind
from lessons import tasks
from lessons.media.tests.test_recording import webm_contents
from lessons.models import Recording, RecordingStatus
from lessons.tests.factories import make_lesson_now, make_lesson_world
from tests.browser.test_lessons_call_browser import (  # noqa: F401 - fixtures
    TIMEOUT_MS,
    call_browser,
    call_server,
    join_from_the_meeting_page,
    signed_in_context,
    until,
)
from tests.live import problems_watch

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Russian once the catalogue has the new msgids (the English msgid until then).
RECORDING_ON = re.compile("Идёт запись|Recording is on")
RECORDING_STOPPED = re.compile("Запись остановлена|Recording has stopped")


def test_the_teacher_records_and_the_student_sees_the_banner(call_server, call_browser, artifacts_dir):  # noqa: F811
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world, title="Урок истории", is_recording_enabled=True)
    problems: list[str] = []
    teacher_page = signed_in_context(call_browser, call_server, world.teacher).new_page()
    student_page = signed_in_context(call_browser, call_server, world.student).new_page()
    for page in (teacher_page, student_page):
        problems_watch(page, problems)
    join_from_the_meeting_page(teacher_page, call_server, meeting.pk)
    join_from_the_meeting_page(student_page, call_server, meeting.pk)
    assert student_page.locator("#call-recording").is_hidden()
    assert student_page.locator("#toggle-recording").count() == 0

    teacher_page.locator("#toggle-recording").click()

    banner = student_page.locator("#call-recording")
    banner.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert RECORDING_ON.fullmatch(banner.inner_text())
    assert banner.get_attribute("role") == "status"
    assert banner.get_attribute("aria-live") == "polite"
    teacher_page.wait_for_selector("#call-recording:not([hidden])", timeout=TIMEOUT_MS)
    teacher_page.wait_for_selector(
        "#toggle-recording:has-text('Остановить запись'), #toggle-recording:has-text('Stop')"
    )
    student_page.screenshot(path=str(artifacts_dir / "lesson-recording-student.png"), full_page=True)
    until(
        lambda: Recording.objects.filter(status=RecordingStatus.RECORDING).exists(),
        "the recording to start",
    )
    # Let some of the teacher's video reach the file before stopping.
    recording = Recording.objects.get()
    path = Path(settings.MEDIA_ROOT) / recording.file.name
    until(lambda: path.exists() and path.stat().st_size > 50_000, "the file to grow")

    teacher_page.locator("#toggle-recording").click()

    student_page.wait_for_selector("#call-recording[data-recording=off]", timeout=TIMEOUT_MS)
    assert RECORDING_STOPPED.match(banner.inner_text())
    until(lambda: Recording.objects.get().status == RecordingStatus.READY, "the recording to be ready")
    contents = webm_contents(path)
    assert contents["streams"] == [("video", "vp8"), ("audio", "opus")]
    assert contents["video_frames"] > 10
    assert contents["starts_with_keyframe"] is True
    tasks.recording_post(recording.pk)
    attachment = Attachment.objects.select_related("chat").get()
    assert (attachment.chat.kind, attachment.chat.study_group_id) == (ChatKind.CLASS_STUDENTS, world.group.pk)
    assert [problem for problem in problems if not problem.endswith("/favicon.ico")] == []
