"""200 participants join a lesson, connect, receive the teacher and leave:
afterwards the worker holds what it held before (no leaked peer
connections, forwarding state, threads, tasks or sockets)."""

import asyncio
import collections
import gc
import logging
import os
import threading

import pytest
from aiortc import VideoStreamTrack

from lessons.media.testing import EncodedAudioTrack, Participant

from .conftest import until

pytestmark = pytest.mark.asyncio

CYCLES = 200
AT_ONCE = 10
# Types only the worker makes: they must come back exactly.
WORKER_TYPES = {"Peer", "PublishedTrack", "Slot", "ForwardingSource", "ForwardedTrack"}


def census(worker) -> dict[str, int]:
    gc.collect()
    counts: collections.Counter[str] = collections.Counter()
    for item in gc.get_objects():
        name = type(item).__name__
        counts["objects"] += 1
        if name in WORKER_TYPES or name == "RTCPeerConnection":
            counts[name] += 1
        elif name == "_FrameTap" and hasattr(item._on_frame, "__self__"):
            counts["worker taps"] += 1
    counts["worker connections in memory"] = len(worker.resources.connections_in_memory)
    counts["threads"] = threading.active_count()
    counts["tasks"] = len(asyncio.all_tasks())
    counts["open files"] = len(os.listdir("/proc/self/fd"))
    return dict(counts)


async def cycle(links, index: int) -> None:
    participant = Participant(
        links[index % len(links)], room="big", peer="p" + str(index), audio=EncodedAudioTrack(), decode=False
    )
    try:
        reply = await participant.join()
        assert reply["ok"] is True, reply
        await until(lambda: participant.frames_from("teacher", "video") > 0, what="the teacher's video")
    finally:
        await participant.leave()


@pytest.fixture
def quiet_ice():
    """aioice logs every candidate pair at INFO; the test's log capture
    would keep those records, and through them every ICE connection, alive
    (the worker's entry point silences aioice the same way)."""
    logger = logging.getLogger("aioice")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


async def test_join_and_leave_200_times_leaves_nothing_behind(worker, link_factory, quiet_ice):
    links = [await link_factory() for _ in range(AT_ONCE)]
    await links[0].request("room.open", room="big")
    teacher = Participant(links[0], room="big", peer="teacher", video=VideoStreamTrack(), audio=EncodedAudioTrack())
    # The teacher receives nothing, so that nothing long-lived grows with
    # the number of pupils that came by (its senders' RTP history would).
    await teacher.join(auto_subscribe=[])
    try:
        # A first round warms every cache and pool up before counting.
        await asyncio.gather(*(cycle(links, index) for index in range(AT_ONCE)))
        await until(lambda: len(worker.rooms["big"].peers) == 1, what="the warm-up round to leave")
        await worker.resources.settle()
        status_before = worker.status()
        before = census(worker)

        for start in range(AT_ONCE, AT_ONCE + CYCLES, AT_ONCE):
            await asyncio.gather(*(cycle(links, index) for index in range(start, start + AT_ONCE)))
        await until(lambda: len(worker.rooms["big"].peers) == 1, what="everyone to leave")
        await worker.resources.settle()
        status_after = worker.status()
        after = census(worker)

        left = [event for event in links[0].events if event["event"] == "peer.left"]
        assert len(left) == AT_ONCE + CYCLES
        assert {event["reason"] for event in left} == {"left"}
        for key in ("peer_count", "peer_connection_count", "source_count", "forwarded_track_count", "closing_count"):
            assert status_after[key] == status_before[key], key
        assert status_after["peer_connection_count"] == 1
        assert all(track.source.sinks == set() for track in worker.rooms["big"].peers["teacher"].published.values())
        # The teacher's publish connection, and nothing else of the worker's.
        assert after["worker connections in memory"] == before["worker connections in memory"] == 1
        for name in [*WORKER_TYPES, "worker taps"]:
            assert after.get(name, 0) == before.get(name, 0), (name, before.get(name), after.get(name))
        # The whole process, the participants' side included, within 10 %.
        for name in ("objects", "RTCPeerConnection", "threads", "tasks", "open files"):
            assert after.get(name, 0) <= before.get(name, 0) * 1.1 + 2, (name, before.get(name), after.get(name))
    finally:
        await teacher.close()
