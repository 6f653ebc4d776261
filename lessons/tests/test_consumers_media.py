"""The call's signalling socket with a real media worker and aiortc
participants: media flows both ways, a safe lesson shows students only the
teacher's video, audio-only mode receives no video, a malformed offer is
refused by the worker, and attendance follows the media connection."""

import pytest
from aiortc import VideoStreamTrack
from channels.db import database_sync_to_async

from lessons.calls import peer_id
from lessons.media.testing import ToneAudioTrack
from lessons.models import AttendanceSession, CallPresence
from lessons.tests.factories import make_lesson_now, make_lesson_world, make_parent_meeting_now, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def sessions_of(participant_id: int) -> list[tuple[bool, bool]]:
    """(has joined, has left) of each attendance session."""
    return [
        (session.joined_at is not None, session.left_at is not None)
        for session in AttendanceSession.objects.filter(participant_id=participant_id).order_by("id")
    ]


def tracks() -> list:
    return [VideoStreamTrack(), ToneAudioTrack()]


async def test_teacher_and_parent_receive_each_others_video_and_audio(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    parent = await call_clients(occurrence.pk, world.parent, tracks=tracks())

    joined = await teacher.join()
    assert joined["type"] == "joined", joined
    assert joined["participant"]["role"] == "host"
    assert joined["state"]["is_safe_lesson"] is False
    assert joined["ice_servers"] == []
    assert (await teacher.publish())["type"] == "answer"
    parent_joined = await parent.join()
    assert parent_joined["type"] == "joined", parent_joined
    assert [item["id"] for item in parent_joined["participants"]] == [
        joined["participant"]["id"],
        parent_joined["participant"]["id"],
    ]
    assert (await parent.publish())["type"] == "answer"
    teacher_peer, parent_peer = joined["participant"]["peer"], parent_joined["participant"]["peer"]

    for kind in ("video", "audio"):
        await parent.until_decoded(teacher_peer, kind, 10)
        await teacher.until_decoded(parent_peer, kind, 10)
    # The teacher heard of the parent coming in, and of their tracks.
    await teacher.wait_for(
        lambda frame: (
            frame["type"] == "call.presence"
            and frame["action"] == "joined"
            and frame["participant"]["peer"] == parent_peer
        )
    )
    await teacher.wait_type("track.published", peer=parent_peer, kind="video")
    parent_id = parent_joined["participant"]["id"]
    assert await database_sync_to_async(sessions_of)(parent_id) == [(True, False)]

    left = await parent.request({"type": "leave"})
    assert left["type"] == "left"
    await parent.wait_type("closed", code=1000)
    await teacher.wait_for(
        lambda frame: (
            frame["type"] == "call.presence" and frame["action"] == "left" and frame["participant"]["id"] == parent_id
        )
    )
    assert await database_sync_to_async(sessions_of)(parent_id) == [(True, True)]
    assert not await database_sync_to_async(CallPresence.objects.filter(participant_id=parent_id).exists)()
    room = media_worker.rooms[joined["room"]]
    assert sorted(room.peers) == [teacher_peer]


async def test_in_a_safe_lesson_students_see_only_the_teacher_and_join_muted(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=2)
    meeting = await database_sync_to_async(make_lesson_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    first = await call_clients(occurrence.pk, world.students[0], tracks=tracks())
    second = await call_clients(occurrence.pk, world.students[1], tracks=tracks())

    teacher_joined = await teacher.join()
    assert teacher_joined["state"]["is_safe_lesson"] is True
    assert teacher_joined["muted"] == []
    await teacher.publish()
    first_joined = await first.join()
    second_joined = await second.join()
    assert first_joined["muted"] == ["audio"]
    assert second_joined["muted"] == ["audio"]
    await first.publish()
    await second.publish()
    # The students speak (they may switch their microphones on).
    for student in (first, second):
        assert (await student.request({"type": "mute", "kind": "audio", "muted": False}))["type"] == "ack"
    teacher_peer = teacher_joined["participant"]["peer"]
    first_peer, second_peer = first_joined["participant"]["peer"], second_joined["participant"]["peer"]

    await first.until_decoded(teacher_peer, "video", 10)
    await first.until_decoded(second_peer, "audio", 10)
    await second.until_decoded(first_peer, "audio", 10)
    await teacher.until_decoded(first_peer, "video", 10)
    await teacher.until_decoded(second_peer, "video", 10)
    assert first.decoded_from(second_peer, "video") == 0
    assert second.decoded_from(first_peer, "video") == 0
    room = media_worker.rooms[teacher_joined["room"]]
    first_at_worker = room.peers[first_peer]
    assert first_at_worker.rules.get(second_peer, first_at_worker.auto_subscribe) == frozenset({"audio"})
    assert {
        slot.published.peer.peer_id
        for slot in room.peers[first_peer].slots
        if slot.track.kind == "video" and slot.published
    } == {teacher_peer}

    # The teacher turns the profile off: the students see each other.
    ack = await teacher.request({"type": "safe_lesson", "enabled": False})
    assert ack["state"]["is_safe_lesson"] is False
    await first.until_decoded(second_peer, "video", 10)


async def test_audio_only_receives_no_video(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    parent = await call_clients(occurrence.pk, world.parent)

    teacher_joined = await teacher.join()
    await teacher.publish()
    parent_joined = await parent.join(audio_only=True)
    assert parent_joined["audio_only"] is True
    teacher_peer = teacher_joined["participant"]["peer"]
    await parent.until_decoded(teacher_peer, "audio", 20)
    assert parent.decoded_from(teacher_peer, "video") == 0
    slots = media_worker.rooms[teacher_joined["room"]].peers[parent_joined["participant"]["peer"]].slots
    assert [slot.track.kind for slot in slots] == ["audio"]

    # Back to video when the connection is better.
    ack = await parent.request({"type": "audio_only", "enabled": False})
    assert ack["type"] == "ack"
    await parent.until_decoded(teacher_peer, "video", 10)


def audio_only_frames(client) -> list[dict]:
    return [frame for frame in client.frames if frame["type"] == "audio_only"]


async def stats_taken(client, level_frame: dict) -> None:
    """Send one "stats" report and wait until the socket has handled it (the
    socket handles frames in order: the pong follows)."""
    await client.send({"type": "stats", **level_frame})
    assert (await client.request({"type": "ping"}))["type"] == "pong"


POOR = {"rtt_ms": 900, "loss": 0.2}
GOOD = {"rtt_ms": 40, "loss": 0.0}


async def test_a_connection_that_stays_poor_falls_back_to_audio_only(media_worker, call_clients, monkeypatch):
    # Reports are taken at most every 2 s from a browser; here each one is.
    monkeypatch.setattr("lessons.consumers.STATS_MIN_INTERVAL_SECONDS", 0.0)
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    parent = await call_clients(occurrence.pk, world.parent)
    teacher_joined = await teacher.join()
    await teacher.publish()
    parent_joined = await parent.join()
    teacher_peer = teacher_joined["participant"]["peer"]
    parent_id = parent_joined["participant"]["id"]
    await parent.until_decoded(teacher_peer, "video", 10)
    peer = media_worker.rooms[teacher_joined["room"]].peers[parent_joined["participant"]["peer"]]

    def kinds_received() -> list[str]:
        return sorted(slot.track.kind for slot in peer.slots if slot.published is not None)

    assert kinds_received() == ["audio", "video"]

    # One poor report is not enough; the second in a row switches.
    await stats_taken(parent, POOR)
    assert audio_only_frames(parent) == []
    await parent.send({"type": "stats", **POOR})
    switched = await parent.wait_type("audio_only")
    assert switched == {
        "type": "audio_only",
        "enabled": True,
        "reason": "poor_connection",
        "detail": "The connection is weak: audio only is on. Video comes back when you ask for it.",
    }
    await until(lambda: kinds_received() == ["audio"], what="the video to stop reaching the parent")
    presence = await teacher.wait_for(
        lambda frame: frame["type"] == "call.presence" and frame["participant"]["is_audio_only"] is True
    )
    assert presence["participant"]["id"] == parent_id
    assert (await database_sync_to_async(CallPresence.objects.get)(participant_id=parent_id)).is_audio_only is True

    # The parent asks for video back: a connection that stays poor does not
    # switch them again ...
    assert (await parent.request({"type": "audio_only", "enabled": False}))["enabled"] is False
    await until(lambda: kinds_received() == ["audio", "video"], what="the video to come back")
    for _report in range(3):
        await stats_taken(parent, POOR)
    assert len(audio_only_frames(parent)) == 1
    assert kinds_received() == ["audio", "video"]
    # ... until it was good once and then poor again.
    await stats_taken(parent, GOOD)
    await stats_taken(parent, POOR)
    await stats_taken(parent, POOR)
    assert len(audio_only_frames(parent)) == 2
    await until(lambda: kinds_received() == ["audio"], what="the video to stop again")


async def test_a_malformed_offer_is_refused_by_the_worker_and_changes_nothing(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher)
    joined = await teacher.join()

    refused = await teacher.request({"type": "offer", "offer": {"type": "offer", "sdp": "v=0\r\nthis is not SDP"}})

    assert refused["type"] == "error"
    assert refused["code"] == "invalid_sdp"
    assert refused["media_detail"]
    peer = media_worker.rooms[joined["room"]].peers[joined["participant"]["peer"]]
    assert peer.publish_connection is None
    assert peer.published == {}
    # A good offer afterwards is answered.
    teacher.tracks = tracks()
    assert (await teacher.publish())["type"] == "answer"


async def test_a_participant_whose_media_vanishes_leaves_and_their_attendance_ends(
    media_worker, call_clients, settings
):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    parent = await call_clients(occurrence.pk, world.parent, tracks=tracks())
    teacher_joined = await teacher.join()
    await teacher.publish()
    parent_joined = await parent.join()
    await parent.publish()
    parent_id = parent_joined["participant"]["id"]
    await parent.until_decoded(teacher_joined["participant"]["peer"], "video", 5)

    # The parent's socket drops without a "leave" (a closed laptop lid).
    await parent.communicator.disconnect(code=1006, timeout=10)

    await teacher.wait_for(
        lambda frame: (
            frame["type"] == "call.presence" and frame["action"] == "left" and frame["participant"]["id"] == parent_id
        )
    )
    await teacher.wait_type("peer.left", peer=peer_id(parent_id))
    assert await database_sync_to_async(sessions_of)(parent_id) == [(True, True)]


async def test_trickled_candidates_reach_the_worker_and_bad_ones_are_refused(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_parent_meeting_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    teacher = await call_clients(occurrence.pk, world.teacher, tracks=tracks())
    await teacher.join()
    await teacher.publish()
    candidate = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host", "sdpMid": "0"}

    await teacher.send({"type": "ice", "target": "publish", "candidate": candidate})
    await teacher.send({"type": "ice", "target": "publish", "candidate": None})
    refused = await teacher.request(
        {"type": "ice", "target": "publish", "candidate": {"candidate": "candidate:garbage", "sdpMid": "0"}}
    )
    pong = await teacher.request({"type": "ping"})

    assert (refused["type"], refused["code"]) == ("error", "invalid_candidate")
    assert pong["type"] == "pong"
    errors = [frame for frame in teacher.frames if frame["type"] == "error"]
    assert errors == [refused]
