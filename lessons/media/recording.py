"""Recording a room on its media worker: one WebM file per recording.

Video is muxed WITHOUT re-encoding: the recorder listens to one published
VP8 track (forwarding.ForwardingSource listeners) and writes its encoded
frames into the file as they are. Which track: the `video_peer`'s (the
host's) shared screen when the signalling side named its media section
(`screen_mid`) and that track is published, otherwise the first camera
track of that peer; it follows them as they publish and unpublish. When the
recorder switches track (and when it starts) it waits for a keyframe, which
it asks the publisher for (PLI), so that the file stays decodable.

Audio: every participant's Opus track is a separate stream; a WebM file
with one playable track needs them mixed, and mixing needs samples. So the
recorder decodes each forwarded Opus track (cheap: about 1% of a core per
speaker), mixes 20 ms blocks in mono at 48 kHz and encodes one Opus track.
Participants muted by the server are not forwarded and so not recorded.

Timeline: milliseconds since the recording started. A video track's frames
keep the spacing of their RTP timestamps from the moment its first frame
arrived; audio is one 20 ms block per tick of the mixer, which runs
MIX_DELAY behind the clock so that frames arriving a little late still
make their block.

Next to the file the recorder writes `<file>.json` with its report once the
file is complete: whoever missed the `recording.finished` event can still
pick it up (lessons.recordings.recordings_collect).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from lessons.media import forwarding
from lessons.media.protocol import CommandError

if TYPE_CHECKING:
    from lessons.media.sfu import Room

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
BLOCK_SAMPLES = 960  # 20 ms
BLOCK_BYTES = BLOCK_SAMPLES * 2  # mono s16
BLOCK_SECONDS = BLOCK_SAMPLES / SAMPLE_RATE
# The mixer runs this far behind the clock.
MIX_DELAY = 0.1
# A speaker's undecoded backlog beyond this is dropped (its clock runs fast
# or the worker stalled): the recording must not drift behind.
MAX_BUFFERED_BYTES = BLOCK_BYTES * 15
# Without a video keyframe this long after the start, the file is opened
# with a placeholder video size (the frames carry their own).
VIDEO_WAIT_SECONDS = 2.0
DEFAULT_VIDEO_SIZE = (640, 480)
KEYFRAME_RETRY_SECONDS = 0.5
# Frames of audio kept while the file waits for its first video keyframe.
PENDING_AUDIO_MAX = int(VIDEO_WAIT_SECONDS / BLOCK_SECONDS) + 50

_PATH = re.compile(r"^recordings/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+){0,4}\.webm$")
_MS = fractions.Fraction(1, 1000)
_AUDIO_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def path_check(value: Any, root: str | None) -> Path:
    """The file a `recording.start` names, under the worker's media root:
    `recordings/…/<name>.webm` of letters, digits, "-" and "_" only."""
    if not isinstance(value, str) or not _PATH.match(value):
        raise CommandError("invalid-command", "path must be recordings/<...>/<name>.webm (A-Z a-z 0-9 - _)")
    if not root:
        raise CommandError("recording-unavailable", "this worker has no directory for recordings")
    return Path(root) / value


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 keyframe (RFC 6386 §9.1)."""
    if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


def mix(blocks: list[bytes]) -> bytes:
    """Sum 20 ms blocks of mono s16 samples, clipped."""
    if len(blocks) == 1:
        return blocks[0]
    tracks = [array.array("h", block) for block in blocks]
    mixed = array.array("h", (max(-32768, min(32767, sum(samples))) for samples in zip(*tracks, strict=True)))
    return mixed.tobytes()


class _Speaker:
    """One published audio track: its decoder and what it decoded."""

    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("libopus", "r")
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.buffer = bytearray()

    def decode(self, packet: av.Packet) -> None:
        try:
            frames = self.decoder.decode(av.Packet(bytes(packet)))
        except av.FFmpegError:
            return
        for frame in frames:
            for converted in self.resampler.resample(frame):
                self.buffer += bytes(converted.planes[0])[: converted.samples * 2]
        if len(self.buffer) > MAX_BUFFERED_BYTES:
            del self.buffer[: len(self.buffer) - BLOCK_BYTES * 3]

    def take(self) -> bytes | None:
        if len(self.buffer) < BLOCK_BYTES:
            return None
        block = bytes(self.buffer[:BLOCK_BYTES])
        del self.buffer[:BLOCK_BYTES]
        return block


class Recorder:
    """The recording of one room into `path` (see the module's docstring)."""

    def __init__(
        self,
        *,
        room: Room,
        recording_id: str,
        path: Path,
        relative_path: str,
        video_peer: str | None,
        screen_mid: str | None,
    ) -> None:
        self.room = room
        self.recording_id = recording_id
        self.path = path
        self.relative_path = relative_path
        self.video_peer = video_peer
        self.screen_mid = screen_mid
        self.is_finished = False
        self.video_source: forwarding.ForwardingSource | None = None
        self.video_frames = 0
        self.audio_blocks = 0
        self._blocks_mixed = 0
        self._speakers: dict[forwarding.ForwardingSource, _Speaker] = {}
        self._container: Any = None
        self._video_stream: Any = None
        self._audio_stream: Any = None
        self._pending_audio: list[bytes] = []
        self._awaiting_keyframe = True
        self._keyframe_asked_at = 0.0
        self._rtp_base: int | None = None
        self._ms_base = 0
        self._last_video_ms = -1
        self._loop = asyncio.get_running_loop()
        self._started_at = self._loop.time()
        self._ticker: asyncio.Task[None] | None = None

    # --- life ----------------------------------------------------------------

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raise CommandError("recording-exists", "a file is already at " + self.relative_path)
        self.refresh()
        self._ticker = asyncio.ensure_future(self._tick())

    def _now_ms(self) -> int:
        return int((self._loop.time() - self._started_at) * 1000)

    async def _tick(self) -> None:
        try:
            while True:
                due = self._started_at + MIX_DELAY + (self._blocks_mixed + 1) * BLOCK_SECONDS
                await asyncio.sleep(max(0.0, due - self._loop.time()))
                while self._loop.time() >= self._started_at + MIX_DELAY + (self._blocks_mixed + 1) * BLOCK_SECONDS:
                    self._mix_block()
                self._video_watch()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("recording %s failed", self.recording_id)
            self.room.recording_finish(reason="failed")

    def _video_watch(self) -> None:
        now = self._loop.time()
        if self._container is None and now - self._started_at >= VIDEO_WAIT_SECONDS:
            self._open(DEFAULT_VIDEO_SIZE)
        # A keyframe asked for may be lost: ask again until one comes.
        is_asking_due = now - self._keyframe_asked_at >= KEYFRAME_RETRY_SECONDS
        if self._awaiting_keyframe and self.video_source is not None and is_asking_due:
            self._keyframe_ask()

    def finish(self) -> dict[str, Any]:
        """Stop, complete the file and write its report next to it;
        returns the report (recording, path, duration, size)."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if not self.is_finished:
            self.is_finished = True
            self._detach_all()
            try:
                if self._container is None:
                    self._open(DEFAULT_VIDEO_SIZE)
                if not self.audio_blocks:
                    # Stopped at once: a file with a header and a moment of
                    # silence rather than no file at all.
                    self._audio_write(bytes(BLOCK_BYTES))
                for packet in self._audio_stream.encode(None):
                    self._container.mux(packet)
            finally:
                if self._container is not None:
                    self._container.close()
        report = self.report()
        with contextlib.suppress(OSError):
            sidecar = self.path.with_name(self.path.name + ".json")
            sidecar.write_text(json.dumps(report))
        return report

    def report(self) -> dict[str, Any]:
        duration_ms = max(self._last_video_ms, int(self.audio_blocks * BLOCK_SECONDS * 1000), 0)
        try:
            size = os.path.getsize(self.path)
        except OSError:
            size = 0
        return {
            "recording": self.recording_id,
            "path": self.relative_path,
            "duration": round(duration_ms / 1000, 3),
            "size": size,
            "video_frames": self.video_frames,
        }

    # --- sources ---------------------------------------------------------------

    def refresh(self) -> None:
        """Follow the room's published tracks: every audio track is mixed,
        the chosen video track is muxed."""
        if self.is_finished:
            return
        audio: set[forwarding.ForwardingSource] = set()
        for peer in self.room.peers.values():
            for published in peer.published.values():
                if published.kind == "audio" and published.is_active and not published.source.is_closed:
                    audio.add(published.source)
        for source in tuple(self._speakers):
            if source not in audio:
                source.listeners.pop(self, None)
                del self._speakers[source]
        for source in audio - set(self._speakers):
            self._speakers[source] = _Speaker()
            source.listeners[self] = self
        video = self._video_choose()
        if video is not self.video_source:
            self._video_attach(video)

    def video_set(self, *, video_peer: str | None, screen_mid: str | None) -> None:
        self.video_peer = video_peer
        self.screen_mid = screen_mid
        self.refresh()

    def _video_choose(self) -> forwarding.ForwardingSource | None:
        peer = self.room.peers.get(self.video_peer or "")
        if peer is None:
            return None
        videos = [
            published
            for published in peer.published.values()
            if published.kind == "video" and published.is_active and not published.source.is_closed
        ]
        screen = next((item for item in videos if self.screen_mid and item.mid == self.screen_mid), None)
        if screen is not None:
            return screen.source
        cameras = sorted(
            (item for item in videos if item.mid != self.screen_mid), key=lambda item: int(item.source_id.split(".")[1])
        )
        return cameras[0].source if cameras else None

    def _video_attach(self, source: forwarding.ForwardingSource | None) -> None:
        previous = self.video_source
        if previous is not None and previous not in self._speakers:
            previous.listeners.pop(self, None)
        self.video_source = source
        self._awaiting_keyframe = True
        self._rtp_base = None
        if source is None:
            return
        source.listeners[self] = self
        recent = source.recent_frames() if source.is_forwarding else None
        if recent:
            for packet in recent:
                self.frame(source, packet, packet is recent[0])
        else:
            self._keyframe_ask()

    def _keyframe_ask(self) -> None:
        self._keyframe_asked_at = self._loop.time()
        if self.video_source is not None:
            self.video_source.keyframe_request()

    def _detach_all(self) -> None:
        for source in (*self._speakers, self.video_source):
            if source is not None:
                source.listeners.pop(self, None)
        self._speakers.clear()
        self.video_source = None

    # --- frames (forwarding.FrameListener) ------------------------------------------

    def frame(self, source: forwarding.ForwardingSource, packet: av.Packet, is_keyframe: bool) -> None:
        if self.is_finished:
            return
        if source.kind == "audio":
            speaker = self._speakers.get(source)
            if speaker is not None:
                speaker.decode(packet)
            return
        if source is not self.video_source:
            return
        if self._awaiting_keyframe:
            if not is_keyframe:
                return
            self._awaiting_keyframe = False
            if self._container is None:
                self._open(vp8_size(bytes(packet)) or DEFAULT_VIDEO_SIZE)
        rtp = packet.pts or 0
        if self._rtp_base is None:
            self._rtp_base = rtp
            self._ms_base = max(self._now_ms(), self._last_video_ms + 1)
        clock_rate = packet.time_base.denominator if packet.time_base else 90_000
        at = self._ms_base + (rtp - self._rtp_base) * 1000 // clock_rate
        at = max(at, self._last_video_ms + 1)
        copy = av.Packet(bytes(packet))
        copy.pts = copy.dts = at
        copy.time_base = _MS
        copy.is_keyframe = is_keyframe
        copy.stream = self._video_stream
        self._container.mux(copy)
        self._last_video_ms = at
        self.video_frames += 1

    def forwarding_changed(self, source: forwarding.ForwardingSource) -> None:
        # Video held back and resumed continues from a frame that needs the
        # ones never received: start again at a keyframe.
        if source is self.video_source and source.is_forwarding:
            self._awaiting_keyframe = True
            self._rtp_base = None
            self._keyframe_ask()

    # --- the file ----------------------------------------------------------------

    def _open(self, size: tuple[int, int]) -> None:
        container = av.open(str(self.path), mode="w", format="webm")
        self._video_stream = container.add_mux_stream("vp8", width=size[0], height=size[1])
        self._video_stream.time_base = _MS
        # Audio is the one stream the worker encodes: the mix of everyone.
        self._audio_stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        self._container = container
        pending, self._pending_audio = self._pending_audio, []
        for block in pending:
            self._audio_write(block)

    def _mix_block(self) -> None:
        blocks = [block for speaker in self._speakers.values() if (block := speaker.take()) is not None]
        samples = mix(blocks) if blocks else bytes(BLOCK_BYTES)
        self._blocks_mixed += 1
        if self._container is None:
            if len(self._pending_audio) < PENDING_AUDIO_MAX:
                self._pending_audio.append(samples)
            return
        self._audio_write(samples)

    def _audio_write(self, samples: bytes) -> None:
        frame = av.AudioFrame(format="s16", layout="mono", samples=BLOCK_SAMPLES)
        frame.planes[0].update(samples)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.audio_blocks * BLOCK_SAMPLES
        frame.time_base = _AUDIO_TIME_BASE
        self.audio_blocks += 1
        for packet in self._audio_stream.encode(frame):
            self._container.mux(packet)
