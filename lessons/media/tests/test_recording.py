"""Recording a room on the worker: the host's encoded VP8 goes into a WebM
file without re-encoding, everyone's Opus is mixed into one track, the file
starts at a keyframe, and closing the room completes the file."""

import array
import json
from pathlib import Path

import aiortc.codecs.vpx
import av
import pytest
from aiortc import VideoStreamTrack

from lessons.media.sfu import MediaSettings
from lessons.media.testing import Participant, ToneAudioTrack

from .conftest import until

pytestmark = pytest.mark.asyncio


@pytest.fixture
def media_settings(tmp_path) -> MediaSettings:
    return MediaSettings(
        connect_timeout=10.0, answer_timeout=10.0, keyframe_interval=0.2, recordings_root=str(tmp_path)
    )


def webm_contents(path: Path) -> dict:
    """What a player finds in the file: its streams and decoded frames."""
    with av.open(str(path)) as container:
        streams = [(stream.type, stream.codec_context.name) for stream in container.streams]
        first_video = next((packet for packet in container.demux(video=0) if packet.size), None)
        first_is_keyframe = first_video.is_keyframe if first_video is not None else None
    with av.open(str(path)) as container:
        video_frames = sum(1 for _frame in container.decode(video=0))
    audio_frames = 0
    audio_peak = 0
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            audio_frames += 1
            for converted in resampler.resample(frame):
                samples = array.array("h", bytes(converted.planes[0])[: converted.samples * 2])
                audio_peak = max(audio_peak, max((abs(sample) for sample in samples), default=0))
    return {
        "audio_peak": audio_peak,
        "streams": streams,
        "video_frames": video_frames,
        "audio_frames": audio_frames,
        "starts_with_keyframe": first_is_keyframe,
    }


async def room_with_teacher_and_pupil(link_factory):
    link = await link_factory()
    assert (await link.request("room.open", room="lesson-r"))["ok"] is True
    teacher = Participant(link, room="lesson-r", peer="teacher", video=VideoStreamTrack(), audio=ToneAudioTrack())
    assert (await teacher.join())["ok"] is True
    pupil_link = await link_factory()
    pupil = Participant(pupil_link, room="lesson-r", peer="pupil", audio=ToneAudioTrack())
    assert (await pupil.join())["ok"] is True
    await until(lambda: pupil.frames_from("teacher", "video") >= 5, what="video forwarded to the pupil")
    return link, teacher, pupil


async def test_recording_muxes_the_hosts_video_without_encoding_and_mixes_audio(
    worker, link_factory, tmp_path, monkeypatch
):
    link, teacher, pupil = await room_with_teacher_and_pupil(link_factory)
    encoded_by_worker = []
    original = aiortc.codecs.vpx.Vp8Encoder.encode
    room = worker.rooms["lesson-r"]
    source = next(item.source for item in room.peers["teacher"].published.values() if item.kind == "video")

    started = await link.request(
        "recording.start", room="lesson-r", recording="rec-1", path="recordings/t/one.webm", video_peer="teacher"
    )
    # From here on only the teacher's own encoder (in this process, the
    # client side) encodes: count encoders the worker would have used.
    monkeypatch.setattr(
        aiortc.codecs.vpx.Vp8Encoder,
        "encode",
        lambda self, *args, **kwargs: encoded_by_worker.append(id(self)) or original(self, *args, **kwargs),
    )
    assert started["ok"] is True, started
    assert started["path"] == "recordings/t/one.webm"
    again = await link.request(
        "recording.start", room="lesson-r", recording="rec-2", path="recordings/t/two.webm", video_peer="teacher"
    )
    assert (again["ok"], again["code"]) == (False, "recording-active")
    await until(lambda: room.recorder is not None and room.recorder.video_frames >= 60, what="60 frames recorded")

    finished = []
    link.listen(lambda message: finished.append(message) if message.get("event") == "recording.finished" else None)
    stopped = await link.request("recording.stop", room="lesson-r")

    assert stopped["ok"] is True, stopped
    assert stopped["recording"] == "rec-1"
    assert stopped["path"] == "recordings/t/one.webm"
    path = tmp_path / "recordings" / "t" / "one.webm"
    assert stopped["size"] == path.stat().st_size > 0
    assert stopped["duration"] > 1.0
    await until(lambda: bool(finished), what="recording.finished")
    assert finished[0]["reason"] == "stopped"
    assert finished[0]["size"] == stopped["size"]
    assert json.loads((tmp_path / "recordings" / "t" / "one.webm.json").read_text())["recording"] == "rec-1"
    contents = webm_contents(path)
    assert contents["streams"] == [("video", "vp8"), ("audio", "opus")]
    assert contents["video_frames"] >= 60
    assert contents["starts_with_keyframe"] is True
    assert contents["audio_frames"] > 40
    # The tones the two participants send are heard (not the mixer's silence).
    assert contents["audio_peak"] > 1000
    # Only one VP8 encoder encoded (the teacher's own, sending): the worker
    # re-encoded nothing for the file.
    assert len(set(encoded_by_worker)) <= 1
    assert room.recorder is None
    assert not any(source.listeners for peer in room.peers.values() for item in peer.published.values())
    refused = await link.request("recording.stop", room="lesson-r")
    assert (refused["ok"], refused["code"]) == (False, "not-recording")
    await teacher.close()
    await pupil.close()


async def test_closing_the_room_completes_the_file(worker, link_factory, tmp_path):
    link, teacher, pupil = await room_with_teacher_and_pupil(link_factory)
    room = worker.rooms["lesson-r"]
    started = await link.request(
        "recording.start", room="lesson-r", recording="rec-3", path="recordings/three.webm", video_peer="teacher"
    )
    assert started["ok"] is True, started
    await until(lambda: room.recorder is not None and room.recorder.video_frames >= 20, what="frames recorded")
    finished = []
    link.listen(lambda message: finished.append(message) if message.get("event") == "recording.finished" else None)

    assert (await link.request("room.close", room="lesson-r"))["ok"] is True

    await until(lambda: bool(finished), what="recording.finished")
    assert finished[0]["reason"] == "room-closed"
    contents = webm_contents(tmp_path / "recordings" / "three.webm")
    assert contents["streams"] == [("video", "vp8"), ("audio", "opus")]
    assert contents["video_frames"] >= 20
    await teacher.close()
    await pupil.close()


async def test_bad_recording_commands_are_refused_and_write_nothing(worker, link_factory, tmp_path):
    link = await link_factory()
    assert (await link.request("room.open", room="lesson-x"))["ok"] is True
    for path in ("../escape.webm", "recordings/../x.webm", "/etc/passwd", "recordings/a.mp4", None):
        refused = await link.request("recording.start", room="lesson-x", recording="r", path=path)
        assert (refused["ok"], refused["code"]) == (False, "invalid-command"), path
    missing = await link.request("recording.start", room="nowhere", recording="r", path="recordings/a.webm")
    assert missing["code"] == "room-not-found"
    assert worker.rooms["lesson-x"].recorder is None
    assert not (tmp_path / "recordings").exists()


class _FakeSource:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.is_closed = False
        self.is_forwarding = True
        self.listeners: dict = {}
        self.keyframes_asked = 0

    def recent_frames(self):
        return None

    def keyframe_request(self) -> None:
        self.keyframes_asked += 1


def _published(source_id: str, kind: str, mid: str):
    from types import SimpleNamespace

    return SimpleNamespace(source_id=source_id, kind=kind, mid=mid, is_active=True, source=_FakeSource(kind))


async def test_the_recorder_takes_the_hosts_screen_while_shared_and_asks_for_a_keyframe(tmp_path):
    from types import SimpleNamespace

    from lessons.media.recording import Recorder

    camera = _published("teacher.0", "video", "0")
    microphone = _published("teacher.1", "audio", "1")
    screen = _published("teacher.2", "video", "2")
    pupil_camera = _published("pupil.0", "video", "0")
    teacher = SimpleNamespace(published={item.source_id: item for item in (camera, microphone, screen)})
    pupil = SimpleNamespace(published={"pupil.0": pupil_camera})
    room = SimpleNamespace(peers={"teacher": teacher, "pupil": pupil})
    recorder = Recorder(
        room=room,
        recording_id="r",
        path=tmp_path / "recordings" / "r.webm",
        relative_path="recordings/r.webm",
        video_peer="teacher",
        screen_mid=None,
    )
    recorder.start()
    try:
        # No screen named: the camera (the first video track), never the pupil's.
        assert recorder.video_source is camera.source
        assert camera.source.keyframes_asked == 1
        assert recorder in microphone.source.listeners
        assert recorder not in pupil_camera.source.listeners

        recorder.video_set(video_peer="teacher", screen_mid="2")
        assert recorder.video_source is screen.source
        assert screen.source.keyframes_asked == 1
        assert recorder not in camera.source.listeners

        # Sharing stops (its track is unpublished): back to the camera.
        del teacher.published["teacher.2"]
        recorder.video_set(video_peer="teacher", screen_mid=None)
        assert recorder.video_source is camera.source
        assert camera.source.keyframes_asked == 2
    finally:
        report = recorder.finish()
    assert report["recording"] == "r"
    assert not camera.source.listeners and not microphone.source.listeners
    # Stopped before any frame came: still a file a player opens.
    contents = webm_contents(tmp_path / "recordings" / "r.webm")
    assert contents["streams"] == [("video", "vp8"), ("audio", "opus")]
    assert (contents["video_frames"], contents["starts_with_keyframe"]) == (0, None)
