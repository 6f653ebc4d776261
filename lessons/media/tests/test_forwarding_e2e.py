"""A teacher publishes video and audio into a room on a worker run
in-process; two pupils receive and decode what the worker forwards without
decoding it itself."""

import asyncio

import aiortc.codecs.opus
import aiortc.codecs.vpx
import aiortc.rtcrtpreceiver
import pytest
from aiortc import VideoStreamTrack

from lessons.media import forwarding
from lessons.media.testing import Participant, ToneAudioTrack

from .conftest import until

pytestmark = pytest.mark.asyncio


@pytest.fixture
def decoders_created(monkeypatch) -> list[str]:
    """Every decoder any RTCRtpReceiver in this process creates."""
    created: list[str] = []
    original = aiortc.rtcrtpreceiver.get_decoder

    def spy(codec):
        created.append(codec.mimeType)
        return original(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", spy)
    return created


@pytest.fixture
def encoders_used(monkeypatch) -> dict[str, set[int]]:
    """Which encoder objects (by id) encoded a frame, per codec."""
    used: dict[str, set[int]] = {"VP8": set(), "opus": set()}
    for name, owner in (("VP8", aiortc.codecs.vpx.Vp8Encoder), ("opus", aiortc.codecs.opus.OpusEncoder)):
        original = owner.encode

        def encode(self, frame, force_keyframe=False, original=original, name=name):
            used[name].add(id(self))
            return original(self, frame, force_keyframe)

        monkeypatch.setattr(owner, "encode", encode)
    return used


async def lesson(link_factory, *, pupils: int = 2, **join_fields):
    teacher_link = await link_factory()
    reply = await teacher_link.request("room.open", room="lesson-1")
    assert reply["ok"] is True
    teacher = Participant(
        teacher_link, room="lesson-1", peer="teacher", video=VideoStreamTrack(), audio=ToneAudioTrack()
    )
    joined = await teacher.join()
    assert joined["ok"] is True, joined
    assert sorted(track["kind"] for track in joined["tracks"]) == ["audio", "video"]
    others = []
    for index in range(pupils):
        participant = Participant(await link_factory(), room="lesson-1", peer="pupil-" + str(index))
        reply = await participant.join(**join_fields)
        assert reply["ok"] is True, reply
        assert reply["answer"] is None
        others.append(participant)
    return teacher, others


async def test_two_pupils_decode_what_the_teacher_sends_and_the_worker_decodes_nothing(
    worker, link_factory, decoders_created, encoders_used
):
    teacher, pupils = await lesson(link_factory)
    try:
        for pupil in pupils:
            await until(lambda pupil=pupil: pupil.frames_from("teacher", "video") >= 20, what="video frames")
            await until(lambda pupil=pupil: pupil.frames_from("teacher", "audio") >= 20, what="audio frames")
            assert set(pupil.frame_sizes) == {(640, 480)}

        room = worker.rooms["lesson-1"]
        published = {track.kind: track for track in room.peers["teacher"].published.values()}
        for kind in ("audio", "video"):
            assert published[kind].source.frames_received > 0
            assert published[kind].source.tap.frames == published[kind].source.frames_received
            assert len(published[kind].source.sinks) == 2
        for pupil_id in ("pupil-0", "pupil-1"):
            forwarded = {slot.track.kind: slot.track.frames_forwarded for slot in room.peers[pupil_id].slots}
            assert forwarded["video"] > 0
            assert forwarded["audio"] > 0
        # The only decoders are the pupils' (two tracks each): the worker's
        # four receivers handed their frames on still encoded.
        assert sorted(decoders_created) == ["audio/opus", "audio/opus", "video/VP8", "video/VP8"]
        # Only the teacher's encoders encode: the worker's four senders
        # packetise the frames they are handed.
        assert {name: len(objects) for name, objects in encoders_used.items()} == {"VP8": 1, "opus": 1}
    finally:
        for participant in [teacher, *pupils]:
            await participant.close()


async def test_the_worker_reports_tracks_and_mids_to_subscribers(worker, link_factory):
    teacher, (pupil,) = await lesson(link_factory, pupils=1)
    try:
        offer = await pupil.link.wait_for(lambda event: event["event"] == "sdp.offer")
        assert offer["revision"] == 1
        assert sorted((track["peer"], track["kind"], track["active"]) for track in offer["tracks"]) == [
            ("teacher", "audio", True),
            ("teacher", "video", True),
        ]
        assert all(track["mid"] is not None for track in offer["tracks"])
        # Those in the room hear of a track as it is published; who joins
        # later finds it in the reply to peer.join.
        published = [event for event in teacher.link.events if event["event"] == "track.published"]
        assert {(event["peer"], event["kind"]) for event in published} == {("teacher", "audio"), ("teacher", "video")}
        assert all(event["source"].startswith("teacher.") for event in published)
        joined = next(
            event for event in pupil.link.events if event["event"] == "reply" and event["command"] == "peer.join"
        )
        assert joined["peers"] == ["teacher"]
        assert {(track["peer"], track["kind"], track["muted"]) for track in joined["published"]} == {
            ("teacher", "audio", False),
            ("teacher", "video", False),
        }
        assert {track["source"] for track in joined["published"]} == {event["source"] for event in published}
        assert {track["source"] for track in offer["tracks"]} == {event["source"] for event in published}
        # The media sections name the publisher as their stream (msid).
        assert "a=msid:teacher " in offer["offer"]["sdp"]
        assert "VP8/90000" in offer["offer"]["sdp"]
        assert "H264" not in offer["offer"]["sdp"]
    finally:
        await teacher.close()
        await pupil.close()


async def test_a_keyframe_request_from_a_pupil_reaches_the_teacher(worker, link_factory):
    teacher, (pupil,) = await lesson(link_factory, pupils=1)
    try:
        await until(lambda: pupil.frames_from("teacher", "video") >= 10, what="video frames")
        requests_at_teacher = []
        video_sender = next(
            sender
            for sender in teacher.publish_connection.getSenders()
            if sender.track and sender.track.kind == "video"
        )
        forwarding.sender_on_keyframe_request(video_sender, lambda: requests_at_teacher.append(1))
        source = next(
            track.source
            for track in worker.rooms["lesson-1"].peers["teacher"].published.values()
            if track.kind == "video"
        )
        requested_before = source.keyframes_requested

        receiver = next(
            transceiver.receiver
            for transceiver in pupil.subscribe_connection.getTransceivers()
            if transceiver.kind == "video"
        )
        ssrc = forwarding.receiver_media_ssrc(receiver)
        assert ssrc is not None
        await receiver._send_rtcp_pli(ssrc)

        await until(lambda: requests_at_teacher, what="the PLI at the teacher")
        assert source.keyframes_requested > requested_before
    finally:
        await teacher.close()
        await pupil.close()


async def test_a_late_pupil_starts_at_a_keyframe_and_decodes(worker, link_factory, decoders_created):
    teacher, (early,) = await lesson(link_factory, pupils=1)
    late = None
    try:
        await until(lambda: early.frames_from("teacher", "video") >= 45, what="frames for the early pupil")
        late = Participant(await link_factory(), room="lesson-1", peer="late")
        await late.join()
        await until(lambda: late.frames_from("teacher", "video") >= 15, what="frames for the late pupil")
        assert set(late.frame_sizes) == {(640, 480)}
        source = next(
            track.source
            for track in worker.rooms["lesson-1"].peers["teacher"].published.values()
            if track.kind == "video"
        )
        assert source.keyframes_received >= 2
    finally:
        for participant in (teacher, early, late):
            if participant is not None:
                await participant.close()


async def test_mute_stops_forwarding_and_unmute_resumes_it(worker, link_factory):
    teacher, (pupil,) = await lesson(link_factory, pupils=1)
    try:
        await until(lambda: pupil.frames_from("teacher", "video") >= 10, what="video frames")
        await until(lambda: pupil.frames_from("teacher", "audio") >= 10, what="audio frames")
        room = worker.rooms["lesson-1"]
        tracks = {track.kind: track for track in room.peers["teacher"].published.values()}
        slots = {slot.track.kind: slot.track for slot in room.peers["pupil-0"].slots}

        reply = await pupil.link.request("peer.mute", room="lesson-1", peer="teacher", kinds=["video"], muted=True)
        assert reply["ok"] is True
        assert reply["muted"] == ["video"]
        muted = await pupil.link.wait_for(lambda event: event["event"] == "track.muted" and event["kind"] == "video")
        assert muted["muted"] is True
        forwarded_video = slots["video"].frames_forwarded
        forwarded_audio = slots["audio"].frames_forwarded
        received = tracks["video"].source.frames_received
        await until(lambda: tracks["video"].source.frames_received >= received + 30, what="more frames at the worker")
        assert slots["video"].frames_forwarded == forwarded_video
        assert slots["audio"].frames_forwarded > forwarded_audio

        await pupil.link.request("peer.mute", room="lesson-1", peer="teacher", kinds=["video"], muted=False)
        decoded = pupil.frames_from("teacher", "video")
        await until(lambda: pupil.frames_from("teacher", "video") >= decoded + 10, what="frames after unmute")
        assert slots["video"].frames_forwarded > forwarded_video
    finally:
        await teacher.close()
        await pupil.close()


async def test_unsubscribe_and_subscribe_again(worker, link_factory):
    teacher, (pupil,) = await lesson(link_factory, pupils=1)
    try:
        await until(lambda: pupil.frames_from("teacher", "video") >= 10, what="video frames")
        reply = await pupil.link.request(
            "unsubscribe", room="lesson-1", peer="pupil-0", publisher="teacher", kinds=["video"]
        )
        assert reply["kinds"] == ["audio"]
        offer = await pupil.link.wait_for(lambda event: event["event"] == "sdp.offer" and event["revision"] == 2)
        assert [(track["kind"], track["active"]) for track in offer["tracks"]] == [
            ("video", False),
            ("audio", True),
        ] or [(track["kind"], track["active"]) for track in offer["tracks"]] == [("audio", True), ("video", False)]
        room = worker.rooms["lesson-1"]
        video_source = next(track.source for track in room.peers["teacher"].published.values() if track.kind == "video")
        assert video_source.sinks == set()

        reply = await pupil.link.request(
            "subscribe", room="lesson-1", peer="pupil-0", publisher="teacher", kinds=["video"]
        )
        assert reply["kinds"] == ["audio", "video"]
        await pupil.link.wait_for(lambda event: event["event"] == "sdp.offer" and event["revision"] == 3)
        decoded = pupil.frames_from("teacher", "video")
        await until(lambda: pupil.frames_from("teacher", "video") >= decoded + 10, what="video after subscribing")
        # The inactive transceiver was reused: still one per kind.
        assert sorted(slot.track.kind for slot in room.peers["pupil-0"].slots) == ["audio", "video"]
    finally:
        await teacher.close()
        await pupil.close()


async def test_audio_only_pupil_receives_no_video(worker, link_factory, decoders_created):
    teacher, (pupil,) = await lesson(link_factory, pupils=1, auto_subscribe=["audio"])
    try:
        await until(lambda: pupil.frames_from("teacher", "audio") >= 20, what="audio frames")
        assert pupil.frames_from("teacher", "video") == 0
        assert [slot.track.kind for slot in worker.rooms["lesson-1"].peers["pupil-0"].slots] == ["audio"]
        assert decoders_created == ["audio/opus"]
    finally:
        await teacher.close()
        await pupil.close()


async def test_two_publishers_hear_each_other(worker, link_factory):
    link = await link_factory()
    await link.request("room.open", room="meeting")
    first = Participant(link, room="meeting", peer="first", audio=ToneAudioTrack())
    second = Participant(await link_factory(), room="meeting", peer="second", audio=ToneAudioTrack())
    try:
        assert (await first.join())["ok"] is True
        assert (await second.join())["ok"] is True
        await until(lambda: first.frames_from("second", "audio") >= 10, what="second heard by first")
        await until(lambda: second.frames_from("first", "audio") >= 10, what="first heard by second")
        assert first.frames_from("first", "audio") == 0
    finally:
        await first.close()
        await second.close()
        await asyncio.sleep(0)


async def test_when_the_teacher_leaves_pupils_are_told_and_the_worker_lets_go(worker, link_factory):
    teacher, (pupil,) = await lesson(link_factory, pupils=1)
    try:
        await until(lambda: pupil.frames_from("teacher", "video") >= 5, what="video frames")
        room = worker.rooms["lesson-1"]
        sources = [track.source for track in room.peers["teacher"].published.values()]
        reply = await teacher.leave()
        assert reply["existed"] is True
        left = await pupil.link.wait_for(lambda event: event["event"] == "peer.left" and event["peer"] == "teacher")
        assert left["reason"] == "left"
        unpublished = [event for event in pupil.link.events if event["event"] == "track.unpublished"]
        assert sorted(event["kind"] for event in unpublished) == ["audio", "video"]
        offer = await pupil.link.wait_for(lambda event: event["event"] == "sdp.offer" and event["revision"] == 2)
        assert [track["active"] for track in offer["tracks"]] == [False, False]
        assert list(room.peers) == ["pupil-0"]
        assert all(source.sinks == set() and source.is_closed for source in sources)
        await worker.resources.settle()
        # The pupil's subscribe connection is all that is left.
        assert worker.status()["peer_connection_count"] == 1
        await pupil.leave()
        await worker.resources.settle()
        assert worker.status()["peer_connection_count"] == 0
        assert worker.status()["peer_count"] == 0
    finally:
        await teacher.close()
        await pupil.close()
