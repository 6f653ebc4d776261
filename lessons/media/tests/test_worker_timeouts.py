"""Participants that never connect or never answer the worker's offer are
removed after the configured timeouts."""

import pytest
from aiortc import RTCPeerConnection

from lessons.media.sfu import MediaSettings
from lessons.media.testing import Participant, ToneAudioTrack

from .conftest import until
from .test_worker_failures import nothing_held

pytestmark = pytest.mark.asyncio


@pytest.fixture
def media_settings() -> MediaSettings:
    # Overrides conftest's: short timeouts (generous enough for loopback).
    return MediaSettings(connect_timeout=3.0, answer_timeout=3.0, keyframe_interval=0.2)


async def test_a_participant_that_never_connects_is_removed(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    connection = RTCPeerConnection()
    connection.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await connection.setLocalDescription(await connection.createOffer())
    try:
        reply = await link.request(
            "peer.join", room="r1", peer="p1", offer={"type": "offer", "sdp": connection.localDescription.sdp}
        )
        assert reply["ok"] is True
        # The answer is never applied, so the connection cannot come up.
        left = await link.wait_for(lambda event: event["event"] == "peer.left")
        assert left["reason"] in ("connect-timeout", "connection-failed")
        await until(lambda: nothing_held(worker), what="the connection to close")
    finally:
        await connection.close()


async def test_a_subscriber_that_never_answers_is_removed(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    teacher = Participant(link, room="r1", peer="teacher", audio=ToneAudioTrack())
    silent = await link_factory()
    try:
        await teacher.join()
        reply = await silent.request("peer.join", room="r1", peer="silent")
        assert reply["ok"] is True
        offer = await silent.wait_for(lambda event: event["event"] == "sdp.offer")
        assert offer["peer"] == "silent"
        left = await silent.wait_for(lambda event: event["event"] == "peer.left")
        assert left["reason"] == "answer-timeout"
        assert list(worker.rooms["r1"].peers) == ["teacher"]
    finally:
        await teacher.close()
