"""Bad commands get a clear error and leave nothing behind; participants
that vanish, never connect or never answer are cleaned up."""

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, VideoStreamTrack
from channels.layers import get_channel_layer

from lessons.media import protocol
from lessons.media.testing import Participant, ToneAudioTrack

from .conftest import until

pytestmark = pytest.mark.asyncio


def nothing_held(worker) -> bool:
    status = worker.status()
    return status["peer_count"] == 0 and status["peer_connection_count"] == 0 and status["closing_count"] == 0


async def test_malformed_sdp_gets_an_error_and_stores_nothing(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    for offer in (
        {"type": "offer", "sdp": "this is not sdp"},
        {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"},
        {"type": "answer", "sdp": "v=0\r\n"},
        {"type": "offer", "sdp": ""},
        "v=0",
    ):
        reply = await link.request("peer.join", room="r1", peer="p1", offer=offer)
        assert reply["event"] == "error"
        assert reply["ok"] is False
        assert reply["code"] == "invalid-sdp"
        assert reply["command"] == "peer.join"
        assert reply["room"] == "r1"
        assert reply["peer"] == "p1"
        assert reply["message"]
    assert worker.rooms["r1"].peers == {}
    await worker.resources.settle()
    assert nothing_held(worker)
    assert not [event for event in link.events if event["event"] == "peer.joined"]


async def test_an_offer_without_a_forwardable_codec_is_refused(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    connection = RTCPeerConnection()
    transceiver = connection.addTransceiver(VideoStreamTrack(), direction="sendonly")
    transceiver.setCodecPreferences(
        [codec for codec in RTCRtpSender.getCapabilities("video").codecs if codec.mimeType == "video/H264"]
    )
    await connection.setLocalDescription(await connection.createOffer())
    try:
        reply = await link.request(
            "peer.join", room="r1", peer="p1", offer={"type": "offer", "sdp": connection.localDescription.sdp}
        )
        assert reply["code"] == "unsupported-codec"
        assert "VP8" in reply["message"]
        await worker.resources.settle()
        assert nothing_held(worker)
    finally:
        await connection.close()


async def test_commands_are_validated(worker, link_factory):
    link = await link_factory()
    cases = [
        ({"command": "peer.join", "room": "nowhere", "peer": "p1"}, "room-not-found"),
        ({"command": "room.open", "room": "bad room id"}, "invalid-command"),
        ({"command": "room.open", "room": "x" * 65}, "invalid-command"),
        ({"command": "teleport", "room": "r1"}, "unknown-command"),
        ({"command": "room.open", "room": "r1", "group": "not a group!"}, "invalid-command"),
    ]
    for message, code in cases:
        await get_channel_layer().send(
            link.worker_channel, {**message, "reply_to": link.channel, "request_id": message["command"] + code}
        )
        reply = await link.wait_for(lambda event, rid=message["command"] + code: event.get("request_id") == rid)
        assert (reply["event"], reply["code"]) == ("error", code)
    assert worker.rooms == {}

    await link.request("room.open", room="r1")
    reply = await link.request("peer.mute", room="r1", peer="ghost", muted=True)
    assert reply["code"] == "peer-not-found"
    reply = await link.request("peer.join", room="r1", peer="p1", auto_subscribe=["smell"])
    assert reply["code"] == "invalid-command"
    reply = await link.request("peer.join", room="r1", peer="p1")
    assert reply["ok"] is True
    reply = await link.request("peer.answer", room="r1", peer="p1", revision=7, answer={"type": "answer", "sdp": "v=0"})
    assert reply["code"] == "stale-answer"
    reply = await link.request("peer.ice", room="r1", peer="p1", target="publish", candidate={"candidate": "x"})
    assert reply["code"] == "wrong-state"
    reply = await link.request("peer.ice", room="r1", peer="p1", target="sideways", candidate=None)
    assert reply["code"] == "invalid-command"
    assert list(worker.rooms["r1"].peers) == ["p1"]


async def test_a_command_without_reply_to_is_refused_quietly(worker, link_factory):
    link = await link_factory()
    await get_channel_layer().send(link.worker_channel, {"command": "room.open", "room": "quiet"})
    await until(lambda: "quiet" in worker.rooms, what="the room to open")
    await get_channel_layer().send(link.worker_channel, {"command": "nonsense"})
    await get_channel_layer().send(link.worker_channel, ["not", "a", "map"])
    await until(lambda: worker.commands_handled >= 3, what="the commands to be handled")
    assert link.events == []


async def test_an_ice_candidate_is_accepted(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    participant = Participant(link, room="r1", peer="p1", audio=ToneAudioTrack())
    try:
        await participant.join()
        candidate = "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host"
        reply = await link.request(
            "peer.ice", room="r1", peer="p1", target="publish", candidate={"candidate": candidate, "sdpMid": "0"}
        )
        assert reply["ok"] is True
        reply = await link.request("peer.ice", room="r1", peer="p1", target="publish", candidate=None)
        assert reply["ok"] is True
        reply = await link.request(
            "peer.ice", room="r1", peer="p1", target="publish", candidate={"candidate": "candidate:1 1", "sdpMid": "0"}
        )
        assert reply["code"] == "invalid-candidate"
    finally:
        await participant.close()


@pytest.fixture
def quick_consent(monkeypatch):
    """Consent freshness (RFC 7675) checked every 0.1 s instead of 5 s."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.1)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)


async def test_a_participant_that_vanishes_is_cleaned_up(worker, link_factory, quick_consent):
    link = await link_factory()
    await link.request("room.open", room="r1")
    teacher = Participant(link, room="r1", peer="teacher", video=VideoStreamTrack(), audio=ToneAudioTrack())
    pupil = Participant(await link_factory(), room="r1", peer="pupil")
    try:
        await teacher.join()
        await pupil.join()
        await until(lambda: pupil.frames_from("teacher", "video") >= 5, what="frames")
        await pupil.vanish()
        left = await link.wait_for(lambda event: event["event"] == "peer.left" and event["peer"] == "pupil")
        # aiortc ends such a connection as "closed" or "failed", whichever
        # of its transports notices first.
        assert left["reason"] in ("connection-failed", "connection-closed")
        assert list(worker.rooms["r1"].peers) == ["teacher"]
        video = next(track for track in worker.rooms["r1"].peers["teacher"].published.values() if track.kind == "video")
        assert video.source.sinks == set()
        await worker.resources.settle()
        assert worker.status()["peer_connection_count"] == 1
    finally:
        await teacher.close()
        await pupil.close()


async def test_a_bad_answer_gets_an_error_and_a_fresh_offer(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    teacher = Participant(link, room="r1", peer="teacher", audio=ToneAudioTrack())
    other = await link_factory()
    try:
        await teacher.join()
        await other.request("peer.join", room="r1", peer="other")
        offer = await other.wait_for(lambda event: event["event"] == "sdp.offer")
        reply = await other.request(
            "peer.answer",
            room="r1",
            peer="other",
            revision=offer["revision"],
            answer={"type": "answer", "sdp": "v=0\r\n"},
        )
        assert reply["code"] == "invalid-sdp"
        fresh = await other.wait_for(
            lambda event: event["event"] == "sdp.offer" and event["revision"] > offer["revision"]
        )
        assert [track["active"] for track in fresh["tracks"]] == [True]
    finally:
        await teacher.close()


async def test_room_close_removes_everyone(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    teacher = Participant(link, room="r1", peer="teacher", audio=ToneAudioTrack())
    try:
        await teacher.join()
        reply = await link.request("room.close", room="r1")
        assert reply["existed"] is True
        left = await link.wait_for(lambda event: event["event"] == "peer.left")
        assert left["reason"] == "room-closed"
        await link.wait_for(lambda event: event["event"] == "room.closed")
        assert worker.rooms == {}
        await worker.resources.settle()
        assert nothing_held(worker)
        reply = await link.request("peer.join", room="r1", peer="teacher")
        assert reply["code"] == "room-not-found"
    finally:
        await teacher.close()


async def test_joining_again_replaces_the_old_peer(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    first = Participant(link, room="r1", peer="same", audio=ToneAudioTrack())
    second = Participant(await link_factory(), room="r1", peer="same", audio=ToneAudioTrack())
    try:
        await first.join()
        await second.join()
        left = await link.wait_for(lambda event: event["event"] == "peer.left")
        assert left["reason"] == "replaced"
        assert worker.rooms["r1"].peers["same"].channel == second.link.channel
        await worker.resources.settle()
        assert worker.status()["peer_connection_count"] == 1
    finally:
        await first.close()
        await second.close()


async def test_room_events_go_to_the_room_group(worker, link_factory):
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add("lesson.7.media", listener)
    link = await link_factory()
    await link.request("room.open", room="r7", group="lesson.7.media")
    reply = await link.request("peer.join", room="r7", peer="p1")
    assert reply["ok"] is True
    event = await layer.receive(listener)
    assert (event["type"], event["event"], event["room"], event["peer"]) == (
        protocol.EVENT_TYPE,
        "peer.joined",
        "r7",
        "p1",
    )
    await link.request("peer.leave", room="r7", peer="p1")
    event = await layer.receive(listener)
    assert (event["event"], event["reason"]) == ("peer.left", "left")
    await layer.group_discard("lesson.7.media", listener)


async def test_workers_answer_a_ping_on_the_shared_channel(worker, link_factory):
    link = await link_factory()
    await get_channel_layer().send(
        protocol.ROOMS_CHANNEL, protocol.command("workers.ping", request_id="ping-1", reply_to=link.channel)
    )
    reply = await link.wait_for(
        lambda event: event.get("request_id") == "ping-1" and event["worker"] == worker.worker_id
    )
    assert reply["ok"] is True
    assert reply["room_count"] == 0
    assert reply["peer_connection_count"] == 0


async def test_stats_describe_rooms_and_peers(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="r1")
    teacher = Participant(link, room="r1", peer="teacher", audio=ToneAudioTrack())
    try:
        await teacher.join()
        reply = await link.request("stats", room="r1")
        assert reply["room_count"] == 1
        assert reply["peer_count"] == 1
        (room,) = reply["rooms"]
        (peer,) = room["peers"]
        assert peer["peer"] == "teacher"
        assert [track["kind"] for track in peer["published"]] == ["audio"]
    finally:
        await teacher.close()
