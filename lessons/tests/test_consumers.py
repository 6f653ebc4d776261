"""The call's signalling socket through the project's whole WebSocket stack
with a real media worker in-process: joining and the lobby, frames out of
order, the host's controls, the chat of the call, removal, the end of the
call, attendance, floods, and the permission matrix of its actions."""

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from lessons import consumers, services
from lessons.calls import peer_id
from lessons.models import (
    AttendanceSession,
    CallMessage,
    CallPresence,
    CallState,
    JoinLink,
    Participant,
    ParticipantStatus,
)
from lessons.tests.conftest import ORIGIN, open_socket, socket_application
from lessons.tests.factories import make_lesson_now, make_lesson_world, make_parent_meeting_now, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def parent_meeting() -> tuple[Any, Any, Any]:
    world = make_lesson_world(students=2)
    meeting = make_parent_meeting_now(world)
    return world, meeting, meeting.occurrences.get()


def attendance(participant_id: int) -> list[bool]:
    """For each attendance session: has it ended?"""
    return [
        session.left_at is not None
        for session in AttendanceSession.objects.filter(participant_id=participant_id).order_by("id")
    ]


def stored_counts() -> dict[str, int]:
    return {
        "participants": Participant.objects.count(),
        "sessions": AttendanceSession.objects.count(),
        "presences": CallPresence.objects.count(),
        "messages": CallMessage.objects.count(),
        "states": CallState.objects.count(),
    }


async def joined_host_and_parent(call_clients) -> tuple[Any, Any, Any, dict, dict, Any]:
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    host = await call_clients(occurrence.pk, world.teacher)
    parent = await call_clients(occurrence.pk, world.parent)
    host_joined = await host.join()
    parent_joined = await parent.join()
    assert host_joined["type"] == parent_joined["type"] == "joined"
    return world, host, parent, host_joined, parent_joined, occurrence


# --- Joining -----------------------------------------------------------------------------------------------------


async def test_frames_out_of_order_get_clear_errors_and_change_nothing(media_worker, call_clients):
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    client = await call_clients(occurrence.pk, world.parent)
    before = await database_sync_to_async(stored_counts)()

    ice = await client.request({"type": "ice", "target": "publish", "candidate": None})
    offer = await client.request({"type": "offer", "offer": {"type": "offer", "sdp": "v=0"}})
    hand = await client.request({"type": "hand", "raised": True})

    assert [(frame["type"], frame["code"]) for frame in (ice, offer, hand)] == [("error", "not_joined")] * 3
    assert await database_sync_to_async(stored_counts)() == before

    joined = await client.join()
    assert joined["type"] == "joined"
    answer = await client.request({"type": "answer", "revision": 1, "answer": {"type": "answer", "sdp": "v=0"}})
    ice = await client.request({"type": "ice", "target": "subscribe", "candidate": None})
    ice_publish = await client.request(
        {"type": "ice", "target": "publish", "candidate": {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host"}}
    )
    again = await client.request({"type": "join"})
    unknown = await client.request({"type": "subscribe", "publisher": "p1"})
    bad_mute = await client.request({"type": "mute", "kind": "screen", "muted": True})

    assert (answer["type"], answer["code"]) == ("error", "unexpected_answer")
    assert (ice["type"], ice["code"]) == ("error", "no_connection")
    assert (ice_publish["type"], ice_publish["code"]) == ("error", "no_connection")
    assert (again["type"], again["code"]) == ("error", "already_joined")
    assert (unknown["type"], unknown["code"]) == ("error", "unknown_type")
    assert (bad_mute["code"], bad_mute["field"]) == ("invalid", "kind")
    peer = media_worker.rooms[joined["room"]].peers[joined["participant"]["peer"]]
    assert (peer.publish_connection, peer.subscribe_connection, peer.muted_kinds) == (None, None, set())


async def test_malformed_frames_are_refused_and_the_socket_survives(media_worker, call_clients):
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    client = await call_clients(occurrence.pk, world.parent)
    await client.communicator.send_to(text_data="not json")
    await client.communicator.send_to(text_data="[1, 2]")
    await client.communicator.send_to(text_data=json.dumps({"type": "ping", "ref": {"x": 1}}))

    await client.communicator.send_to(bytes_data=b"\x00\x01")
    pong = await client.request({"type": "ping"})

    assert pong["type"] == "pong"
    assert [(frame["type"], frame["code"]) for frame in client.frames[:4]] == [("error", "invalid_frame")] * 4
    assert client.close_code is None


async def test_a_member_joins_by_session_from_a_portal_page(media_worker):
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()

    def session_cookie() -> str:
        client = Client()
        client.force_login(world.parent)
        return client.cookies[django_settings.SESSION_COOKIE_NAME].value

    cookie = await database_sync_to_async(session_cookie)()
    headers = [ORIGIN, (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    communicator = await open_socket(occurrence.pk, headers)
    await communicator.send_to(text_data=json.dumps({"type": "join", "ref": 1}))
    joined = json.loads(await communicator.receive_from(timeout=10))

    assert joined["type"] == "joined"
    assert joined["participant"]["display_name"] == world.parent.display_name
    await communicator.disconnect(timeout=10)
    participant_id = joined["participant"]["id"]
    assert await database_sync_to_async(attendance)(participant_id) == [True]


async def test_a_page_of_another_site_cannot_open_the_socket(media_worker):
    _world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    communicator = WebsocketCommunicator(
        socket_application(), f"/ws/lessons/{occurrence.pk}/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _code = await communicator.connect(timeout=5)
    assert connected is False


async def test_without_credentials_or_with_a_bad_token_the_socket_closes_4001(media_worker, call_clients):
    _world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    anonymous = await call_clients(occurrence.pk)
    refused = await anonymous.request({"type": "join"})
    assert (refused["type"], refused["code"]) == ("error", "not_authenticated")
    await anonymous.wait_type("closed", code=4001)

    bad = await call_clients(occurrence.pk)
    refused = await bad.request({"type": "join", "token": "nonsense-token-value"})
    assert refused["code"] == "not_authenticated"
    await bad.wait_type("closed", code=4001)
    assert await database_sync_to_async(Participant.objects.count)() == 0


async def test_a_socket_that_never_joins_is_closed(media_worker, call_clients, monkeypatch):
    monkeypatch.setattr(consumers, "JOIN_TIMEOUT_SECONDS", 0.2)
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    client = await call_clients(occurrence.pk, world.parent)
    assert (await client.wait_type("closed"))["code"] == 4001


async def test_a_token_in_the_join_frame_signs_in(media_worker, call_clients):
    from accounts.services import api_token_create

    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    key = await database_sync_to_async(api_token_create)(user=world.parent, name="script")
    client = await call_clients(occurrence.pk)
    joined = await client.join(token=key)
    assert joined["type"] == "joined"
    assert joined["participant"]["role"] == "member"


async def test_refused_joins_say_why_and_store_nothing(media_worker, call_clients):
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    stranger_world = await database_sync_to_async(make_lesson_world)(students=1)
    before = await database_sync_to_async(stored_counts)()

    outsider = await call_clients(occurrence.pk, stranger_world.parent)
    refused = await outsider.request({"type": "join"})
    assert (refused["type"], refused["code"]) == ("error", "not_found")
    await outsider.wait_type("closed", code=4003)

    forged = await call_clients(occurrence.pk)
    refused = await forged.request({"type": "join", "link": "x" * 43, "display_name": "Гость"})
    assert refused["code"] == "link_not_found"
    await forged.wait_type("closed", code=4003)

    unknown = await call_clients(occurrence.pk + 1000, world.parent)
    refused = await unknown.request({"type": "join"})
    assert refused["code"] == "not_found"
    assert await database_sync_to_async(stored_counts)() == before


async def test_a_guest_waits_in_the_lobby_until_the_host_admits_them(media_worker, call_clients):
    world, meeting, occurrence = await database_sync_to_async(parent_meeting)()
    _link, token = await database_sync_to_async(services.join_link_create)(
        actor=world.teacher, meeting_id=meeting.pk, label="Бабушка"
    )
    host = await call_clients(occurrence.pk, world.teacher)
    host_joined = await host.join()
    assert host_joined["lobby"] == []
    guest = await call_clients(occurrence.pk)

    waiting = await guest.join(link=token, display_name="Нина Петровна")
    assert waiting["type"] == "lobby"
    guest_id = waiting["participant"]["id"]
    assert waiting["participant"]["status"] == "waiting"
    lobby = await host.wait_type("lobby.changed")
    assert [(item["id"], item["display_name"], item["is_guest"]) for item in lobby["participants"]] == [
        (guest_id, "Нина Петровна", True)
    ]
    # While waiting, nothing but waiting.
    refused = await guest.request({"type": "chat", "body": "Здравствуйте"})
    assert refused["code"] == "not_admitted"
    assert await database_sync_to_async(attendance)(guest_id) == []

    admitted = await host.request({"type": "admit", "participant": guest_id, "admit": True})
    assert (admitted["type"], admitted["status"]) == ("ack", "admitted")
    joined = await guest.joined_after_lobby()
    assert joined["participant"] == {
        "id": guest_id,
        "peer": peer_id(guest_id),
        "display_name": "Нина Петровна",
        "role": "guest",
        "is_guest": True,
    }
    assert "lobby" not in joined
    assert await database_sync_to_async(attendance)(guest_id) == [False]
    assert await database_sync_to_async(CallMessage.objects.count)() == 0


async def test_a_guest_the_host_does_not_let_in_is_told_so(media_worker, call_clients):
    world, meeting, occurrence = await database_sync_to_async(parent_meeting)()
    _link, token = await database_sync_to_async(services.join_link_create)(actor=world.teacher, meeting_id=meeting.pk)
    host = await call_clients(occurrence.pk, world.teacher)
    await host.join()
    guest = await call_clients(occurrence.pk)
    waiting = await guest.join(link=token, display_name="Незнакомец")

    await host.request({"type": "admit", "participant": waiting["participant"]["id"], "admit": False})

    denied = await guest.wait_type("denied")
    assert denied["detail"]
    await guest.wait_type("closed", code=4003)


async def test_the_same_participant_joining_again_replaces_the_first_connection(media_worker, call_clients):
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    first = await call_clients(occurrence.pk, world.parent)
    first_joined = await first.join()
    second = await call_clients(occurrence.pk, world.parent)
    second_joined = await second.join()

    await first.wait_type("replaced")
    await first.wait_type("closed", code=4011)
    participant_id = second_joined["participant"]["id"]
    assert participant_id == first_joined["participant"]["id"]
    assert await database_sync_to_async(attendance)(participant_id) == [False]
    await first.communicator.disconnect(timeout=10)
    # The replaced socket's end does not end the attendance of the new one.
    assert await database_sync_to_async(attendance)(participant_id) == [False]
    assert list(media_worker.rooms[second_joined["room"]].peers) == [peer_id(participant_id)]


async def test_without_a_media_worker_the_join_fails_clearly(settings, call_clients):
    settings.LESSONS_MEDIA_WORKERS = ["nobody-listens"]
    settings.LESSONS_MEDIA_COMMAND_TIMEOUT = 0.5
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    client = await call_clients(occurrence.pk, world.parent)

    refused = await client.join()

    assert (refused["type"], refused["code"]) == ("error", "media_unavailable")
    await client.wait_type("closed", code=4012)
    assert await database_sync_to_async(CallPresence.objects.count)() == 0
    assert await database_sync_to_async(AttendanceSession.objects.count)() == 0


# --- In the call -------------------------------------------------------------------------------------------------


async def test_raise_hand_and_mute_reach_everyone(media_worker, call_clients):
    _world, host, parent, _host_joined, parent_joined, _occurrence = await joined_host_and_parent(call_clients)
    parent_id = parent_joined["participant"]["id"]

    assert (await parent.request({"type": "hand", "raised": True}))["raised"] is True
    raised = await host.wait_for(
        lambda frame: frame["type"] == "call.presence" and frame["participant"]["is_hand_raised"] is True
    )
    assert raised["participant"]["id"] == parent_id
    ack = await parent.request({"type": "mute", "kind": "video", "muted": True})
    assert ack["muted"] == ["video"]
    await host.wait_for(
        lambda frame: frame["type"] == "call.presence" and frame["participant"]["is_video_muted"] is True
    )
    await until(
        lambda: media_worker.rooms[parent_joined["room"]].peers[peer_id(parent_id)].muted_kinds == {"video"},
        what="the worker to mute the parent's video",
    )


async def test_the_chat_of_the_call_is_kept_with_the_meeting(media_worker, call_clients):
    world, host, parent, _host_joined, _parent_joined, occurrence = await joined_host_and_parent(call_clients)

    ack = await parent.request({"type": "chat", "body": "  Здравствуйте! <b>вопрос</b> ", "client_id": "c1"})
    again = await parent.request({"type": "chat", "body": "Здравствуйте! <b>вопрос</b>", "client_id": "c1"})
    empty = await parent.request({"type": "chat", "body": "   "})
    too_long = await parent.request({"type": "chat", "body": "я" * 2001})

    assert (ack["status"], again["status"], again["message"]) == ("sent", "duplicate", ack["message"])
    assert (empty["code"], empty["field"]) == ("invalid", "body")
    assert (too_long["code"], too_long["field"]) == ("invalid", "body")
    shown = await host.wait_type("call.message")
    assert shown["message"]["body"] == "Здравствуйте! <b>вопрос</b>"
    assert shown["message"]["author"] == world.parent.display_name
    stored = await database_sync_to_async(lambda: list(CallMessage.objects.values_list("occurrence_id", "body")))()
    assert stored == [(occurrence.pk, "Здравствуйте! <b>вопрос</b>")]
    # Who comes later reads it.
    other = await call_clients(occurrence.pk, world.parents[1])
    joined = await other.join()
    assert [message["body"] for message in joined["messages"]] == ["Здравствуйте! <b>вопрос</b>"]


async def test_the_chat_of_the_call_is_rate_limited(media_worker, call_clients, settings):
    settings.LESSONS_CALL_CHAT_RATE = "2/minute"
    _world, _host, parent, *_rest = await joined_host_and_parent(call_clients)
    answers = [await parent.request({"type": "chat", "body": "Сообщение " + str(index)}) for index in range(3)]
    assert [answer["type"] for answer in answers] == ["ack", "ack", "error"]
    assert answers[2]["code"] == "rate_limited"
    assert 1 <= answers[2]["retry_after"] <= 60
    assert await database_sync_to_async(CallMessage.objects.count)() == 2


async def test_the_host_mutes_one_and_all_and_locks_the_microphones(media_worker, call_clients):
    world, host, parent, host_joined, parent_joined, occurrence = await joined_host_and_parent(call_clients)
    other = await call_clients(occurrence.pk, world.parents[1])
    other_joined = await other.join()
    parent_id, other_id = parent_joined["participant"]["id"], other_joined["participant"]["id"]
    room = media_worker.rooms[host_joined["room"]]

    ack = await host.request({"type": "mute_participant", "participant": parent_id})
    assert ack["participants"] == [parent_id]
    muted = await parent.wait_type("call.muted")
    assert (muted["participants"], muted["kinds"]) == ([parent_id], ["audio"])
    await host.wait_type("ack", **{"for": "mute_participant"})
    # The parent may switch it on again: nothing is locked.
    assert (await parent.request({"type": "mute", "kind": "audio", "muted": False}))["type"] == "ack"

    ack = await host.request({"type": "mute_all"})
    assert sorted(ack["participants"]) == sorted([parent_id, other_id])
    ack = await host.request({"type": "lock_microphones", "locked": True})
    assert ack["state"]["are_microphones_locked"] is True
    await other.wait_for(lambda frame: frame["type"] == "call.state" and frame["state"]["are_microphones_locked"])
    refused = await other.request({"type": "mute", "kind": "audio", "muted": False})
    assert (refused["type"], refused["code"]) == ("error", "microphone_locked")
    await until(lambda: "audio" in room.peers[peer_id(other_id)].muted_kinds, what="the worker to mute all")
    # The host himself keeps his microphone.
    assert (await host.request({"type": "mute", "kind": "audio", "muted": False}))["type"] == "ack"

    # The floor: only the one given it may speak.
    await other.request({"type": "hand", "raised": True})
    ack = await host.request({"type": "give_floor", "participant": other_id})
    assert ack["state"]["floor"] == other_id
    await other.wait_for(lambda frame: frame["type"] == "call.state" and frame["state"]["floor"] == other_id)
    assert (await other.request({"type": "mute", "kind": "audio", "muted": False}))["type"] == "ack"
    await until(lambda: "audio" not in room.peers[peer_id(other_id)].muted_kinds, what="the worker to unmute")
    refused = await parent.request({"type": "mute", "kind": "audio", "muted": False})
    assert refused["code"] == "microphone_locked"
    presence = await database_sync_to_async(CallPresence.objects.get)(participant_id=other_id)
    assert presence.hand_raised_at is None
    # Taking the floor back switches that microphone off again.
    ack = await host.request({"type": "give_floor", "participant": None})
    assert ack["state"]["floor"] is None
    await other.wait_for(lambda frame: frame["type"] == "call.muted" and other_id in frame["participants"])
    await until(lambda: "audio" in room.peers[peer_id(other_id)].muted_kinds, what="the worker to mute again")


async def test_only_the_host_may_use_the_hosts_controls(media_worker, call_clients):
    _world, host, parent, host_joined, _parent_joined, _occurrence = await joined_host_and_parent(call_clients)
    host_id = host_joined["participant"]["id"]
    before = await database_sync_to_async(stored_counts)()
    frames = [
        {"type": "mute_participant", "participant": host_id},
        {"type": "mute_all"},
        {"type": "lock_microphones", "locked": True},
        {"type": "give_floor", "participant": None},
        {"type": "remove", "participant": host_id},
        {"type": "admit", "participant": host_id},
        {"type": "safe_lesson", "enabled": True},
        {"type": "end"},
    ]
    answers = [await parent.request(frame) for frame in frames]
    assert [answer["code"] for answer in answers] == ["not_host"] * len(frames)
    assert await database_sync_to_async(stored_counts)() == before
    state = await database_sync_to_async(CallState.objects.get)()
    assert (state.are_microphones_locked, state.ended_at) == (False, None)
    assert host_joined["participant"]["peer"] in media_worker.rooms[host_joined["room"]].peers
    assert host.close_code is None


async def test_the_host_removes_a_participant_who_cannot_come_back(media_worker, call_clients):
    world, host, parent, host_joined, parent_joined, occurrence = await joined_host_and_parent(call_clients)
    parent_id = parent_joined["participant"]["id"]

    ack = await host.request({"type": "remove", "participant": parent_id})

    assert ack["participant"] == parent_id
    removed = await parent.wait_type("removed")
    assert removed["detail"]
    await parent.wait_type("closed", code=4003)
    await host.wait_for(
        lambda frame: (
            frame["type"] == "call.presence" and frame["action"] == "left" and frame["participant"]["id"] == parent_id
        )
    )
    status = await database_sync_to_async(lambda: Participant.objects.get(pk=parent_id).status)()
    assert status == ParticipantStatus.REMOVED
    assert await database_sync_to_async(attendance)(parent_id) == [True]
    assert peer_id(parent_id) not in media_worker.rooms[host_joined["room"]].peers
    again = await call_clients(occurrence.pk, world.parent)
    refused = await again.request({"type": "join"})
    assert (refused["type"], refused["code"]) == ("error", "removed")
    await again.wait_type("closed", code=4003)
    assert await database_sync_to_async(attendance)(parent_id) == [True]


async def test_signing_out_everywhere_ends_the_call_on_that_persons_sockets(media_worker, call_clients):
    from accounts.services import session_logout_everywhere

    world, host, parent, _host_joined, parent_joined, _occurrence = await joined_host_and_parent(call_clients)
    parent_id = parent_joined["participant"]["id"]

    await database_sync_to_async(session_logout_everywhere)(user=world.parent)

    await parent.wait_type("closed", code=4001)
    await host.wait_for(
        lambda frame: (
            frame["type"] == "call.presence" and frame["action"] == "left" and frame["participant"]["id"] == parent_id
        )
    )
    assert await database_sync_to_async(attendance)(parent_id) == [True]
    assert (await host.request({"type": "hand", "raised": True}))["type"] != "error"


async def test_a_removed_guests_link_is_refused_afterwards(media_worker, call_clients):
    world, meeting, occurrence = await database_sync_to_async(parent_meeting)()
    _link, token = await database_sync_to_async(services.join_link_create)(actor=world.teacher, meeting_id=meeting.pk)
    host = await call_clients(occurrence.pk, world.teacher)
    await host.join()
    guest = await call_clients(occurrence.pk)
    waiting = await guest.join(link=token, display_name="Гость")
    guest_id = waiting["participant"]["id"]
    await host.request({"type": "admit", "participant": guest_id})
    await guest.joined_after_lobby()

    await host.request({"type": "remove", "participant": guest_id})
    await guest.wait_type("closed", code=4003)

    again = await call_clients(occurrence.pk)
    refused = await again.request({"type": "join", "link": token})
    assert refused["code"] == "removed"
    link = await database_sync_to_async(JoinLink.objects.get)()
    assert link.removed_at is not None


async def test_frames_after_a_removal_the_socket_missed_change_nothing(media_worker, call_clients):
    _world, _host, parent, _host_joined, parent_joined, _occurrence = await joined_host_and_parent(call_clients)
    parent_id = parent_joined["participant"]["id"]
    # Removed without the event reaching the socket.
    await database_sync_to_async(Participant.objects.filter(pk=parent_id).update)(status=ParticipantStatus.REMOVED)

    refused = await parent.request({"type": "chat", "body": "Я ещё здесь"})

    assert (refused["type"], refused["code"]) == ("error", "not_admitted")
    await parent.wait_type("closed", code=4003)
    assert await database_sync_to_async(CallMessage.objects.count)() == 0
    assert await database_sync_to_async(attendance)(parent_id) == [True]
    assert not await database_sync_to_async(CallPresence.objects.filter(participant_id=parent_id).exists)()


async def test_the_host_ends_the_call_for_everyone(media_worker, call_clients):
    world, host, parent, host_joined, parent_joined, occurrence = await joined_host_and_parent(call_clients)

    ack = await host.request({"type": "end"})

    assert ack["type"] == "ack"
    for client in (host, parent):
        ended = await client.wait_type("ended")
        assert ended["reason"] == "ended"
        await client.wait_type("closed", code=4010)
    for participant_id in (host_joined["participant"]["id"], parent_joined["participant"]["id"]):
        assert await database_sync_to_async(attendance)(participant_id) == [True]
    assert await database_sync_to_async(CallPresence.objects.count)() == 0
    await asyncio.sleep(0)
    assert host_joined["room"] not in media_worker.rooms
    # Nobody but a host comes back in; the host opens it again.
    late = await call_clients(occurrence.pk, world.parent)
    refused = await late.request({"type": "join"})
    assert refused["code"] == "call_ended"
    host_again = await call_clients(occurrence.pk, world.teacher)
    assert (await host_again.join())["type"] == "joined"
    parent_again = await call_clients(occurrence.pk, world.parent)
    assert (await parent_again.join())["type"] == "joined"


async def test_a_cancelled_meeting_ends_the_call(media_worker, call_clients):
    world, host, parent, _host_joined, _parent_joined, occurrence = await joined_host_and_parent(call_clients)
    await database_sync_to_async(services.meeting_cancel)(actor=world.teacher, meeting_id=occurrence.meeting_id)
    for client in (host, parent):
        ended = await client.wait_type("ended")
        assert ended["reason"] == "cancelled"
        await client.wait_type("closed", code=4010)


async def test_connection_quality_reaches_the_others_when_it_changes(media_worker, call_clients):
    _world, host, parent, _host_joined, parent_joined, _occurrence = await joined_host_and_parent(call_clients)
    await parent.send({"type": "stats", "rtt_ms": 800, "loss": 0.1})
    quality = await host.wait_type("call.quality")
    assert (quality["participant"], quality["level"]) == (parent_joined["participant"]["id"], "poor")
    refused = await parent.request({"type": "stats", "rtt_ms": -1})
    assert (refused["code"], refused["field"]) == ("invalid", "rtt_ms")


async def test_a_flood_is_throttled_then_closed(media_worker, call_clients, monkeypatch):
    import chats.consumers as chat_consumers

    monkeypatch.setattr(chat_consumers, "THROTTLED_MAX", 5)
    world, _meeting, occurrence = await database_sync_to_async(parent_meeting)()
    client = await call_clients(occurrence.pk, world.parent)
    for _index in range(40):
        await client.send({"type": "ping"})
    throttled = await client.wait_for(lambda frame: frame.get("code") == "throttled")
    assert throttled["type"] == "error"
    await client.wait_type("closed", code=4008)


async def test_students_of_a_lesson_join_muted_in_a_safe_lesson(media_worker, call_clients):
    world = await database_sync_to_async(make_lesson_world)(students=1)
    meeting = await database_sync_to_async(make_lesson_now)(world)
    occurrence = await database_sync_to_async(lambda: meeting.occurrences.get())()
    student = await call_clients(occurrence.pk, world.student)
    joined = await student.join()
    assert joined["state"]["is_safe_lesson"] is True
    assert joined["muted"] == ["audio"]
    assert joined["may_speak"] is True
    peer = media_worker.rooms[joined["room"]].peers[joined["participant"]["peer"]]
    assert (peer.muted_kinds, peer.auto_subscribe) == ({"audio"}, frozenset({"audio"}))


# --- Permission matrix of the socket's actions (SPEC §10) ---------------------------------------------------------

# The parent meeting of 7Б at school A (tests/test_permission_matrix.World):
# the teacher hosts it, the class's parents are invited, a guest waits in the
# lobby. "joined" / "ack" is success; otherwise the error code, or the close
# code for a socket that is closed.
SOCKET_ACTIONS = ("join", "chat", "hand", "mute_all", "admit")
MEMBER = {"join": "joined", "chat": "ack", "hand": "ack", "mute_all": "not_host", "admit": "not_host"}
HOST = {"join": "joined", "chat": "ack", "hand": "ack", "mute_all": "ack", "admit": "ack"}
OUTSIDER = {"join": "not_found", "chat": 4003, "hand": 4003, "mute_all": 4003, "admit": 4003}
SOCKET_MATRIX = {
    "anonymous": {"join": "not_authenticated", "chat": 4001, "hand": 4001, "mute_all": 4001, "admit": 4001},
    "stranger": OUTSIDER,
    "student": OUTSIDER,
    "parent": MEMBER,
    "teacher": HOST,
    "administrator": HOST,
    "official": OUTSIDER,
    "other_admin": OUTSIDER,
}


def socket_world() -> Any:
    from tests.test_permission_matrix import World

    return World()


async def socket_outcomes(client: Any, world: Any) -> dict[str, Any]:
    outcomes: dict[str, Any] = {}
    frames = {
        "join": {"type": "join"},
        "chat": {"type": "chat", "body": "Проверка"},
        "hand": {"type": "hand", "raised": True},
        "mute_all": {"type": "mute_all"},
        "admit": {"type": "admit", "participant": world.values["guest_participant"], "admit": False},
    }
    for action in SOCKET_ACTIONS:
        if client.close_code is not None:
            outcomes[action] = client.close_code
            continue
        answer = await client.request(frames[action])
        if answer["type"] in ("joined", "ack"):
            outcomes[action] = answer["type"]
        elif answer["type"] == "closed":
            outcomes[action] = answer["code"]
        else:
            outcomes[action] = answer["code"]
            # A refused join closes the socket: the next frames meet the close.
            if action == "join":
                await client.wait_type("closed")
    return outcomes


@pytest.mark.parametrize("role", list(SOCKET_MATRIX))
async def test_socket_permission_matrix(role, media_worker, call_clients):
    world = await database_sync_to_async(socket_world)()
    occurrence_id = await database_sync_to_async(
        lambda: Participant.objects.get(pk=world.values["guest_participant"]).occurrence_id
    )()
    before = await database_sync_to_async(stored_counts)()
    client = await call_clients(occurrence_id, world.users.get(role))

    outcomes = await socket_outcomes(client, world)

    assert outcomes == SOCKET_MATRIX[role]
    if SOCKET_MATRIX[role]["join"] != "joined":
        assert await database_sync_to_async(stored_counts)() == before


async def test_when_the_worker_loses_a_participants_media_they_are_told_and_their_attendance_ends(
    media_worker, call_clients
):
    from channels.layers import get_channel_layer

    from lessons.events import meeting_group_name
    from lessons.media import protocol

    _world, host, parent, host_joined, parent_joined, occurrence = await joined_host_and_parent(call_clients)
    parent_id = parent_joined["participant"]["id"]
    # What the worker announces when a peer's connection fails (the browser
    # vanished without a word: no socket close, no DTLS alert).
    await get_channel_layer().group_send(
        meeting_group_name(occurrence.pk),
        protocol.event(
            "peer.left",
            worker=media_worker.worker_id,
            room=host_joined["room"],
            peer=peer_id(parent_id),
            reason="connection-failed",
        ),
    )

    lost = await parent.wait_type("media.lost")
    assert lost["reason"] == "connection-failed"
    await parent.wait_type("closed", code=4012)
    assert await database_sync_to_async(attendance)(parent_id) == [True]
    await host.wait_for(
        lambda frame: (
            frame["type"] == "call.presence" and frame["action"] == "left" and frame["participant"]["id"] == parent_id
        )
    )
    # Joining again is a new session of the same participant.
    again = await call_clients(occurrence.pk, _world.parent)
    assert (await again.join())["participant"]["id"] == parent_id
    assert await database_sync_to_async(attendance)(parent_id) == [True, False]


async def test_sharing_the_screen_and_audio_only_are_told_to_the_others(media_worker, call_clients):
    _world, host, parent, _host_joined, parent_joined, _occurrence = await joined_host_and_parent(call_clients)
    parent_id = parent_joined["participant"]["id"]

    assert (await parent.request({"type": "screen", "mid": "2"}))["mid"] == "2"
    shared = await host.wait_for(
        lambda frame: frame["type"] == "call.presence" and frame["participant"]["screen_mid"] == "2"
    )
    assert shared["participant"]["id"] == parent_id
    assert (await parent.request({"type": "screen", "mid": None}))["mid"] is None
    await host.wait_for(
        lambda frame: (
            frame["type"] == "call.presence"
            and frame["participant"]["id"] == parent_id
            and frame["participant"]["screen_mid"] is None
            and frame["action"] == "updated"
            and frame is not shared
        )
    )
    assert (await parent.request({"type": "audio_only", "enabled": True}))["enabled"] is True
    await host.wait_for(
        lambda frame: frame["type"] == "call.presence" and frame["participant"]["is_audio_only"] is True
    )
