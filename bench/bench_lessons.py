"""Lessons' media worker (issue 4): the selective forwarding unit against
aiortc's stock MediaRelay and against a direct aiortc call, in the same run.

The worker runs as its own process (`python -m lessons.media`) on the bench
Redis; the stock relay runs as another (this module with the argument
"relay"), signalled over its stdin. Publishers and subscribers are aiortc
peers in the bench process; subscribers count frames without decoding them
(except where first decoded frames are timed), so the bench process is not
what limits the figures. Every subscriber gets 640×480 VP8 at 30 fps.

Figures:
- lessons.sfu_cpu_per_subscriber: CPU of the server per added subscriber
  (between 1 and BENCH_LESSONS_SUBSCRIBERS forwarded subscribers), against
  the same for MediaRelay (between 1 and 3 re-encoded subscribers). Goal:
  ratio <= 0.1.
- lessons.sfu_streams_per_core: video streams delivered at 30 fps per core
  of server CPU with BENCH_LESSONS_SUBSCRIBERS subscribers (baseline:
  MediaRelay with 3). Goal: >= 100.
- lessons.join_first_frame_p95: from peer.join to the first decoded frame of
  the teacher, BENCH_LESSONS_JOINS joins 0.7 s apart (so that none starts
  from the worker's cache of recent frames: each waits for a keyframe the
  worker asks the teacher for), against a direct aiortc-to-aiortc call from
  offer to first decoded frame. Goal: ratio <= 1.5.
- lessons.class30 (CPU) / lessons.class30_memory: a teacher (video and audio)
  and 30 pupils sending audio on one worker; pupils receive the teacher,
  the teacher hears every pupil (BENCH_LESSONS_CLASS_MESH=1: every pupil
  hears every pupil too). CPU in cores against one MediaRelay viewer; memory
  against the idle worker. Reported, with the share of frames delivered.

    make bench BENCH=lessons                         # about 80 seconds here
    BENCH_LESSONS_SECONDS=4 make bench BENCH=lessons # shorter windows
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.core import BENCH_DIR, ROOT, Result, Services, cpu_seconds, percentile, process_stop, rss_bytes

SECONDS = float(os.environ.get("BENCH_LESSONS_SECONDS", "8"))
SUBSCRIBERS = int(os.environ.get("BENCH_LESSONS_SUBSCRIBERS", "20"))
RELAY_SUBSCRIBERS = 3
JOINS = int(os.environ.get("BENCH_LESSONS_JOINS", "20"))
CLASS_SIZE = 30
CLASS_MESH = os.environ.get("BENCH_LESSONS_CLASS_MESH") == "1"
WARM_UP = 2.0


def run() -> list[Result]:
    load = os.getloadavg()[0]
    print(
        f"load average {load:.2f} on {os.cpu_count()} cores"
        + ("  (busy machine: figures are noisy)" if load > 1 else "")
    )
    services = Services()
    try:
        return asyncio.run(_run(services.environment))
    finally:
        services.close()


async def _run(environment: dict[str, str]) -> list[Result]:
    sys.path.insert(0, str(ROOT))
    relay = await _relay_measure()
    sfu = await _sfu_measure(environment)
    direct = await _direct_first_frames()

    sfu_per_subscriber = sfu["per_subscriber"]
    relay_per_subscriber = relay["per_subscriber"]
    ratio = sfu_per_subscriber / relay_per_subscriber if relay_per_subscriber else float("inf")
    join_p95 = percentile(sfu["first_frames"], 0.95) * 1000
    direct_p95 = percentile(direct, 0.95) * 1000
    class30 = sfu["class30"]
    print(
        f"relay: {relay['cpu_low']:.3f} cores with 1 subscriber, {relay['cpu_high']:.3f} with {RELAY_SUBSCRIBERS}"
        f" ({relay['fps_high'] / RELAY_SUBSCRIBERS:.1f} fps each)"
    )
    print(
        f"sfu:   {sfu['cpu_low']:.3f} cores with 1 subscriber, {sfu['cpu_high']:.3f} with {SUBSCRIBERS}"
        f" ({sfu['fps_high'] / SUBSCRIBERS:.1f} fps each); bench process {sfu['client_cpu']:.2f} cores"
    )
    print(
        f"class of {CLASS_SIZE}{' (mesh)' if CLASS_MESH else ''}: {class30['cpu']:.3f} cores,"
        f" {class30['rss'] / 1e6:.0f} MB (idle {class30['idle_rss'] / 1e6:.0f} MB),"
        f" {class30['delivered'] * 100:.0f}% of expected frames delivered"
    )
    return [
        Result(
            "lessons.sfu_cpu_per_subscriber",
            sfu_per_subscriber * 100,
            "%core",
            relay_per_subscriber * 100,
            "ratio <= 0.1",
            ratio <= 0.1,
        ),
        Result(
            "lessons.sfu_streams_per_core",
            sfu["streams_per_core"],
            "streams",
            relay["streams_per_core"],
            ">= 100",
            sfu["streams_per_core"] >= 100,
        ),
        Result(
            "lessons.join_first_frame_p95",
            join_p95,
            "ms",
            direct_p95,
            "ratio <= 1.5",
            join_p95 <= 1.5 * direct_p95,
        ),
        Result(
            "lessons.class30",
            class30["cpu"] * 100,
            "%core",
            relay_per_subscriber * 100,
            "reported",
            class30["delivered"] >= 0.9,
        ),
        Result(
            "lessons.class30_memory",
            class30["rss"] / 1e6,
            "MB",
            class30["idle_rss"] / 1e6,
            "reported",
            class30["delivered"] >= 0.9,
        ),
    ]


# --- measuring -------------------------------------------------------------------


async def _window(pid: int, frames: Callable[[], int]) -> tuple[float, float, float]:
    """Server CPU (cores), frames per second delivered and bench-process CPU
    over one window of SECONDS."""
    started, cpu, own, counted = time.monotonic(), cpu_seconds(pid), cpu_seconds(os.getpid()), frames()
    await asyncio.sleep(SECONDS)
    elapsed = time.monotonic() - started
    return (
        (cpu_seconds(pid) - cpu) / elapsed,
        (frames() - counted) / elapsed,
        (cpu_seconds(os.getpid()) - own) / elapsed,
    )


async def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("bench: timed out waiting for " + what)
        await asyncio.sleep(0.05)


# --- the selective forwarding unit ---------------------------------------------------


def _channel_layer(environment: dict[str, str]) -> Any:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    url = os.environ.get("REDIS_URL") or "unix://" + environment["EMBEDDED_REDIS_SOCKET_TEST"] + "?db=0"
    return RedisPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": None}])


async def _sfu_measure(environment: dict[str, str]) -> dict[str, Any]:
    from aiortc.mediastreams import MediaStreamTrack

    from lessons.media import protocol
    from lessons.media.testing import EncodedAudioTrack, Participant, PatternVideoTrack, WorkerLink

    worker_id = "bench-" + str(os.getpid())
    log = (BENCH_DIR / "media-worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "lessons.media", "--worker-id", worker_id],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    layer = _channel_layer(environment)
    links: list[WorkerLink] = []
    participants: list[Participant] = []

    async def link() -> WorkerLink:
        made = await WorkerLink(layer, protocol.worker_channel_name(worker_id)).start()
        links.append(made)
        return made

    def participant(made: WorkerLink, room: str, peer: str, **kwargs: Any) -> Participant:
        item = Participant(made, room=room, peer=peer, **kwargs)
        participants.append(item)
        return item

    try:
        control = await link()
        await _worker_ready(control, worker)
        idle_rss = rss_bytes(worker.pid)
        await control.request("room.open", room="bench")
        video: MediaStreamTrack = PatternVideoTrack()
        teacher = participant(control, "bench", "teacher", video=video)
        await teacher.join(auto_subscribe=[])

        subscribers = [participant(await link(), "bench", "s0", decode=False)]
        await subscribers[0].join()
        await _until(lambda: subscribers[0].frames_from("teacher", "video") > 0, "the first subscriber")
        await asyncio.sleep(WARM_UP)

        def delivered() -> int:
            return sum(item.frames_from("teacher", "video") for item in subscribers)

        cpu_low, _fps_low, _ = await _window(worker.pid, delivered)
        for index in range(1, SUBSCRIBERS):
            # Up to eight signalling channels, as if from several consumers.
            made = await link() if len(links) < 8 else links[index % 8]
            item = participant(made, "bench", "s" + str(index), decode=False)
            await item.join()
            subscribers.append(item)
        await _until(lambda: all(item.frames_from("teacher", "video") > 0 for item in subscribers), "all subscribers")
        await asyncio.sleep(WARM_UP)
        cpu_high, fps_high, client_cpu = await _window(worker.pid, delivered)
        for item in subscribers:
            await item.leave()

        first_frames = []
        for index in range(JOINS):
            # Past the worker's recent-frames cache, so that every join
            # waits for a keyframe asked of the teacher (the slow path).
            await asyncio.sleep(0.7)
            joining = participant(control, "bench", "j" + str(index))
            started = time.monotonic()
            await joining.join(auto_subscribe=["video"])
            await _until(partial(_has_first_frame, joining), "a first frame")
            first_frames.append(joining.first_frame_at[("teacher", "video")] - started)
            await joining.leave()
        await teacher.leave()

        class30 = await _class30(control, link, participant, worker, idle_rss, PatternVideoTrack, EncodedAudioTrack)
    finally:
        for item in participants:
            with contextlib.suppress(Exception):
                await item.close()
        for made in links:
            await made.close()
        process_stop(worker)
        log.close()
    return {
        "cpu_low": cpu_low,
        "cpu_high": cpu_high,
        "fps_high": fps_high,
        "client_cpu": client_cpu,
        "per_subscriber": max(0.0, (cpu_high - cpu_low) / (SUBSCRIBERS - 1)),
        "streams_per_core": (fps_high / 30) / cpu_high if cpu_high else 0.0,
        "first_frames": first_frames,
        "class30": class30,
    }


def _has_first_frame(participant: Any) -> bool:
    return ("teacher", "video") in participant.first_frame_at


async def _worker_ready(link: Any, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("the media worker exited; see var/bench/media-worker.log")
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await link.request("stats", timeout=1.0)
            return
    raise RuntimeError("the media worker did not start")


async def _class30(
    control: Any,
    link: Callable[[], Any],
    participant: Callable[..., Any],
    worker: subprocess.Popen,
    idle_rss: int,
    video_track: Callable[[], Any],
    audio_track: Callable[[], Any],
) -> dict[str, float]:
    await control.request("room.open", room="class")
    teacher = participant(control, "class", "teacher", video=video_track(), audio=audio_track(), decode=False)
    await teacher.join(auto_subscribe=["audio"])
    pupils = []
    for index in range(CLASS_SIZE):
        made = await link() if index % 6 == 0 else control
        pupil = participant(made, "class", "pupil" + str(index), audio=audio_track(), decode=False)
        await pupil.join(auto_subscribe=["audio"] if CLASS_MESH else [])
        await made.request("subscribe", room="class", peer="pupil" + str(index), publisher="teacher")
        pupils.append(pupil)
    await _until(lambda: all(pupil.frames_from("teacher", "video") > 0 for pupil in pupils), "the class", 120)
    await _until(lambda: teacher.frames_from("pupil" + str(CLASS_SIZE - 1), "audio") > 0, "the last pupil heard")
    await asyncio.sleep(WARM_UP)

    def delivered() -> int:
        return sum(sum(pupil.frames.values()) for pupil in [*pupils, teacher])

    cpu, rate, _ = await _window(worker.pid, delivered)
    rss = rss_bytes(worker.pid)
    # Audio at 50 frames/s, video at 30.
    pupil_streams = 30 + 50 + (50 * (CLASS_SIZE - 1) if CLASS_MESH else 0)
    expected = CLASS_SIZE * pupil_streams + 50 * CLASS_SIZE
    for item in [*pupils, teacher]:
        await item.leave()
    return {"cpu": cpu, "rss": rss, "idle_rss": idle_rss, "delivered": min(1.0, rate / expected)}


# --- the baselines: stock MediaRelay, and a direct call ------------------------------


async def _relay_measure() -> dict[str, float]:
    from aiortc import RTCSessionDescription

    from lessons.media.testing import PatternVideoTrack

    relay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_lessons",
        "relay",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=(BENCH_DIR / "media-relay.log").open("wb"),
    )
    stdin, stdout = relay.stdin, relay.stdout
    assert stdin is not None and stdout is not None
    connections: list[Any] = []
    counts: list[int] = []

    async def exchange(operation: str, connection: Any) -> None:
        await connection.setLocalDescription(await connection.createOffer())
        stdin.write((json.dumps({"op": operation, "sdp": connection.localDescription.sdp}) + "\n").encode())
        await stdin.drain()
        answer = json.loads(await stdout.readline())
        await connection.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def subscribe() -> None:
        index = len(counts)
        counts.append(0)
        connection = _plain_connection()
        connections.append(connection)
        transceiver = connection.addTransceiver("video", direction="recvonly")
        _prefer_vp8(transceiver)

        def count(codec: Any, frame: Any) -> None:
            counts[index] += 1

        from lessons.media import forwarding

        forwarding.tap_install(transceiver.receiver, count)
        await exchange("subscribe", connection)

    try:
        publisher = _plain_connection()
        connections.append(publisher)
        _prefer_vp8(publisher.addTransceiver(PatternVideoTrack(), direction="sendonly"))
        await exchange("publish", publisher)
        await subscribe()
        await _until(lambda: counts[0] > 0, "the relay's first subscriber")
        await asyncio.sleep(WARM_UP)
        cpu_low, _, _ = await _window(relay.pid, lambda: sum(counts))
        for _ in range(1, RELAY_SUBSCRIBERS):
            await subscribe()
        await _until(lambda: all(counts), "the relay's subscribers")
        await asyncio.sleep(WARM_UP)
        cpu_high, fps_high, _ = await _window(relay.pid, lambda: sum(counts))
    finally:
        for connection in connections:
            await connection.close()
        stdin.close()
        with contextlib.suppress(ProcessLookupError):
            relay.terminate()
        await relay.wait()
    return {
        "cpu_low": cpu_low,
        "cpu_high": cpu_high,
        "fps_high": fps_high,
        "per_subscriber": (cpu_high - cpu_low) / (RELAY_SUBSCRIBERS - 1),
        "streams_per_core": (fps_high / 30) / cpu_high if cpu_high else 0.0,
    }


async def _direct_first_frames() -> list[float]:
    """A direct aiortc call over loopback: offer to first decoded frame."""
    from lessons.media.testing import PatternVideoTrack

    times = []
    readers: set[asyncio.Task[None]] = set()
    for _ in range(JOINS):
        sending, receiving = _plain_connection(), _plain_connection()
        _prefer_vp8(sending.addTransceiver(PatternVideoTrack(), direction="sendonly"))
        first: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        @receiving.on("track")
        def on_track(track: Any, first: asyncio.Future[float] = first) -> None:
            async def read() -> None:
                await track.recv()
                if not first.done():
                    first.set_result(time.monotonic())

            readers.add(asyncio.ensure_future(read()))

        started = time.monotonic()
        await sending.setLocalDescription(await sending.createOffer())
        await receiving.setRemoteDescription(sending.localDescription)
        await receiving.setLocalDescription(await receiving.createAnswer())
        await sending.setRemoteDescription(receiving.localDescription)
        times.append(await asyncio.wait_for(first, 30) - started)
        await sending.close()
        await receiving.close()
    await asyncio.gather(*readers, return_exceptions=True)
    return times


def _plain_connection() -> Any:
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


def _prefer_vp8(transceiver: Any) -> None:
    from lessons.media import forwarding

    transceiver.setCodecPreferences(forwarding.codec_preferences("video"))


async def _relay_serve() -> None:
    """The baseline server: aiortc's own examples/server way of relaying,
    MediaRelay (decode once, encode per subscriber). Reads {"op", "sdp"}
    lines on stdin and writes the answers on stdout."""
    from aiortc import RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    relay = MediaRelay()
    source: list[Any] = []
    connections = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        message = json.loads(line)
        connection = _plain_connection()
        connections.append(connection)
        if message["op"] == "publish":
            connection.on("track", source.append)
            await connection.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
        else:
            await connection.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
            connection.getTransceivers()[0].sender.replaceTrack(relay.subscribe(source[0]))
            connection.getTransceivers()[0].direction = "sendonly"
        await connection.setLocalDescription(await connection.createAnswer())
        sys.stdout.write(json.dumps({"sdp": connection.localDescription.sdp}) + "\n")
        sys.stdout.flush()
    for connection in connections:
        await connection.close()


if __name__ == "__main__" and sys.argv[1:] == ["relay"]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(_relay_serve())
