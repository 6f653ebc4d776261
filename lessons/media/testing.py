"""aiortc participants that speak the media worker's protocol over a channel
layer, for the tests and the benchmark: what a signalling consumer and a
browser do together, in one program."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack, VideoStreamTrack

from lessons.media import forwarding, protocol

_request_ids = itertools.count(1)


class WorkerLink:
    """One reply channel on the channel layer, like one signalling consumer:
    sends commands to a worker and collects what comes back."""

    def __init__(self, layer: Any, worker_channel: str) -> None:
        self.layer = layer
        self.worker_channel = worker_channel
        self.channel = ""
        self.events: list[dict[str, Any]] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> WorkerLink:
        self.channel = await self.layer.new_channel()
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def _read(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            self.events.append(message)
            request = message.get("request_id")
            if message.get("event") in ("reply", "error") and request in self._pending:
                future = self._pending.pop(request)
                if not future.done():
                    future.set_result(message)
            for listener in tuple(self._listeners):
                listener(message)
            self._changed.set()

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[dict[str, Any]], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def request(self, name: str, *, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        """Send a command and return its reply or error event."""
        request = "r" + str(next(_request_ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        await self.layer.send(
            self.worker_channel, protocol.command(name, request_id=request, reply_to=self.channel, **fields)
        )
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request, None)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 20.0) -> dict[str, Any]:
        """The first event (already received or still to come) matching."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.events[seen:]:
                if predicate(message):
                    return message
            seen = len(self.events)
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching media event")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


def _configuration() -> RTCConfiguration:
    # No STUN on loopback: aiortc waits for every server before answering.
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class PatternVideoTrack(VideoStreamTrack):
    """640×480 at 30 fps with moving content, so the encoder produces a
    realistic bitrate (a still picture compresses to almost nothing)."""

    _frames: list[av.VideoFrame] = []

    def __init__(self) -> None:
        super().__init__()
        if not PatternVideoTrack._frames:
            PatternVideoTrack._frames = _pattern_frames(60)
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        # The same 60 frames go round; each is reused two seconds later.
        frame = self._frames[self._index % len(self._frames)]
        self._index += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


def _pattern_frames(count: int) -> list[av.VideoFrame]:
    from PIL import Image, ImageDraw

    base = Image.effect_mandelbrot((640, 480), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")
    frames = []
    for index in range(count):
        image = base.copy()
        draw = ImageDraw.Draw(image)
        x = (index * 17) % 560
        y = (index * 11) % 400
        draw.rectangle((x, y, x + 80, y + 80), fill=((index * 40) % 256, 90, 200))
        draw.ellipse((600 - x, 400 - y, 680 - x, 480 - y), fill=(250, (index * 25) % 256, 40))
        frames.append(av.VideoFrame.from_image(image).reformat(format="yuv420p"))
    return frames


class Participant:
    """A lesson participant: publishes what it is given on its publish
    connection and answers the worker's offers on its subscribe connection.
    Received frames are decoded (like a browser) unless decode=False, when
    they are only counted through the forwarding tap (a cheap load
    generator)."""

    def __init__(
        self,
        link: WorkerLink,
        *,
        room: str,
        peer: str,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        decode: bool = True,
    ) -> None:
        self.link = link
        self.room = room
        self.peer = peer
        self.video = video
        self.audio = audio
        self.decode = decode
        self.publish_connection: RTCPeerConnection | None = None
        self.subscribe_connection: RTCPeerConnection | None = None
        self.tracks: list[dict[str, Any]] = []
        # Frames received per publisher peer and kind.
        self.frames: dict[tuple[str | None, str], int] = {}
        self.first_frame_at: dict[tuple[str | None, str], float] = {}
        self.frame_sizes: list[tuple[int, int]] = []
        self.answers: list[dict[str, Any]] = []
        self._readers: set[asyncio.Task[None]] = set()
        # None ends the task that answers offers.
        self._offers: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._offer_task: asyncio.Task[None] | None = None
        self._mid_kinds: dict[str, str] = {}
        link.listen(self._on_event)

    def _on_event(self, message: dict[str, Any]) -> None:
        if message.get("event") == "sdp.offer" and message.get("peer") == self.peer:
            self._offers.put_nowait(message)

    async def join(self, **fields: Any) -> dict[str, Any]:
        """peer.join with an offer for what this participant sends."""
        offer = None
        if self.video is not None or self.audio is not None:
            connection = self.publish_connection = RTCPeerConnection(_configuration())
            for track in (self.video, self.audio):
                if track is not None:
                    transceiver = connection.addTransceiver(track, direction="sendonly")
                    transceiver.setCodecPreferences(forwarding.codec_preferences(track.kind))
            await connection.setLocalDescription(await connection.createOffer())
            assert connection.localDescription is not None
            offer = {"type": "offer", "sdp": connection.localDescription.sdp}
        self._offer_task = asyncio.ensure_future(self._answer_offers())
        reply = await self.link.request("peer.join", room=self.room, peer=self.peer, offer=offer, **fields)
        if reply.get("ok") and reply.get("answer") and self.publish_connection is not None:
            await self.publish_connection.setRemoteDescription(
                RTCSessionDescription(sdp=reply["answer"]["sdp"], type="answer")
            )
        return reply

    async def _answer_offers(self) -> None:
        while True:
            message = await self._offers.get()
            if message is None:
                return
            if self.subscribe_connection is None:
                self.subscribe_connection = RTCPeerConnection(_configuration())
                self.subscribe_connection.on("track", self._on_track)
            connection = self.subscribe_connection
            if connection.signalingState == "closed":
                # The worker closed the connection (peer.left); offers it
                # sent before that are moot.
                continue
            self.tracks = message["tracks"]
            for track in self.tracks:
                self._mid_kinds[track["mid"]] = track["kind"]
            await connection.setRemoteDescription(RTCSessionDescription(sdp=message["offer"]["sdp"], type="offer"))
            await connection.setLocalDescription(await connection.createAnswer())
            assert connection.localDescription is not None
            reply = await self.link.request(
                "peer.answer",
                room=self.room,
                peer=self.peer,
                revision=message["revision"],
                answer={"type": "answer", "sdp": connection.localDescription.sdp},
            )
            self.answers.append(reply)

    def _publisher_of(self, mid: str | None) -> str | None:
        for track in self.tracks:
            if track["mid"] == mid:
                return track["peer"]
        return None

    def _on_track(self, track: MediaStreamTrack) -> None:
        connection = self.subscribe_connection
        assert connection is not None
        transceiver = next(t for t in connection.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid
        kind = track.kind

        def count() -> None:
            key = (self._publisher_of(mid), kind)
            self.frames[key] = self.frames.get(key, 0) + 1
            self.first_frame_at.setdefault(key, time.monotonic())

        if not self.decode:
            forwarding.tap_install(transceiver.receiver, lambda codec, frame: count())
            return

        async def read() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                if isinstance(frame, av.VideoFrame):
                    self.frame_sizes.append((frame.width, frame.height))
                count()

        task = asyncio.ensure_future(read())
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    def frames_from(self, publisher: str, kind: str) -> int:
        return self.frames.get((publisher, kind), 0)

    async def leave(self) -> dict[str, Any]:
        reply = await self.link.request("peer.leave", room=self.room, peer=self.peer)
        await self.close()
        return reply

    async def close(self) -> None:
        self.link.unlisten(self._on_event)
        if self._offer_task is not None:
            # Python 3.11's wait_for can swallow a cancellation, so the task
            # is also told to stop.
            self._offers.put_nowait(None)
            self._offer_task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._offer_task
            self._offer_task = None
        for connection in (self.publish_connection, self.subscribe_connection):
            if connection is not None:
                await connection.close()
        for task in tuple(self._readers):
            task.cancel()
        await asyncio.gather(*tuple(self._readers), return_exceptions=True)

    async def vanish(self) -> None:
        """Disappear without a word: close the sockets under ICE, so no DTLS
        alert, RTCP BYE or signalling message reaches the worker."""
        if self._offer_task is not None:
            self._offers.put_nowait(None)
            self._offer_task.cancel()
        for connection in (self.publish_connection, self.subscribe_connection):
            if connection is None:
                continue
            for transceiver in connection.getTransceivers():
                ice = transceiver.receiver.transport.transport
                await ice._connection.close()


def silence() -> AudioStreamTrack:
    return AudioStreamTrack()


class ToneAudioTrack(AudioStreamTrack):
    """48 kHz mono 20 ms frames of a quiet tone (Opus encodes silence to
    almost nothing)."""

    def __init__(self) -> None:
        super().__init__()
        import math

        samples = 960
        self._payload = b"".join(
            int(3000 * math.sin(2 * math.pi * 440 * index / 48000)).to_bytes(2, "little", signed=True)
            for index in range(samples)
        )
        self._time_base = fractions.Fraction(1, 48000)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if not hasattr(self, "_timestamp"):
            self._start = time.time()
            self._timestamp = 0
        else:
            self._timestamp += 960
            wait = self._start + self._timestamp / 48000 - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._payload)
        frame.pts = self._timestamp
        frame.sample_rate = 48000
        frame.time_base = self._time_base
        return frame


class EncodedAudioTrack(MediaStreamTrack):
    """Opus packets of a tone, encoded once and replayed at 50 per second:
    an audio sender that costs its program (a load generator) no encoding."""

    kind = "audio"
    _packets: list[bytes] = []

    def __init__(self) -> None:
        super().__init__()
        if not EncodedAudioTrack._packets:
            from aiortc.codecs.opus import OpusEncoder

            encoder = OpusEncoder()
            source = ToneAudioTrack()
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(source._payload)
            frame.sample_rate = 48000
            frame.time_base = fractions.Fraction(1, 48000)
            for index in range(50):
                frame.pts = index * 960
                payloads, _timestamp = encoder.encode(frame)
                EncodedAudioTrack._packets.extend(payloads)
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self._index * 0.02 - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = self._index * 960
        packet.time_base = fractions.Fraction(1, 48000)
        self._index += 1
        return packet
