"""What lessons/media/forwarding.py relies on in aiortc's internals. These
tests fail loudly when an aiortc upgrade changes any of it: read the
module's docstring, adapt the module, then add the version to
SUPPORTED_AIORTC_VERSIONS."""

import asyncio
import re
import threading
from pathlib import Path

import aiortc
import aiortc.rtcrtpreceiver
import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, VideoStreamTrack

from lessons.media import forwarding

from .conftest import until

REQUIREMENTS = Path(__file__).resolve().parents[3] / "requirements.txt"


def test_the_installed_aiortc_is_the_pinned_and_tested_one():
    pinned = re.search(r"^aiortc==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert pinned is not None, "requirements.txt must pin aiortc exactly"
    assert aiortc.__version__ == pinned.group(1)
    assert aiortc.__version__ in forwarding.SUPPORTED_AIORTC_VERSIONS
    forwarding.check_aiortc()


def test_the_codecs_forwarded_are_offered_by_aiortc():
    video = [codec.mimeType for codec in forwarding.codec_preferences("video")]
    audio = [codec.mimeType for codec in forwarding.codec_preferences("audio")]
    assert video[0] == "video/VP8"
    assert set(video) == {"video/VP8", "video/rtx"}
    assert audio == ["audio/opus"]


def test_vp8_keyframes_are_recognised():
    assert forwarding.is_vp8_keyframe(bytes([0b10010000, 0x9D, 0x01, 0x2A]))
    assert not forwarding.is_vp8_keyframe(bytes([0b10010001, 0x00, 0x00]))
    assert not forwarding.is_vp8_keyframe(b"")


async def loopback(on_frame):
    """A stock aiortc sender of VP8 into a receiver with a tap."""
    configuration = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    sending = RTCPeerConnection(configuration)
    receiving = RTCPeerConnection(configuration)
    sender = sending.addTransceiver(VideoStreamTrack(), direction="sendonly")
    sender.setCodecPreferences(forwarding.codec_preferences("video"))
    transceiver = receiving.addTransceiver("video", direction="recvonly")
    tap = forwarding.tap_install(transceiver.receiver, on_frame)
    await sending.setLocalDescription(await sending.createOffer())
    await receiving.setRemoteDescription(sending.localDescription)
    await receiving.setLocalDescription(await receiving.createAnswer())
    await sending.setRemoteDescription(receiving.localDescription)
    return sending, receiving, sender.sender, transceiver.receiver, tap


@pytest.mark.asyncio
async def test_the_tap_receives_encoded_frames_and_no_decoder_is_made(monkeypatch):
    decoders = []
    monkeypatch.setattr(
        aiortc.rtcrtpreceiver, "get_decoder", lambda codec: decoders.append(codec) or pytest.fail("decoded")
    )

    def decoder_threads():
        return [thread for thread in threading.enumerate() if thread.name.endswith("-decoder")]

    threads_before = len(decoder_threads())
    frames = []
    sending, receiving, sender, receiver, tap = await loopback(lambda codec, frame: frames.append((codec, frame)))
    try:
        await until(lambda: len(frames) >= 10, what="frames at the tap")
        codec, first = frames[0]
        assert codec.mimeType == "video/VP8"
        assert codec.clockRate == 90000
        # The receiver maps RTP timestamps to start at zero.
        assert first.timestamp == 0
        assert forwarding.is_vp8_keyframe(first.data)
        assert [frame.timestamp for _, frame in frames] == sorted(frame.timestamp for _, frame in frames)
        assert not any(forwarding.is_vp8_keyframe(frame.data) for _, frame in frames[1:5])
        assert tap.frames == len(frames)
        assert forwarding.receiver_media_ssrc(receiver) == sender._ssrc
    finally:
        await sending.close()
        await receiving.close()
    # Stopping the receiver ends aiortc's decoder thread through the tap.
    assert tap.is_stopped
    await until(lambda: len(decoder_threads()) == threads_before, what="the decoder thread to end")
    assert decoders == []


@pytest.mark.asyncio
async def test_a_keyframe_request_travels_from_receiver_to_sender():
    requests = []
    sending, receiving, sender, receiver, tap = await loopback(lambda codec, frame: None)
    try:
        forwarding.sender_on_keyframe_request(sender, lambda: requests.append("pli"))
        await until(lambda: tap.frames > 3, what="frames")
        await receiver._send_rtcp_pli(forwarding.receiver_media_ssrc(receiver))
        await until(lambda: requests, what="the PLI at the sender")
    finally:
        await sending.close()
        await receiving.close()


@pytest.mark.asyncio
async def test_a_started_receiver_cannot_be_tapped():
    sending, receiving, _sender, receiver, tap = await loopback(lambda codec, frame: None)
    try:
        await until(lambda: tap.frames > 0, what="frames")
        with pytest.raises(forwarding.ForwardingUnsupported):
            forwarding.tap_install(receiver, lambda codec, frame: None)
    finally:
        await sending.close()
        await receiving.close()


def test_forwarded_track_rebases_timestamps_when_switching_sources():
    import fractions

    import av

    track = forwarding.ForwardedTrack("video")
    track._is_reading = True

    class FakeSource:
        kind = "video"
        is_forwarding = True

        def __init__(self):
            self.sinks = set()
            self.requests = 0

        def recent_frames(self):
            return None

        def keyframe_request(self):
            self.requests += 1

    def packet(pts, data=b"\x00\x00\x00"):
        item = av.Packet(data)
        item.pts = pts
        item.time_base = fractions.Fraction(1, 90000)
        return item

    first, second = FakeSource(), FakeSource()
    track.attach(first)
    assert first.requests == 1
    track._push(packet(9000, b"\x01"), is_keyframe=False)
    assert len(track._queue) == 0  # waits for a keyframe
    track._push(packet(12000), is_keyframe=True)
    track._push(packet(15000, b"\x01"), is_keyframe=False)
    assert [item.pts for item in track._queue] == [12000, 15000]
    track._last_pts = 15000
    track._queue.clear()
    track.attach(second)
    assert first.sinks == set()
    assert second.sinks == {track}
    track._push(packet(500), is_keyframe=True)
    track._push(packet(3500, b"\x01"), is_keyframe=False)
    assert [item.pts for item in track._queue] == [18000, 21000]


@pytest.mark.asyncio
async def test_a_stopped_forwarded_track_ends_the_sender_loop():
    track = forwarding.ForwardedTrack("audio")
    reader = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(aiortc.mediastreams.MediaStreamError):
        await reader


class FakeFrame:
    def __init__(self, data: bytes, timestamp: int) -> None:
        self.data = data
        self.timestamp = timestamp


KEY = bytes([0b10010000, 0x9D, 0x01, 0x2A])
DELTA = bytes([0b10010001, 0x00, 0x00])


@pytest.fixture
async def video_source(monkeypatch):
    """A ForwardingSource on an unstarted receiver, fed by hand; PLIs are
    recorded instead of sent."""
    connection = RTCPeerConnection()
    transceiver = connection.addTransceiver("video", direction="recvonly")
    source = forwarding.ForwardingSource(receiver=transceiver.receiver, kind="video", keyframe_interval=60)
    plis = []

    async def send_pli(ssrc):
        plis.append(ssrc)

    monkeypatch.setattr(forwarding, "receiver_media_ssrc", lambda receiver: 1234)
    monkeypatch.setattr(transceiver.receiver, "_send_rtcp_pli", send_pli)
    codec = forwarding.codec_preferences("video")[0]
    timestamps = iter(range(0, 10**9, 3000))

    def feed(data):
        source._on_frame(codec, FakeFrame(data, next(timestamps)))

    yield source, feed, plis
    await connection.close()


def reading_sink(source):
    sink = forwarding.ForwardedTrack("video")
    sink._is_reading = True
    sink.attach(source)
    return sink


@pytest.mark.asyncio
async def test_a_subscriber_starts_from_the_recent_keyframe_without_asking(video_source):
    source, feed, plis = video_source
    feed(KEY)
    for _ in range(5):
        feed(DELTA)
    sink = reading_sink(source)
    assert [bytes(packet) for packet in sink._queue] == [KEY] + [DELTA] * 5
    assert not sink.is_awaiting_keyframe
    feed(DELTA)
    assert len(sink._queue) == 7
    await asyncio.sleep(0)
    assert plis == []


@pytest.mark.asyncio
async def test_after_a_long_gop_subscribers_wait_and_share_one_request(video_source):
    source, feed, plis = video_source
    feed(KEY)
    for _ in range(forwarding.GOP_CACHE_FRAMES + 1):
        feed(DELTA)
    sinks = [reading_sink(source) for _ in range(30)]
    await asyncio.sleep(0)
    assert plis == [1234]
    assert source.keyframes_requested == 1
    feed(DELTA)
    assert all(len(sink._queue) == 0 for sink in sinks)
    feed(KEY)
    assert all([bytes(packet) for packet in sink._queue] == [KEY] for sink in sinks)
    # The keyframe came, so the next one asked for is asked for at once.
    source.keyframe_request()
    await asyncio.sleep(0)
    assert plis == [1234, 1234]


@pytest.mark.asyncio
async def test_mute_holds_frames_back_and_unmute_restarts_at_a_keyframe(video_source):
    source, feed, _plis = video_source
    feed(KEY)
    sink = reading_sink(source)
    source.forwarding_set(False)
    assert len(sink._queue) == 0
    feed(DELTA)
    assert len(sink._queue) == 0
    source.forwarding_set(True)
    # The recent frames (received while muted) restart the picture.
    assert [bytes(packet) for packet in sink._queue] == [KEY, DELTA]
    feed(DELTA)
    assert len(sink._queue) == 3


class _Packet:
    def __init__(self, sequence_number: int, timestamp: int, data: bytes = b"x") -> None:
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self._data = data


def test_audio_packets_pass_through_at_once_and_stale_ones_are_dropped():
    buffer = forwarding.AudioPassThrough()
    first = buffer.add(_Packet(65534, 100, b"a"))
    assert first[0] is False and (first[1].data, first[1].timestamp) == (b"a", 100)
    assert buffer.add(_Packet(65535, 1060, b"b"))[1].data == b"b"
    assert buffer.add(_Packet(65535, 1060, b"b"))[1] is None  # a duplicate
    assert buffer.add(_Packet(2, 4900, b"c"))[1].data == b"c"  # after a wrap and a gap (DTX, a loss)
    assert buffer.add(_Packet(1, 3940, b"late"))[1] is None


@pytest.mark.asyncio
async def test_an_audio_source_replaces_the_receivers_jitter_buffer():
    connection = RTCPeerConnection()
    try:
        transceiver = connection.addTransceiver("audio", direction="recvonly")
        assert type(transceiver.receiver._RTCRtpReceiver__jitter_buffer).__name__ == "JitterBuffer"
        forwarding.ForwardingSource(receiver=transceiver.receiver, kind="audio")
        buffer = transceiver.receiver._RTCRtpReceiver__jitter_buffer
        assert isinstance(buffer, forwarding.AudioPassThrough)
    finally:
        await connection.close()
