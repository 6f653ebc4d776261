"""A lesson's call end to end: a real daphne, a real media worker process,
Debian's Chromium with its fake camera and microphone, and an aiortc
participant speaking the documented signalling protocol.

- A teacher and a student in two pages and an aiortc pupil join one lesson;
  each receives the others' video and sound (framesDecoded and the audio
  energy of the pages' own RTCPeerConnection statistics, frames decoded by
  aiortc); the teacher turns the safe lesson off, mutes the student, removes
  the aiortc pupil and ends the lesson for everyone; attendance is recorded.
- A guest by link waits in the lobby until the teacher lets them in from
  the call page, then sees and hears the teacher.
"""

import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiortc import VideoStreamTrack
from django.conf import settings
from django.test import Client
from websockets.asyncio.client import connect

from accounts.services import api_token_create
from conftest import CHROMIUM, CHROMIUM_ARGS
from lessons import services
from lessons.media.testing import ToneAudioTrack
from lessons.models import AttendanceSession, CallPresence, Participant, ParticipantStatus
from lessons.selectors import occurrence_attendance
from lessons.tests.call_client import CallClient, WebsocketTransport
from lessons.tests.factories import make_lesson_now, make_lesson_world, make_parent_meeting_now
from lessons.tests.live_media import LoopThread, MediaWorkerProcess
from tests.browser.test_chats_browser import UNLABELLED_CONTROLS
from tests.live import LiveServer, problems_watch

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 30_000
CALL_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
# Every RTCPeerConnection a page makes, so that the test can read its statistics.
PEER_CONNECTIONS_KEPT = """
window.__peerConnections = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__peerConnections.push(this); }
};
"""
# What each participant's tile on a page receives: frames decoded, and the
# audio energy and samples of the sound played.
RECEIVED = """async () => {
  const stats = new Map();
  for (const connection of window.__peerConnections) {
    if (connection.connectionState === "closed") continue;
    (await connection.getStats()).forEach((item) => {
      if (item.type === "inbound-rtp" && item.trackIdentifier) stats.set(item.trackIdentifier, item);
    });
  }
  const received = {};
  for (const tile of document.querySelectorAll(".tile[data-peer]")) {
    const entry = {video: 0, audio_energy: 0, audio_samples: 0};
    const video = tile.querySelector("video");
    const audio = tile.querySelector("audio");
    const videoTrack = video && video.srcObject ? video.srcObject.getTracks()[0] : null;
    const audioTrack = audio && audio.srcObject ? audio.srcObject.getTracks()[0] : null;
    if (videoTrack && stats.has(videoTrack.id)) entry.video = stats.get(videoTrack.id).framesDecoded || 0;
    if (audioTrack && stats.has(audioTrack.id)) {
      entry.audio_energy = stats.get(audioTrack.id).totalAudioEnergy || 0;
      entry.audio_samples = stats.get(audioTrack.id).totalSamplesReceived || 0;
    }
    received[tile.dataset.peer] = entry;
  }
  return received;
}"""


@pytest.fixture
def call_browser(monkeypatch) -> Iterator[Any]:
    """Chromium with the fake camera and microphone, allowed without asking."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is required for browser tests: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CALL_ARGS)
        yield instance
        instance.close()


# Frames decoded of what is shown as the shared screen.
SCREEN_FRAMES = """async () => {
  const video = document.getElementById("call-screen-video");
  const track = video.srcObject ? video.srcObject.getTracks()[0] : null;
  let frames = 0;
  for (const connection of window.__peerConnections) {
    if (!track || connection.connectionState === "closed") continue;
    (await connection.getStats()).forEach((item) => {
      if (item.type === "inbound-rtp" && item.trackIdentifier === track.id) frames = item.framesDecoded || 0;
    });
  }
  return frames;
}"""


@pytest.fixture
def call_server(transactional_db, sms_outbox) -> Iterator[LiveServer]:
    """A real daphne placing every lesson on a real media worker process."""
    worker = MediaWorkerProcess()
    try:
        server = LiveServer(extra_environment={"LESSONS_MEDIA_WORKERS": worker.worker_id})
        try:
            yield server
        finally:
            server.stop()
    finally:
        worker.stop()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def signed_in_context(browser: Any, server: LiveServer, user: Any) -> Any:
    client = Client()
    client.force_login(user)
    context = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844})
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": server.url}])
    context.add_init_script(PEER_CONNECTIONS_KEPT)
    return context


def join_from_the_meeting_page(page: Any, server: LiveServer, meeting_id: int) -> None:
    page.goto(f"{server.url}/lessons/{meeting_id}/")
    page.locator("section[aria-labelledby=join-title] button[type=submit]").click()
    page.wait_for_selector("#call-start:not([hidden])", timeout=TIMEOUT_MS)
    page.locator("#start-join").click()
    page.wait_for_selector("#call-main:not([hidden])", timeout=TIMEOUT_MS)


def until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll until condition() is truthy (a ceiling against hanging, not a
    timing assertion)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + what + "; last: " + repr(last))


def received_from(page: Any, peer: str) -> dict[str, Any]:
    return page.evaluate(RECEIVED).get(peer) or {"video": 0, "audio_energy": 0, "audio_samples": 0}


def receives(page: Any, peer: str, *, frames: int = 10) -> bool:
    """Video frames decoded and sound with energy in it, from `peer`."""
    received = received_from(page, peer)
    return received["video"] >= frames and received["audio_samples"] > 0 and received["audio_energy"] > 0


def peer_of(participant: Participant) -> str:
    return "p" + str(participant.pk)


def test_teacher_student_and_an_aiortc_pupil_in_one_lesson(call_server, call_browser, loop_thread, artifacts_dir):
    world = make_lesson_world(students=2)
    meeting = make_lesson_now(world, title="Урок математики")
    occurrence = meeting.occurrences.get()
    teacher, student, pupil = world.teacher, world.students[0], world.students[1]
    problems: list[str] = []
    teacher_page = signed_in_context(call_browser, call_server, teacher).new_page()
    student_page = signed_in_context(call_browser, call_server, student).new_page()
    for page in (teacher_page, student_page):
        problems_watch(page, problems)

    join_from_the_meeting_page(teacher_page, call_server, meeting.pk)
    join_from_the_meeting_page(student_page, call_server, meeting.pk)
    assert teacher_page.locator("#call-status").inner_text() == "Вы на встрече."
    # A safe lesson: the student came in with the microphone off.
    assert student_page.locator("#toggle-microphone").inner_text() == "Включить микрофон"
    assert "Безопасный урок" in student_page.locator("#call-mode").inner_text()

    # The aiortc pupil joins by the protocol alone, with an API token.
    key = api_token_create(user=pupil, name="aiortc")
    url = call_server.url.replace("http://", "ws://") + f"/ws/lessons/{occurrence.pk}/"

    async def pupil_joins() -> CallClient:
        socket = await connect(url, additional_headers={"Authorization": "Token " + key})
        client = CallClient(WebsocketTransport(socket), tracks=[VideoStreamTrack(), ToneAudioTrack()])
        client.socket = socket  # type: ignore[attr-defined]
        joined = await client.join()
        assert joined["type"] == "joined", joined
        assert (await client.publish())["type"] == "answer"
        assert (await client.request({"type": "mute", "kind": "audio", "muted": False}))["type"] == "ack"
        return client

    pupil_client: CallClient = loop_thread.run(pupil_joins())
    participants = {
        person.user_id: person for person in Participant.objects.filter(occurrence=occurrence).select_related("user")
    }
    teacher_peer, student_peer, pupil_peer = (peer_of(participants[user.pk]) for user in (teacher, student, pupil))

    # The teacher turns the safe lesson off so that everyone sees everyone;
    # the student switches the microphone on.
    teacher_page.locator("#safe-lesson").click()
    student_page.wait_for_selector("#call-mode:not(:has-text('Безопасный урок'))", state="attached", timeout=TIMEOUT_MS)
    student_page.locator("#toggle-microphone").click()
    student_page.wait_for_selector("#toggle-microphone:has-text('Выключить микрофон')", timeout=TIMEOUT_MS)

    until(lambda: receives(teacher_page, student_peer), "the teacher's page to receive the student")
    until(lambda: receives(teacher_page, pupil_peer), "the teacher's page to receive the aiortc pupil")
    until(lambda: receives(student_page, teacher_peer), "the student's page to receive the teacher")
    until(lambda: receives(student_page, pupil_peer), "the student's page to receive the aiortc pupil")
    for peer in (teacher_peer, student_peer):
        for kind in ("video", "audio"):
            loop_thread.run(pupil_client.until_decoded(peer, kind, 10, timeout=60), timeout=90)
    teacher_page.screenshot(path=str(artifacts_dir / "lesson-call-teacher.png"), full_page=True)
    student_page.screenshot(path=str(artifacts_dir / "lesson-call-student.png"), full_page=True)
    for page in (teacher_page, student_page):
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        assert page.locator("html").get_attribute("lang") == "ru"
    assert teacher_page.locator(f'.tile[data-peer="{student_peer}"] .tile-name').inner_text() == (student.display_name)

    # The teacher switches the student's microphone off.
    student_row = teacher_page.locator(f'#call-people-list li[data-participant="{participants[student.pk].pk}"]')
    student_row.get_by_role("button", name=re.compile("Выключить микрофон")).click()
    student_page.wait_for_selector("#call-alert:has-text('Ведущий выключил ваш микрофон')", timeout=TIMEOUT_MS)
    assert student_page.locator("#toggle-microphone").inner_text() == "Включить микрофон"
    until(
        lambda: CallPresence.objects.filter(participant=participants[student.pk], is_audio_muted=True).exists(),
        "the student muted",
    )
    muted = loop_thread.run(pupil_client.wait_type("call.muted"))
    assert muted["participants"] == [participants[student.pk].pk]

    # The teacher removes the aiortc pupil, who cannot come back.
    pupil_row = teacher_page.locator(f'#call-people-list li[data-participant="{participants[pupil.pk].pk}"]')
    teacher_page.once("dialog", lambda dialog: dialog.accept())
    pupil_row.get_by_role("button", name=re.compile("Удалить")).click()
    loop_thread.run(pupil_client.wait_type("removed"))
    assert loop_thread.run(pupil_client.wait_type("closed"))["code"] == 4003
    student_page.wait_for_selector(f'.tile[data-peer="{pupil_peer}"]', state="detached", timeout=TIMEOUT_MS)
    assert Participant.objects.get(pk=participants[pupil.pk].pk).status == ParticipantStatus.REMOVED

    # The teacher ends the lesson for everyone.
    teacher_page.once("dialog", lambda dialog: dialog.accept())
    teacher_page.locator("#end-call").click()
    for page in (teacher_page, student_page):
        page.wait_for_selector("#call-status:has-text('Ведущий завершил встречу')", timeout=TIMEOUT_MS)
        assert page.locator("#call-main").is_hidden()
    loop_thread.run(pupil_client.close())

    sessions = {
        session.participant.user_id: session
        for session in AttendanceSession.objects.filter(participant__occurrence=occurrence).select_related(
            "participant"
        )
    }
    assert set(sessions) == {teacher.pk, student.pk, pupil.pk}
    assert all(session.left_at is not None and session.left_at >= session.joined_at for session in sessions.values())
    # The report counts all three as having come (the removed pupil for the time they were in).
    rows = {row.user.pk: row for row in occurrence_attendance(occurrence=occurrence) if row.user is not None}
    assert [(rows[user.pk].status, rows[user.pk].sessions) for user in (teacher, student, pupil)] == [
        ("attended", 1)
    ] * 3
    assert problems == []


def test_a_guest_waits_in_the_lobby_until_the_host_lets_them_in(call_server, call_browser, artifacts_dir):
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    occurrence = meeting.occurrences.get()
    _link, token = services.join_link_create(actor=world.teacher, meeting_id=meeting.pk, label="Бабушка")
    problems: list[str] = []
    teacher_page = signed_in_context(call_browser, call_server, world.teacher).new_page()
    problems_watch(teacher_page, problems)
    join_from_the_meeting_page(teacher_page, call_server, meeting.pk)

    guest_context = call_browser.new_context(locale="ru-RU", viewport={"width": 360, "height": 740})
    guest_context.add_init_script(PEER_CONNECTIONS_KEPT)
    guest_page = guest_context.new_page()
    problems_watch(guest_page, problems)
    guest_page.goto(f"{call_server.url}/join/{token}/")
    guest_page.get_by_label(re.compile("имя|Имя|name", re.IGNORECASE)).first.fill("Нина Петровна")
    guest_page.locator("form button[type=submit]").last.click()
    guest_page.wait_for_selector("#room[data-status=waiting]", timeout=TIMEOUT_MS)
    assert "зале ожидания" in guest_page.locator("#room").inner_text()

    # The teacher sees the guest in the lobby of the call page and lets them in.
    entry = teacher_page.locator("#call-lobby-list li", has_text="Нина Петровна")
    entry.wait_for(timeout=TIMEOUT_MS)
    entry.get_by_role("button", name=re.compile("Впустить")).click()
    guest = Participant.objects.get(occurrence=occurrence, join_link__isnull=False)
    until(lambda: Participant.objects.get(pk=guest.pk).status == ParticipantStatus.ADMITTED, "the guest admitted")

    # The lobby page notices by itself and turns into the call.
    guest_page.wait_for_selector("#call-start:not([hidden])", timeout=TIMEOUT_MS)
    guest_page.locator("#start-join").click()
    guest_page.wait_for_selector("#call-main:not([hidden])", timeout=TIMEOUT_MS)
    teacher_peer = "p" + str(Participant.objects.get(occurrence=occurrence, user=world.teacher).pk)
    until(lambda: receives(guest_page, teacher_peer), "the guest to see and hear the teacher")
    until(lambda: receives(teacher_page, "p" + str(guest.pk)), "the teacher to see and hear the guest")
    # The teacher shares the screen: the guest sees it apart from the camera.
    teacher_page.locator("#toggle-screen").click()
    teacher_page.wait_for_selector("#toggle-screen:has-text('Остановить показ')", timeout=TIMEOUT_MS)
    guest_page.wait_for_selector("#call-screen:not([hidden])", timeout=TIMEOUT_MS)
    until(lambda: guest_page.evaluate(SCREEN_FRAMES) >= 10, "the guest to see the shared screen")
    assert guest_page.locator("#call-screen-name").inner_text() == world.teacher.display_name + " показывает экран"
    guest_page.screenshot(path=str(artifacts_dir / "lesson-call-guest.png"), full_page=True)
    teacher_page.locator("#toggle-screen").click()
    guest_page.wait_for_selector("#call-screen", state="hidden", timeout=TIMEOUT_MS)
    assert receives(guest_page, teacher_peer)
    assert AttendanceSession.objects.filter(participant=guest, left_at__isnull=True).count() == 1

    guest_page.locator("#call-leave").click()
    guest_page.wait_for_selector("#call-status:has-text('Вы вышли')", timeout=TIMEOUT_MS)
    until(
        lambda: AttendanceSession.objects.filter(participant=guest, left_at__isnull=False).count() == 1,
        "the guest's attendance to end",
    )
    assert problems == []


# What a page's connections carried so far: every byte of its transports
# (RTP with headers, RTCP, DTLS, ICE), its RTP payload and headers per kind,
# and the energy of the sound it played.
TRAFFIC = """async () => {
  const traffic = {transport_in: 0, transport_out: 0, rtp_in: 0, rtp_out: 0, video_in: 0, video_out: 0,
                   audio_in_packets: 0, audio_energy: 0};
  for (const connection of window.__peerConnections) {
    if (connection.connectionState === "closed") continue;
    (await connection.getStats()).forEach((item) => {
      if (item.type === "transport") {
        traffic.transport_in += item.bytesReceived || 0;
        traffic.transport_out += item.bytesSent || 0;
      } else if (item.type === "inbound-rtp") {
        const bytes = (item.bytesReceived || 0) + (item.headerBytesReceived || 0);
        traffic.rtp_in += bytes;
        if (item.kind === "video") traffic.video_in += bytes;
        if (item.kind === "audio") {
          traffic.audio_energy += item.totalAudioEnergy || 0;
          traffic.audio_in_packets += item.packetsReceived || 0;
        }
      } else if (item.type === "outbound-rtp") {
        const bytes = (item.bytesSent || 0) + (item.headerBytesSent || 0);
        traffic.rtp_out += bytes;
        if (item.kind === "video") traffic.video_out += bytes;
      }
    });
  }
  return traffic;
}"""
AUDIO_ONLY_BUDGET_BITS_PER_SECOND = 64_000


def test_an_audio_only_pupil_receives_and_sends_within_64_kbit_s(call_server, call_browser):
    """A teacher publishes camera and microphone, another pupil speaks; the
    pupil who joined "audio only" hears the teacher, and over a window of
    about ten seconds its page received and sent at most 64 kbit/s (a bound
    on bytes measured by the page's own statistics, not a timing)."""
    world = make_lesson_world(students=2)
    meeting = make_lesson_now(world, title="Урок на слабой связи")
    occurrence = meeting.occurrences.get()
    teacher, speaker, listener = world.teacher, world.students[0], world.students[1]
    problems: list[str] = []
    teacher_page = signed_in_context(call_browser, call_server, teacher).new_page()
    speaker_page = signed_in_context(call_browser, call_server, speaker).new_page()
    listener_page = signed_in_context(call_browser, call_server, listener).new_page()
    for page in (teacher_page, speaker_page, listener_page):
        problems_watch(page, problems)

    join_from_the_meeting_page(teacher_page, call_server, meeting.pk)
    join_from_the_meeting_page(speaker_page, call_server, meeting.pk)
    # The teacher lets pupils see each other, so that the speaker's camera
    # would reach the listener too if it asked for video.
    teacher_page.locator("#safe-lesson").click()
    speaker_page.wait_for_selector("#call-mode:not(:has-text('Безопасный урок'))", state="attached", timeout=TIMEOUT_MS)
    speaker_page.locator("#toggle-microphone").click()
    speaker_page.wait_for_selector("#toggle-microphone:has-text('Выключить микрофон')", timeout=TIMEOUT_MS)

    listener_page.goto(f"{call_server.url}/lessons/{meeting.pk}/")
    listener_page.locator("section[aria-labelledby=join-title] button[type=submit]").click()
    listener_page.wait_for_selector("#call-start:not([hidden])", timeout=TIMEOUT_MS)
    listener_page.locator("#start-audio-only").check()
    listener_page.locator("#start-join").click()
    listener_page.wait_for_selector("#call-main:not([hidden])", timeout=TIMEOUT_MS)
    assert "Только звук" in listener_page.locator("#call-mode").inner_text()
    # The safe lesson is off: the listener came in with the microphone on.
    listener_page.wait_for_selector("#toggle-microphone:has-text('Выключить микрофон')", timeout=TIMEOUT_MS)

    participants = {person.user_id: person for person in Participant.objects.filter(occurrence=occurrence)}
    teacher_peer, speaker_peer, listener_peer = (
        peer_of(participants[user.pk]) for user in (teacher, speaker, listener)
    )
    until(lambda: receives(speaker_page, teacher_peer), "the speaker to see and hear the teacher")
    until(lambda: received_from(listener_page, teacher_peer)["audio_energy"] > 0, "the listener to hear the teacher")
    until(lambda: received_from(listener_page, speaker_peer)["audio_samples"] > 0, "the listener to hear the speaker")
    until(lambda: received_from(teacher_page, listener_peer)["audio_samples"] > 0, "the teacher to hear the listener")

    before = listener_page.evaluate(TRAFFIC)
    started = time.monotonic()
    time.sleep(10)
    after = listener_page.evaluate(TRAFFIC)
    seconds = time.monotonic() - started
    rate = {key: (after[key] - before[key]) * 8 / seconds for key in after}
    print("audio-only page, bit/s over", round(seconds, 1), "s:", {key: round(value) for key, value in rate.items()})
    assert after["audio_energy"] > before["audio_energy"]
    assert after["video_in"] == 0 and after["video_out"] == 0
    assert rate["transport_in"] <= AUDIO_ONLY_BUDGET_BITS_PER_SECOND
    assert rate["rtp_in"] <= AUDIO_ONLY_BUDGET_BITS_PER_SECOND
    assert rate["transport_out"] <= AUDIO_ONLY_BUDGET_BITS_PER_SECOND
    assert rate["rtp_out"] <= AUDIO_ONLY_BUDGET_BITS_PER_SECOND
    assert problems == []


# A weak link, pretended: the page's own statistics report a long round
# trip (window.__poorLink) or a very low estimate of what it can send
# (window.__lowBandwidth); everything else is real.
WEAK_LINK = """
const nativeGetStats = RTCPeerConnection.prototype.getStats;
RTCPeerConnection.prototype.getStats = async function (...args) {
  const report = await nativeGetStats.apply(this, args);
  if (!window.__poorLink && !window.__lowBandwidth) return report;
  const changed = new Map();
  report.forEach((item, key) => {
    if (item.type !== "candidate-pair") { changed.set(key, item); return; }
    const copy = {...item};
    if (window.__poorLink) copy.currentRoundTripTime = 0.9;
    if (window.__lowBandwidth) copy.availableOutgoingBitrate = 50000;
    changed.set(key, copy);
  });
  return changed;
};
"""


def test_a_weak_connection_falls_back_to_audio_only_and_says_so(call_server, call_browser, artifacts_dir):
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    occurrence = meeting.occurrences.get()
    problems: list[str] = []
    teacher_page = signed_in_context(call_browser, call_server, world.teacher).new_page()
    parent_context = signed_in_context(call_browser, call_server, world.parent)
    parent_context.add_init_script(WEAK_LINK)
    parent_page = parent_context.new_page()
    for page in (teacher_page, parent_page):
        problems_watch(page, problems)
    join_from_the_meeting_page(teacher_page, call_server, meeting.pk)
    join_from_the_meeting_page(parent_page, call_server, meeting.pk)
    parent = Participant.objects.get(occurrence=occurrence, user=world.parent)
    teacher_peer = "p" + str(Participant.objects.get(occurrence=occurrence, user=world.teacher).pk)
    until(lambda: receives(teacher_page, peer_of(parent)), "the teacher to see and hear the parent")
    until(lambda: receives(parent_page, teacher_peer), "the parent to see and hear the teacher")
    fallback = parent_page.locator("#call-fallback")
    assert fallback.is_hidden()

    # The round trip the page reports turns poor: the server switches the
    # parent to audio only, and the page says so.
    parent_page.evaluate("window.__poorLink = true")
    fallback.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert parent_page.locator("#call-fallback-text").inner_text() == "Связь слабая — включён режим «только звук»"
    assert parent_page.locator("#call-fallback-region").get_attribute("aria-live") == "polite"
    assert parent_page.locator("#toggle-camera").inner_text() == "Включить камеру"
    assert "Только звук" in parent_page.locator("#call-mode").inner_text()
    parent_page.set_viewport_size({"width": 320, "height": 640})
    assert parent_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    parent_page.screenshot(path=str(artifacts_dir / "lesson-call-fallback-320.png"), full_page=True)
    assert parent_page.evaluate(UNLABELLED_CONTROLS) == []
    until(
        lambda: CallPresence.objects.filter(participant=parent, is_audio_only=True, is_video_muted=True).exists(),
        "the parent's presence to say audio only, camera off",
    )
    teacher_page.wait_for_selector(
        f'.tile[data-peer="{peer_of(parent)}"] .tile-state:has-text("только звук")', timeout=TIMEOUT_MS
    )
    video_seen = parent_page.evaluate(RECEIVED)[teacher_peer]["video"]

    # The parent asks for video back, with the keyboard.
    parent_page.evaluate("window.__poorLink = false")
    parent_page.locator("#call-fallback-video").focus()
    parent_page.keyboard.press("Enter")
    fallback.wait_for(state="hidden", timeout=TIMEOUT_MS)
    parent_page.wait_for_selector("#toggle-camera:has-text('Выключить камеру')", timeout=TIMEOUT_MS)
    until(lambda: received_from(parent_page, teacher_peer)["video"] > video_seen + 10, "the teacher's video again")
    until(
        lambda: CallPresence.objects.filter(participant=parent, is_audio_only=False, is_video_muted=False).exists(),
        "the parent's camera on again",
    )

    # The browser estimates it can send too little for a camera: the page
    # switches to audio only by itself.
    parent_page.evaluate("window.__lowBandwidth = true")
    fallback.wait_for(state="visible", timeout=TIMEOUT_MS)
    until(
        lambda: CallPresence.objects.filter(participant=parent, is_audio_only=True, is_video_muted=True).exists(),
        "the parent's page to stop its camera",
    )
    assert problems == []


NO_HORIZONTAL_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_joining_without_javascript_at_320_px(live_daphne, browser, artifacts_dir):
    """The join pages of a guest by link and of a member, with JavaScript
    switched off on a 320 px screen: what the meeting is, the name form, the
    lobby with its "check again", and a note that sound and video need
    JavaScript."""
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    _link, token = services.join_link_create(actor=world.teacher, meeting_id=meeting.pk, label="Бабушка")
    guest_context = browser.new_context(
        locale="ru-RU", viewport={"width": 320, "height": 640}, java_script_enabled=False
    )
    guest_page = guest_context.new_page()

    guest_page.goto(f"{live_daphne.url}/join/{token}/")
    about = guest_page.locator("body").inner_text()
    assert "Родительское собрание" in about
    assert "Ведущий: " + world.teacher.display_name in about
    assert "Начало: " in about
    assert guest_page.evaluate(NO_HORIZONTAL_SCROLL)
    assert guest_page.evaluate(UNLABELLED_CONTROLS) == []
    guest_page.screenshot(path=str(artifacts_dir / "lesson-join-guest-no-js-320.png"), full_page=True)
    guest_page.get_by_label(re.compile("имя", re.IGNORECASE)).first.fill("Нина Петровна")
    guest_page.locator("form button[type=submit]").last.click()

    # The lobby: it says so and offers to check again.
    guest_page.wait_for_selector("#room[data-status=waiting]")
    assert "зале ожидания" in guest_page.locator("#room").inner_text()
    assert guest_page.locator("#room-no-script").is_visible()
    assert guest_page.evaluate(NO_HORIZONTAL_SCROLL)
    guest_page.screenshot(path=str(artifacts_dir / "lesson-lobby-guest-no-js-320.png"), full_page=True)
    guest = Participant.objects.get(occurrence__meeting=meeting, join_link__isnull=False)
    assert guest.status == ParticipantStatus.WAITING and guest.display_name == "Нина Петровна"
    services.lobby_decide(actor=world.teacher, meeting_id=meeting.pk, participant_id=guest.pk, admit=True)
    guest_page.get_by_role("button", name="Проверить ещё раз").click()
    guest_page.wait_for_selector("#room[data-status=admitted]", state="attached")
    # Let in: the call itself needs JavaScript, and the page says so.
    assert guest_page.locator("#call-status").is_visible()
    assert guest_page.locator("#room-no-script").is_visible()
    assert guest_page.locator("#call-start").is_hidden()
    assert guest_page.evaluate(NO_HORIZONTAL_SCROLL)

    # A member (a parent) joins from the meeting's page with a plain form.
    member_context = browser.new_context(
        locale="ru-RU", viewport={"width": 320, "height": 640}, java_script_enabled=False
    )
    client = Client()
    client.force_login(world.parent)
    member_context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_daphne.url,
            }
        ]
    )
    member_page = member_context.new_page()
    member_page.goto(f"{live_daphne.url}/lessons/{meeting.pk}/")
    member_page.locator("section[aria-labelledby=join-title] button[type=submit]").click()
    member_page.wait_for_selector("#room[data-status=admitted]", state="attached")
    assert member_page.url == f"{live_daphne.url}/lessons/{meeting.pk}/join/"
    assert member_page.locator("h1").inner_text() == "Родительское собрание"
    assert "Ведущий: " + world.teacher.display_name in member_page.locator("body").inner_text()
    assert member_page.locator("#room-no-script").is_visible()
    assert member_page.evaluate(NO_HORIZONTAL_SCROLL)
    assert member_page.evaluate(UNLABELLED_CONTROLS) == []
    member_page.screenshot(path=str(artifacts_dir / "lesson-join-member-no-js-320.png"), full_page=True)
    assert Participant.objects.get(occurrence__meeting=meeting, user=world.parent).status == ParticipantStatus.ADMITTED
