"""Forwarding encoded media with aiortc: the one module that relies on
aiortc's internals.

aiortc relays media by decoding every received track and encoding it again
for every viewer. A selective forwarding unit must do neither. The send side
already supports it: when a track's ``recv()`` returns an ``av.Packet``,
``RTCRtpSender`` only packetises it (``Encoder.pack``). The receive side has no
public way to get encoded frames out: ``RTCRtpReceiver`` hands every complete
jitter-buffer frame to a decoder thread through a private queue. Here that
queue is replaced, per receiver and before the receiver starts, by a tap that
turns each frame into an ``av.Packet`` for the subscribers; the decoder thread
still starts (``receive()`` always starts it) but only ever sees the end
marker, so no decoder is created.

What this relies on in aiortc 1.16 (``SUPPORTED_AIORTC_VERSIONS``), each
checked by ``lessons/media/tests/test_forwarding.py``:

- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue``: ``put((codec, frame))``
  from the event loop for every frame, ``put(None)`` to stop, and the decoder
  thread's ``get()``; the frame's ``data`` is the depayloaded codec frame and
  its ``timestamp`` the RTP timestamp made relative to the first frame.
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``: ``add(packet)`` returns
  ``(pli_flag, frame or None)``; for audio it is replaced (``AudioPassThrough``)
  so that each Opus packet goes on the moment it arrives.
- ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)`` to ask the publisher for a
  keyframe, and ``_RTCRtpReceiver__rtx_ssrc`` to tell retransmission SSRCs
  from the media SSRC.
- ``RTCRtpSender._send_keyframe()``, called when a subscriber sends PLI or
  FIR, and ``RTCRtpSender._stream_id`` (the msid stream id in the SDP).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiortc
import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC_VERSIONS = frozenset({"1.16.0"})

# The codecs forwarded: both ends of every forwarded stream must use the same
# one, so the server offers and accepts only these (see codec_preferences).
VIDEO_MIME_TYPE = "video/VP8"
AUDIO_MIME_TYPE = "audio/opus"

# A subscriber's queue holds at most this many frames; a sender that falls
# further behind (a stalled connection) loses the backlog and restarts at the
# next keyframe rather than growing without bound.
SINK_QUEUE_FRAMES = {"video": 60, "audio": 100}
# Frames since the last keyframe a video source keeps for subscribers that
# start (half a second at 30 fps), and how old the newest may be.
GOP_CACHE_FRAMES = 15
GOP_CACHE_AGE = 1.0
# The timestamp step used when a sink switches from one source to another,
# so that its RTP timestamps keep increasing smoothly (one frame).
FRAME_STEP = {"video": 3000, "audio": 960}

_RECEIVER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_STARTED = "_RTCRtpReceiver__started"
_RECEIVER_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"


class ForwardingUnsupported(RuntimeError):
    """The installed aiortc no longer has what encoded forwarding relies on."""


def check_aiortc() -> None:
    """Raise ForwardingUnsupported when aiortc lacks an internal this module
    uses; log a warning when its version has not been tested."""
    missing = [
        name
        for owner, name in (
            (RTCRtpReceiver, "_send_rtcp_pli"),
            (RTCRtpReceiver, "_handle_rtp_packet"),
            (RTCRtpSender, "_send_keyframe"),
            (RTCRtpSender, "_next_encoded_frame"),
        )
        if not callable(getattr(owner, name, None))
    ]
    if missing:
        raise ForwardingUnsupported("aiortc " + aiortc.__version__ + " lacks " + ", ".join(missing))
    if aiortc.__version__ not in SUPPORTED_AIORTC_VERSIONS:
        logger.warning("aiortc %s is not a version encoded forwarding was tested with", aiortc.__version__)


def codec_preferences(kind: str) -> list[Any]:
    """The codec capabilities a forwarding transceiver of this kind may use
    (for RTCRtpTransceiver.setCodecPreferences): VP8 with RTX, or Opus."""
    wanted = {VIDEO_MIME_TYPE.lower(), "video/rtx"} if kind == "video" else {AUDIO_MIME_TYPE.lower()}
    capabilities = RTCRtpSender.getCapabilities(kind)
    return [codec for codec in capabilities.codecs if codec.mimeType.lower() in wanted]


def is_vp8_keyframe(data: bytes) -> bool:
    """VP8 frame tag (RFC 6386 §9.1): bit 0 of the first byte is 0 on a key frame."""
    return bool(data) and not data[0] & 0x01


class _FrameTap:
    """Stands in for the receiver's decoder queue. The receiver puts frames
    from the event loop; aiortc's decoder thread blocks in get() until the
    receiver stops, then receives the end marker it expects."""

    def __init__(self, on_frame: Callable[[Any, Any], None]) -> None:
        self._on_frame: Callable[[Any, Any], None] | None = on_frame
        self._stopped = threading.Event()
        self.frames = 0

    def put(self, item: Any) -> None:
        if item is None:
            self._on_frame = None
            self._stopped.set()
            return
        if self._on_frame is not None:
            self.frames += 1
            codec, encoded_frame = item
            self._on_frame(codec, encoded_frame)

    def get(self) -> None:
        self._stopped.wait()

    @property
    def is_stopped(self) -> bool:
        return self._stopped.is_set()


def tap_install(receiver: RTCRtpReceiver, on_frame: Callable[[Any, Any], None]) -> _FrameTap:
    """Make `receiver` hand its encoded frames to on_frame(codec, frame)
    instead of decoding them. Must run before the receiver starts (in the
    peer connection's "track" event or right after setRemoteDescription)."""
    queue = getattr(receiver, _RECEIVER_QUEUE, None)
    if queue is None or not hasattr(queue, "put") or not hasattr(queue, "get"):
        raise ForwardingUnsupported(
            "RTCRtpReceiver has no decoder queue to replace (aiortc " + aiortc.__version__ + ")"
        )
    if getattr(receiver, _RECEIVER_STARTED, True):
        raise ForwardingUnsupported("the receiver has already started decoding")
    tap = _FrameTap(on_frame)
    setattr(receiver, _RECEIVER_QUEUE, tap)
    return tap


class AudioPassThrough:
    """Stands in for an audio receiver's jitter buffer. aiortc's holds four
    packets back before it lets one go (for its own decoder): 80 ms of delay
    at 20 ms frames, more at longer ones, and with DTX (an Opus sender that
    stops sending during silence) the last words of a sentence would wait for
    the next packet, up to 400 ms later. A forwarding unit needs no jitter
    buffer: the subscriber's has one. An Opus RTP packet is one whole frame
    (RFC 7587), so each goes on at once; a duplicate or a packet older than
    the newest one forwarded is dropped."""

    capacity = 16

    def __init__(self) -> None:
        self._last_sequence: int | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        sequence = packet.sequence_number
        if self._last_sequence is not None:
            ahead = (sequence - self._last_sequence) % 65536
            # 0: a duplicate; over half the range: an older packet.
            if ahead == 0 or ahead >= 32768:
                return False, None
        self._last_sequence = sequence
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)

    def remove(self, count: int) -> None:
        """aiortc's buffer API; nothing is held here."""


def audio_pass_through_install(receiver: RTCRtpReceiver) -> AudioPassThrough:
    """Make an audio `receiver` hand on each packet as it arrives (see
    AudioPassThrough). Must run before the receiver starts, with tap_install."""
    current = getattr(receiver, _RECEIVER_JITTER_BUFFER, None)
    if current is None or not callable(getattr(current, "add", None)):
        raise ForwardingUnsupported(
            "RTCRtpReceiver has no jitter buffer to replace (aiortc " + aiortc.__version__ + ")"
        )
    buffer = AudioPassThrough()
    setattr(receiver, _RECEIVER_JITTER_BUFFER, buffer)
    return buffer


def receiver_media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the publisher sends media with (not its retransmissions)."""
    retransmission_ssrcs = set(getattr(receiver, _RECEIVER_RTX_SSRC, {}) or {})
    sources = sorted(receiver.getSynchronizationSources(), key=lambda source: source.timestamp, reverse=True)
    for source in sources:
        if source.source not in retransmission_ssrcs:
            return source.source
    return None


def sender_on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` whenever the remote end of `sender` asks for a keyframe
    (RTCP PLI or FIR)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def sender_stream_id_set(sender: RTCRtpSender, stream_id: str) -> None:
    """The msid stream id the sender's media section announces, so that a
    browser groups a publisher's forwarded tracks into one MediaStream."""
    sender._stream_id = stream_id


class FrameListener(Protocol):
    """Takes a source's encoded frames besides its subscribers (the
    recorder). Frames are shared: a listener must not change them."""

    def frame(self, source: ForwardingSource, packet: av.Packet, is_keyframe: bool) -> None: ...

    def forwarding_changed(self, source: ForwardingSource) -> None: ...


class ForwardingSource:
    """One published track on the server: the encoded frames of the
    publisher's receiver, handed to every attached ForwardedTrack. Frames are
    copied into an ``av.Packet`` once and shared by all subscribers.

    Video keeps the frames since the last keyframe while there are few of
    them (GOP_CACHE_FRAMES): a subscriber that starts then gets them at once
    and decodes without waiting for a new keyframe. Otherwise it asks the
    publisher for one; requests are folded together while one is under way
    (30 pupils joining at once cause one PLI, not 30)."""

    def __init__(
        self,
        *,
        receiver: RTCRtpReceiver,
        kind: str,
        keyframe_interval: float = 0.5,
    ) -> None:
        self.receiver = receiver
        self.kind = kind
        self.is_forwarding = True
        self.is_closed = False
        self.frames_received = 0
        self.keyframes_received = 0
        self.keyframes_requested = 0
        self.sinks: set[ForwardedTrack] = set()
        # Others that take the encoded frames (a room's recorder), by owner.
        self.listeners: dict[object, FrameListener] = {}
        self._keyframe_interval = keyframe_interval
        # When the keyframe last asked for was requested; None once it came.
        self._keyframe_requested_at: float | None = None
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self._pli_tasks: set[asyncio.Task[None]] = set()
        self._recent: list[av.Packet] | None = None
        self._recent_at = 0.0
        self.tap = tap_install(receiver, self._on_frame)
        if kind == "audio":
            audio_pass_through_install(receiver)

    def _on_frame(self, codec: Any, encoded_frame: Any) -> None:
        self.frames_received += 1
        is_video = self.kind == "video"
        if not is_video and (not self.is_forwarding or not (self.sinks or self.listeners)):
            return
        data = encoded_frame.data
        is_keyframe = not is_video or is_vp8_keyframe(data)
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = fractions.Fraction(1, codec.clockRate)
        if is_video:
            self._recent_keep(packet, is_keyframe)
            if is_keyframe:
                self.keyframes_received += 1
                self._keyframe_requested_at = None
            if not self.is_forwarding:
                return
        for sink in tuple(self.sinks):
            sink._push(packet, is_keyframe)
        for listener in tuple(self.listeners.values()):
            listener.frame(self, packet, is_keyframe)

    def _recent_keep(self, packet: av.Packet, is_keyframe: bool) -> None:
        if is_keyframe:
            self._recent = [packet]
        elif self._recent is not None:
            if len(self._recent) >= GOP_CACHE_FRAMES:
                self._recent = None
            else:
                self._recent.append(packet)
        self._recent_at = time.monotonic()

    def recent_frames(self) -> list[av.Packet] | None:
        """The last keyframe and the frames since, if few and current."""
        if self._recent is None or time.monotonic() - self._recent_at > GOP_CACHE_AGE:
            return None
        return list(self._recent)

    def forwarding_set(self, is_forwarding: bool) -> None:
        """Stop or resume handing frames to subscribers (a server-side mute).
        On resume every video subscriber restarts at a keyframe."""
        if is_forwarding == self.is_forwarding:
            return
        self.is_forwarding = is_forwarding
        for listener in tuple(self.listeners.values()):
            listener.forwarding_changed(self)
        for sink in tuple(self.sinks):
            if is_forwarding:
                sink._await_keyframe()
            else:
                sink._queue.clear()

    def keyframe_request(self) -> None:
        """Ask the publisher for a keyframe, unless one asked for less than
        keyframe_interval ago is still on its way."""
        if self.kind != "video" or self.is_closed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        requested = self._keyframe_requested_at
        if requested is None or now - requested >= self._keyframe_interval:
            self._pli_send(now)
        elif self._keyframe_timer is None:
            # Should that keyframe be lost, ask again once the interval ends.
            self._keyframe_timer = loop.call_later(requested + self._keyframe_interval - now, self._keyframe_timer_fire)

    def _keyframe_timer_fire(self) -> None:
        self._keyframe_timer = None
        if not self.is_closed and any(sink.is_awaiting_keyframe for sink in self.sinks):
            self.keyframe_request()

    def _pli_send(self, now: float) -> None:
        ssrc = receiver_media_ssrc(self.receiver)
        if ssrc is None:
            # Nothing received yet: the publisher's first frame is a keyframe.
            return
        self._keyframe_requested_at = now
        self.keyframes_requested += 1
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(ssrc))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    def close(self) -> None:
        """Detach every subscriber; the receiver itself is stopped with its
        peer connection."""
        self.is_closed = True
        self._recent = None
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        for sink in tuple(self.sinks):
            sink.detach()
        self.listeners.clear()


class ForwardedTrack(MediaStreamTrack):
    """The track behind one of a subscriber's senders: yields the encoded
    frames of whichever ForwardingSource it is attached to, as ``av.Packet``,
    so the sender packetises them without encoding. Re-attachable, because a
    sender's track cannot end without ending the sender. Video waits for a
    keyframe after (re)attachment, after a mute and after a backlog was
    dropped; timestamps stay continuous across sources."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        # The track id the subscriber's SDP announces (msid).
        self.track_id: str | None = None
        self.source: ForwardingSource | None = None
        self.frames_forwarded = 0
        self.is_awaiting_keyframe = kind == "video"
        self._is_reading = False
        self._queue: collections.deque[av.Packet] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._last_pts: int | None = None
        self._pts_offset = 0
        self._is_rebase_due = False
        self._limit = SINK_QUEUE_FRAMES[kind]

    @property
    def id(self) -> str:
        return self.track_id or self._id

    def attach(self, source: ForwardingSource) -> None:
        if source.kind != self.kind:
            raise ValueError("cannot forward " + source.kind + " into a " + self.kind + " track")
        if self.source is source:
            return
        self.detach()
        self.source = source
        source.sinks.add(self)
        self._is_rebase_due = self._last_pts is not None
        self._await_keyframe()

    def detach(self) -> None:
        if self.source is not None:
            self.source.sinks.discard(self)
            self.source = None
        self._queue.clear()

    def _await_keyframe(self) -> None:
        """Restart video at a keyframe: the source's recent frames if it has
        them, otherwise the next keyframe, asked for."""
        if self.kind != "video":
            return
        self.is_awaiting_keyframe = True
        self._queue.clear()
        if self.source is None:
            return
        recent = self.source.recent_frames() if self.source.is_forwarding else None
        if recent is None:
            # Asked for even before the sender reads (its connection may
            # still be coming up): the keyframe then waits in the source's
            # recent frames, and the two delays overlap.
            self.source.keyframe_request()
        elif self._is_reading:
            for packet in recent:
                self._push(packet, packet is recent[0])

    def _push(self, packet: av.Packet, is_keyframe: bool) -> None:
        if not self._is_reading:
            return
        if self.is_awaiting_keyframe:
            if not is_keyframe:
                return
            self.is_awaiting_keyframe = False
        if self._is_rebase_due:
            self._is_rebase_due = False
            assert self._last_pts is not None
            self._pts_offset = self._last_pts + FRAME_STEP[self.kind] - (packet.pts or 0)
        if self._pts_offset:
            shifted = av.Packet(bytes(packet))
            shifted.pts = (packet.pts or 0) + self._pts_offset
            shifted.time_base = packet.time_base
            packet = shifted
        self._queue.append(packet)
        if len(self._queue) > self._limit:
            self._queue.clear()
            self._await_keyframe()
            if self.kind == "video":
                return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._is_reading:
            # The sender starts reading once its connection is up; frames
            # before that were never queued, so video starts at a keyframe.
            self._is_reading = True
            self._await_keyframe()
        while not self._queue:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
            if self.readyState != "live":
                raise MediaStreamError
        packet = self._queue.popleft()
        self._last_pts = packet.pts
        self.frames_forwarded += 1
        return packet

    def stop(self) -> None:
        self.detach()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        super().stop()
