"""The chat WebSocket consumer through the project's whole WebSocket stack
(Origin rule, session, token), with channels' WebsocketCommunicator and the
real channel layer. End-to-end tests through daphne: test_socket_e2e.py."""

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.services import api_token_create, session_logout_everywhere, user_block
from chats import consumers, events
from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message, Notification
from chats.routing import websocket_urlpatterns
from chats.services.messages import message_send
from chats.ws_auth import websocket_stack
from common import realtime
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
ENGLISH = (b"accept-language", b"en")
TIMEOUT = 5


def application() -> Any:
    return websocket_stack(URLRouter(websocket_urlpatterns))


def make_chat(*users: Any, kind: str = ChatKind.GROUP, **fields: Any) -> Chat:
    chat = Chat.objects.create(kind=kind, title="7Б", **fields)
    for user in users:
        ChatMember.objects.create(chat=chat, user=user, role=MemberRole.MEMBER)
    return chat


def token_of(user: Any) -> str:
    return api_token_create(user=user, name="test")


class Socket:
    """A WebsocketCommunicator with JSON helpers."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.communicator = WebsocketCommunicator(application(), "/ws/", headers=headers)

    async def open(self) -> bool:
        connected, _subprotocol = await self.communicator.connect(timeout=TIMEOUT)
        return bool(connected)

    async def send(self, frame: Any) -> None:
        await self.communicator.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout=TIMEOUT))

    async def receive_close(self) -> int:
        output = await self.communicator.receive_output(timeout=TIMEOUT)
        assert output["type"] == "websocket.close", output
        return int(output.get("code", 1000))

    async def nothing(self) -> bool:
        return bool(await self.communicator.receive_nothing(timeout=0.3))

    async def close(self) -> None:
        await self.communicator.disconnect()


async def signed_in(user: Any, *, origin: bool = True, language: bytes = b"en") -> tuple[Socket, dict[str, Any]]:
    """A socket signed in by token (error details in English unless
    `language` says otherwise); returns it and its hello."""
    key = await database_sync_to_async(token_of)(user)
    headers = [(b"authorization", ("Token " + key).encode()), (b"accept-language", language)]
    if origin:
        headers.append(ORIGIN)
    socket = Socket(headers)
    assert await socket.open()
    hello = await socket.receive()
    assert hello["type"] == "hello"
    return socket, hello


def session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return ("sessionid=" + client.cookies["sessionid"].value).encode()


@pytest.fixture(autouse=True)
def _close_thread_connections():
    yield
    # The ORM ran in executor threads whose connections would outlive the test.
    connection.close()


async def send_as(user: Any, chat: Chat, body: str, client_id: str = "") -> Message:
    message, _created = await database_sync_to_async(message_send)(
        user=user, chat_id=chat.pk, body=body, client_id=client_id
    )
    assert isinstance(message, Message)
    return message


# --- Signing in ------------------------------------------------------------------------------------------------


async def test_token_header_signs_in_and_hello_lists_the_chats():
    anna = await database_sync_to_async(make_user)(first_name="Анна", last_name="Иванова")
    ivan = await database_sync_to_async(make_user)()
    first = await database_sync_to_async(make_chat)(anna, ivan)
    second = await database_sync_to_async(make_chat)(anna)
    await database_sync_to_async(make_chat)(ivan)  # not Anna's
    await send_as(ivan, first, "Привет")

    socket, hello = await signed_in(anna)

    assert hello == {
        "type": "hello",
        "user": {"id": anna.pk, "display_name": str(anna.display_name)},
        "chats": [{"chat": first.pk, "last_seq": 1}, {"chat": second.pk, "last_seq": 0}],
        "limits": consumers.LIMITS,
    }
    await socket.close()


async def test_session_cookie_with_a_matching_origin_signs_in():
    anna = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(session_cookie)(anna)
    socket = Socket([ORIGIN, (b"cookie", cookie)])

    assert await socket.open()
    hello = await socket.receive()

    assert (hello["type"], hello["user"]["id"]) == ("hello", anna.pk)
    await socket.close()


async def test_a_foreign_origin_is_refused_at_the_handshake():
    anna = await database_sync_to_async(make_user)()
    key = await database_sync_to_async(token_of)(anna)
    cookie = await database_sync_to_async(session_cookie)(anna)
    socket = Socket(
        [(b"origin", b"https://evil.example"), (b"cookie", cookie), (b"authorization", ("Token " + key).encode())]
    )

    assert await socket.open() is False


async def test_without_origin_the_session_cookie_does_not_sign_in(monkeypatch):
    monkeypatch.setattr(consumers, "AUTH_TIMEOUT_SECONDS", 0.2)
    anna = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(session_cookie)(anna)
    socket = Socket([(b"cookie", cookie)])

    assert await socket.open()

    assert await socket.receive_close() == 4001


async def test_without_origin_a_token_signs_in():
    anna = await database_sync_to_async(make_user)()

    socket, hello = await signed_in(anna, origin=False)

    assert hello["user"]["id"] == anna.pk
    await socket.close()


@pytest.mark.parametrize("header", [b"Token not-a-token", b"Bearer abc", b"Token "])
async def test_a_bad_authorization_header_closes_with_4001(header):
    socket = Socket([ORIGIN, (b"authorization", header)])

    assert await socket.open()

    assert await socket.receive_close() == 4001


async def test_a_token_of_a_blocked_user_closes_with_4001():
    anna = await database_sync_to_async(make_user)()
    key = await database_sync_to_async(token_of)(anna)
    await database_sync_to_async(lambda: type(anna).objects.filter(pk=anna.pk).update(is_active=False))()
    socket = Socket([ORIGIN, (b"authorization", ("Token " + key).encode())])

    assert await socket.open()

    assert await socket.receive_close() == 4001


async def test_the_first_frame_may_carry_the_token():
    anna = await database_sync_to_async(make_user)()
    key = await database_sync_to_async(token_of)(anna)
    socket = Socket([ENGLISH])
    assert await socket.open()

    await socket.send({"type": "auth", "token": key})

    hello = await socket.receive()
    assert (hello["type"], hello["user"]["id"]) == ("hello", anna.pk)
    await socket.send({"type": "auth", "token": key, "ref": "again"})
    assert await socket.receive() == {
        "type": "error",
        "ref": "again",
        "code": "already_authenticated",
        "detail": "This socket is already signed in.",
    }
    await socket.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "auth", "token": "wrong"},
        {"type": "auth"},
        {"type": "ping"},
        "not json",
    ],
)
async def test_a_first_frame_that_does_not_sign_in_closes_with_4001(frame):
    socket = Socket([])
    assert await socket.open()

    await socket.send(frame)

    assert await socket.receive_close() == 4001


async def test_no_first_frame_within_the_time_limit_closes_with_4001(monkeypatch):
    monkeypatch.setattr(consumers, "AUTH_TIMEOUT_SECONDS", 0.2)
    socket = Socket([ORIGIN])
    assert await socket.open()

    assert await socket.receive_close() == 4001


async def test_logout_everywhere_closes_the_socket_with_4001():
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await database_sync_to_async(session_logout_everywhere)(user=anna)

    assert await socket.receive_close() == 4001


async def test_blocking_the_account_closes_a_session_socket_with_4001():
    anna = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(session_cookie)(anna)
    socket = Socket([ORIGIN, (b"cookie", cookie)])
    assert await socket.open()
    assert (await socket.receive())["type"] == "hello"

    await database_sync_to_async(user_block)(actor=None, user=anna, reason="test")

    assert await socket.receive_close() == 4001


# --- Sending ---------------------------------------------------------------------------------------------------


async def test_send_is_acknowledged_after_commit_and_reaches_the_other_member():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    sender, _hello = await signed_in(anna)
    receiver, _hello = await signed_in(ivan)

    await sender.send({"type": "send", "ref": 7, "chat": chat.pk, "client_id": "c-1", "body": "Домашнее задание"})

    frames = [await sender.receive(), await sender.receive()]
    message = await database_sync_to_async(Message.objects.get)()
    ack = next(frame for frame in frames if frame["type"] == "ack")
    assert ack == {
        "type": "ack",
        "ref": 7,
        "chat": chat.pk,
        "seq": 1,
        "client_id": "c-1",
        "status": "sent",
        "message": message.pk,
    }
    payload = await database_sync_to_async(lambda: events.message_payload(Message.objects.get()))()
    assert next(frame for frame in frames if frame["type"] == "message") == {"type": "message", "message": payload}
    assert await receiver.receive() == {"type": "message", "message": payload}
    assert payload["body"] == "Домашнее задание"
    await sender.close()
    await receiver.close()


async def test_a_resend_with_the_same_client_id_is_a_duplicate_and_another_body_is_refused():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna, language=b"")  # Russian by default
    await socket.send({"type": "send", "chat": chat.pk, "client_id": "c-1", "body": "Привет"})
    first = [await socket.receive(), await socket.receive()]
    assert {frame["type"] for frame in first} == {"ack", "message"}

    await socket.send({"type": "send", "ref": "r2", "chat": chat.pk, "client_id": "c-1", "body": "Привет"})
    duplicate = await socket.receive()
    await socket.send({"type": "send", "ref": "r3", "chat": chat.pk, "client_id": "c-1", "body": "Другое"})
    conflict = await socket.receive()

    message = await database_sync_to_async(Message.objects.get)()
    assert duplicate == {
        "type": "ack",
        "ref": "r2",
        "chat": chat.pk,
        "seq": 1,
        "client_id": "c-1",
        "status": "duplicate",
        "message": message.pk,
    }
    assert conflict == {
        "type": "error",
        "ref": "r3",
        "code": "client_id_conflict",
        "detail": "Этот client_id уже использован для другого сообщения.",
        "chat": chat.pk,
    }
    assert await socket.nothing()
    assert await database_sync_to_async(Message.objects.count)() == 1
    await socket.close()


async def test_sending_to_a_chat_one_is_not_in_is_not_found_and_stores_nothing():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    others = await database_sync_to_async(make_chat)(ivan)
    socket, _hello = await signed_in(anna)
    listener, _hello = await signed_in(ivan)

    await socket.send({"type": "send", "ref": 1, "chat": others.pk, "client_id": "x", "body": "Привет"})

    assert await socket.receive() == {
        "type": "error",
        "ref": 1,
        "code": "not_found",
        "detail": "Not found.",
        "chat": others.pk,
    }
    assert await database_sync_to_async(Message.objects.count)() == 0
    assert await database_sync_to_async(Notification.objects.count)() == 0
    assert await listener.nothing()
    assert await socket.nothing()
    await socket.close()
    await listener.close()


async def test_membership_is_checked_on_every_frame():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)
    await database_sync_to_async(
        lambda: ChatMember.objects.filter(chat=chat, user=anna).update(left_at=timezone.now())
    )()

    await socket.send({"type": "send", "ref": 1, "chat": chat.pk, "body": "Ещё тут?"})
    refused = await socket.receive()
    await socket.send({"type": "sync", "ref": 2, "chats": {str(chat.pk): 0}})
    refused_sync = await socket.receive()
    await socket.send({"type": "typing", "ref": 3, "chat": chat.pk})
    refused_typing = await socket.receive()

    assert [refused["code"], refused_sync["code"], refused_typing["code"]] == ["not_found"] * 3
    assert [refused["ref"], refused_sync["ref"], refused_typing["ref"]] == [1, 2, 3]
    assert await database_sync_to_async(Message.objects.count)() == 0
    # The socket stopped listening to the chat it left.
    await send_as_system(chat)
    assert await socket.nothing()
    await socket.close()


async def send_as_system(chat: Chat) -> None:
    from chats.services.messages import message_system_post

    await database_sync_to_async(message_system_post)(chat=chat, text="system")


async def test_a_posting_rule_refusal_is_an_error_frame_and_the_socket_stays_open():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, is_announcement_only=True)
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "send", "ref": "a", "chat": chat.pk, "body": "Можно?"})

    assert await socket.receive() == {
        "type": "error",
        "ref": "a",
        "code": "announcement_only",
        "detail": "Only teachers post in this chat now.",
        "chat": chat.pk,
    }
    assert await database_sync_to_async(Message.objects.count)() == 0
    await socket.send({"type": "ping", "ref": "p"})
    assert await socket.receive() == {"type": "pong", "ref": "p"}
    await socket.close()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "send", "body": "x"}, "chat"),
        ({"type": "send", "chat": "1", "body": "x"}, "chat"),
        ({"type": "send", "chat": True, "body": "x"}, "chat"),
        ({"type": "typing", "chat": -1}, "chat"),
        ({"type": "sync", "chats": [1]}, "chats"),
        ({"type": "sync", "chats": {"abc": 1}}, "chats"),
        ({"type": "sync", "chats": {"1": -1}}, "chats"),
    ],
)
async def test_invalid_fields_are_refused_by_name(frame, field):
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.send({**frame, "ref": "f"})

    answer = await socket.receive()
    assert (answer["type"], answer["ref"], answer["code"], answer["field"]) == ("error", "f", "invalid", field)
    await socket.close()


async def test_html_in_a_body_is_stored_and_sent_as_text():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)
    body = '<script>alert("x")</script><img src=x onerror=alert(1)>'

    await socket.send({"type": "send", "chat": chat.pk, "client_id": "h", "body": body})

    frames = [await socket.receive(), await socket.receive()]
    message = next(frame for frame in frames if frame["type"] == "message")
    assert message["message"]["body"] == body
    assert await database_sync_to_async(lambda: Message.objects.get().body)() == body
    await socket.close()


# --- Catching up -----------------------------------------------------------------------------------------------


async def test_sync_sends_the_missed_messages_in_order_then_synced():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    quiet = await database_sync_to_async(make_chat)(anna)
    for number in range(1, 6):
        await send_as(ivan, chat, f"сообщение {number}")
    socket, hello = await signed_in(anna)
    assert hello["chats"] == [{"chat": chat.pk, "last_seq": 5}, {"chat": quiet.pk, "last_seq": 0}]

    await socket.send({"type": "sync", "ref": "s", "chats": {str(chat.pk): 2, str(quiet.pk): 0}})

    frames = [await socket.receive() for _ in range(5)]
    assert [(frame["type"], frame.get("message", {}).get("seq")) for frame in frames] == [
        ("message", 3),
        ("message", 4),
        ("message", 5),
        ("synced", None),
        ("synced", None),
    ]
    assert [frame["message"]["body"] for frame in frames[:3]] == ["сообщение 3", "сообщение 4", "сообщение 5"]
    assert frames[3] == {"type": "synced", "ref": "s", "chat": chat.pk, "last_seq": 5}
    assert frames[4] == {"type": "synced", "ref": "s", "chat": quiet.pk, "last_seq": 0}
    assert await socket.nothing()
    await socket.close()


async def test_sync_answers_resync_when_the_gap_is_too_large(monkeypatch):
    monkeypatch.setattr(consumers, "SYNC_BATCH", 3)
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    for number in range(5):
        await send_as(anna, chat, f"m{number}")
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "sync", "chats": {str(chat.pk): 1}})
    resync = await socket.receive()
    await socket.send({"type": "sync", "chats": {str(chat.pk): 9}})
    ahead = await socket.receive()
    await socket.send({"type": "sync", "chats": {str(chat.pk): 2}})
    within = [await socket.receive() for _ in range(4)]

    assert resync == {"type": "resync", "ref": None, "chat": chat.pk, "last_seq": 5}
    assert ahead == {"type": "resync", "ref": None, "chat": chat.pk, "last_seq": 5}
    assert [frame.get("message", {}).get("seq") for frame in within] == [3, 4, 5, None]
    assert within[3]["type"] == "synced"
    await socket.close()


async def test_sync_of_a_chat_one_is_not_in_leaks_nothing():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    others = await database_sync_to_async(make_chat)(ivan)
    await send_as(ivan, others, "секрет")
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "sync", "ref": 1, "chats": {str(others.pk): 0, "999999": 0}})

    assert await socket.receive() == {
        "type": "error",
        "ref": 1,
        "code": "not_found",
        "detail": "Not found.",
        "chat": others.pk,
    }
    assert (await socket.receive())["chat"] == 999999
    assert await socket.nothing()
    await socket.close()


async def test_a_chat_joined_while_connected_is_listened_to():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    socket, hello = await signed_in(anna)
    assert hello["chats"] == []
    chat = await database_sync_to_async(make_chat)(anna, ivan)

    await database_sync_to_async(
        lambda: events.user_event_publish(user_id=anna.pk, event={"type": "chat.joined", "chat": chat.pk})
    )()
    assert await socket.receive() == {"type": "chat.joined", "chat": chat.pk}
    await send_as(ivan, chat, "Добро пожаловать")

    frame = await socket.receive()
    assert (frame["type"], frame["message"]["body"]) == ("message", "Добро пожаловать")

    await database_sync_to_async(
        lambda: events.user_event_publish(user_id=anna.pk, event={"type": "chat.left", "chat": chat.pk})
    )()
    assert await socket.receive() == {"type": "chat.left", "chat": chat.pk}
    await send_as(ivan, chat, "Пока")
    assert await socket.nothing()
    await socket.close()


# --- Typing ----------------------------------------------------------------------------------------------------


async def test_typing_reaches_the_others_once_per_interval_and_is_not_stored():
    anna = await database_sync_to_async(make_user)(first_name="Анна", last_name="Иванова")
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    typist, _hello = await signed_in(anna)
    second_device, _hello = await signed_in(anna)
    reader, _hello = await signed_in(ivan)

    await typist.send({"type": "typing", "chat": chat.pk})
    await typist.send({"type": "typing", "chat": chat.pk})
    await second_device.send({"type": "typing", "chat": chat.pk})

    assert await reader.receive() == {
        "type": "typing",
        "chat": chat.pk,
        "user": {"id": anna.pk, "display_name": str(anna.display_name)},
    }
    assert await reader.nothing()
    assert await typist.nothing()
    assert (await second_device.receive())["type"] == "typing"  # another device sees it, the typist does not
    assert await database_sync_to_async(Message.objects.count)() == 0
    for socket in (typist, second_device, reader):
        await socket.close()


async def test_a_channel_reader_cannot_announce_typing():
    anna = await database_sync_to_async(make_user)()
    channel = await database_sync_to_async(make_chat)(anna, kind=ChatKind.CHANNEL)
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "typing", "ref": 1, "chat": channel.pk})

    answer = await socket.receive()
    assert (answer["type"], answer["code"]) == ("error", "channel_read_only")
    await socket.close()


# --- Bad input -------------------------------------------------------------------------------------------------


async def test_ping_answers_pong_with_the_ref():
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "ping", "ref": "p1"})

    assert await socket.receive() == {"type": "pong", "ref": "p1"}
    await socket.close()


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '"text"',
        "null",
        "[" * 60_000,
        '{"type": "ping", "x": ' + "[" * 21 + "]" * 21 + "}",
        '{"type": "ping", "x": ' + '{"a":' * 25 + "1" + "}" * 25 + "}",
        '{"type": "ping", "ref": {"a": 1}}',
        '{"type": "ping", "ref": "' + "r" * 65 + '"}',
    ],
)
async def test_malformed_frames_get_invalid_frame_and_the_socket_survives(text):
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.send(text)

    answer = await socket.receive()
    assert (answer["type"], answer["code"], answer["ref"]) == ("error", "invalid_frame", None)
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong", "ref": None}
    await socket.close()


async def test_nesting_up_to_the_limit_is_accepted():
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.send('{"type": "ping", "x": ' + "[" * 19 + "]" * 19 + "}")

    assert await socket.receive() == {"type": "pong", "ref": None}
    await socket.close()


@pytest.mark.parametrize("kind", ["launch", 5, None])
async def test_unknown_frame_types_get_unknown_type(kind):
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.send({"type": kind, "ref": "u"})

    answer = await socket.receive()
    assert (answer["type"], answer["code"], answer["ref"]) == ("error", "unknown_type", "u")
    await socket.close()


async def test_a_frame_over_64_kb_closes_with_1009():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "send", "chat": chat.pk, "body": "я" * 33_000})  # 66 KB of UTF-8

    assert await socket.receive_close() == 1009
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_a_binary_frame_is_invalid():
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.communicator.send_to(bytes_data=b'{"type": "ping"}')

    answer = await socket.receive()
    assert (answer["type"], answer["code"]) == ("error", "invalid_frame")
    await socket.close()


async def test_a_flood_is_throttled_and_sustained_abuse_closes_with_4008(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(consumers, "clock", lambda: now[0])
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    for _ in range(consumers.RATE_BURST + 1):
        await socket.send({"type": "ping"})
    answers = [await socket.receive() for _ in range(consumers.RATE_BURST + 1)]
    assert [answer["type"] for answer in answers] == ["pong"] * consumers.RATE_BURST + ["error"]
    assert answers[-1] == {
        "type": "error",
        "ref": None,
        "code": "throttled",
        "detail": "Too many frames; slow down.",
    }

    now[0] += 1.0  # ten frames' worth of tokens
    for _ in range(10):
        await socket.send({"type": "ping"})
    assert [(await socket.receive())["type"] for _ in range(10)] == ["pong"] * 10

    for _ in range(consumers.THROTTLED_MAX):
        await socket.send({"type": "ping"})
    throttled = [await socket.receive() for _ in range(consumers.THROTTLED_MAX)]
    assert {answer["code"] for answer in throttled} == {"throttled"}
    await socket.send({"type": "ping"})
    assert await socket.receive_close() == 4008


async def test_a_chat_event_is_forwarded_exactly_as_published():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)
    text = '{"type":"message.deleted","chat":' + str(chat.pk) + ',"seq":1}'

    await database_sync_to_async(realtime.publish)(events.chat_group_name(chat.pk), text)

    assert await socket.communicator.receive_from(timeout=TIMEOUT) == text
    await socket.close()


async def test_a_send_racing_a_disconnect_does_not_break(monkeypatch):
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "send", "chat": chat.pk, "client_id": "last", "body": "И всё"})
    await socket.close()
    await asyncio.sleep(0.2)

    assert await database_sync_to_async(Message.objects.count)() == 1


# --- Read, edit, delete, react, acknowledge ---------------------------------------------------------------------


async def test_read_moves_the_read_position_and_tells_the_other_devices():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    for number in range(3):
        await send_as(ivan, chat, f"m{number}")
    socket, _hello = await signed_in(anna)
    other_device, _hello = await signed_in(anna)

    await socket.send({"type": "read", "ref": "r", "chat": chat.pk, "seq": 2})

    frames = [await socket.receive(), await socket.receive()]
    assert {"type": "ack", "ref": "r", "chat": chat.pk, "seq": 2, "last_seq": 3} in frames
    assert {"type": "chat.read", "chat": chat.pk, "seq": 2} in frames
    assert await other_device.receive() == {"type": "chat.read", "chat": chat.pk, "seq": 2}
    member = await database_sync_to_async(ChatMember.objects.get)(chat=chat, user=anna)
    assert member.last_read_seq == 2
    await socket.close()
    await other_device.close()


async def test_edit_delete_and_react_answer_ack_and_reach_the_chat():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    await send_as(anna, chat, "Черновик")
    socket, _hello = await signed_in(anna)
    reader, _hello = await signed_in(ivan)

    await socket.send({"type": "edit", "ref": 1, "chat": chat.pk, "seq": 1, "body": "Исправлено"})
    edited = [await socket.receive(), await socket.receive()]
    updated = await reader.receive()
    await socket.send({"type": "react", "ref": 2, "chat": chat.pk, "seq": 1, "emoji": "👍"})
    reacted = [await socket.receive(), await socket.receive()]
    reactions = await reader.receive()
    await socket.send({"type": "delete", "ref": 3, "chat": chat.pk, "seq": 1})
    deleted = [await socket.receive(), await socket.receive()]

    assert {"type": "ack", "ref": 1, "chat": chat.pk, "seq": 1} in edited
    assert (updated["type"], updated["message"]["body"], updated["message"]["seq"]) == (
        "message.updated",
        "Исправлено",
        1,
    )
    assert {"type": "ack", "ref": 2, "chat": chat.pk, "seq": 1, "added": True, "reactions": {"👍": 1}} in reacted
    assert reactions == {"type": "message.reactions", "chat": chat.pk, "seq": 1, "reactions": {"👍": 1}}
    assert {"type": "ack", "ref": 3, "chat": chat.pk, "seq": 1} in deleted
    assert await reader.receive() == {"type": "message.deleted", "chat": chat.pk, "seq": 1}
    message = await database_sync_to_async(Message.objects.get)()
    assert (message.body, message.deleted_at is not None) == ("", True)
    await socket.close()
    await reader.close()


async def test_editing_someone_elses_message_is_refused_and_changes_nothing():
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    await send_as(ivan, chat, "Моё")
    socket, _hello = await signed_in(anna)
    reader, _hello = await signed_in(ivan)

    await socket.send({"type": "edit", "ref": 1, "chat": chat.pk, "seq": 1, "body": "Чужое"})
    await socket.send({"type": "delete", "ref": 2, "chat": chat.pk, "seq": 1})
    await socket.send({"type": "edit", "ref": 3, "chat": chat.pk, "seq": 99, "body": "Нет"})

    answers = [await socket.receive() for _ in range(3)]
    assert [(answer["type"], answer["ref"], answer["code"]) for answer in answers] == [
        ("error", 1, "not_author"),
        ("error", 2, "not_author"),
        ("error", 3, "not_found"),
    ]
    message = await database_sync_to_async(Message.objects.get)()
    assert (message.body, message.edited_at, message.deleted_at) == ("Моё", None, None)
    assert await reader.nothing()
    # Still a member: a missing message does not stop the chat's events.
    await send_as(ivan, chat, "Ещё")
    assert (await socket.receive())["type"] == "message"
    await socket.close()
    await reader.close()


async def test_a_subscriber_acknowledges_a_channel_post():
    editor = await database_sync_to_async(make_user)()
    reader = await database_sync_to_async(make_user)()
    channel = await database_sync_to_async(make_chat)(reader, kind=ChatKind.CHANNEL)
    await database_sync_to_async(ChatMember.objects.create)(chat=channel, user=editor, role=MemberRole.EDITOR)
    await database_sync_to_async(message_send)(
        user=editor, chat_id=channel.pk, body="Собрание в четверг", requires_acknowledgement=True
    )
    socket, _hello = await signed_in(reader)

    await socket.send({"type": "acknowledge", "ref": "a", "chat": channel.pk, "seq": 1})
    first = await socket.receive()
    await socket.send({"type": "acknowledge", "ref": "b", "chat": channel.pk, "seq": 1})
    second = await socket.receive()

    assert first == {"type": "ack", "ref": "a", "chat": channel.pk, "seq": 1, "status": "acknowledged"}
    assert second == {"type": "ack", "ref": "b", "chat": channel.pk, "seq": 1, "status": "duplicate"}
    await socket.close()


@pytest.mark.parametrize("kind", ["edit", "delete", "react", "acknowledge"])
async def test_message_frames_need_a_seq(kind):
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)

    await socket.send({"type": kind, "ref": 1, "chat": chat.pk, "seq": "1"})

    answer = await socket.receive()
    assert (answer["code"], answer["field"]) == ("invalid", "seq")
    await socket.close()


async def test_catch_up_carries_what_the_rest_history_adds():
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    await send_as(anna, chat, "С реакцией")
    from chats.services.content import reaction_toggle

    await database_sync_to_async(reaction_toggle)(user=anna, chat_id=chat.pk, seq=1, emoji="🔥")
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "sync", "chats": {str(chat.pk): 0}})

    message = (await socket.receive())["message"]
    assert (message["body"], message["reactions"], message["my_reactions"], message["attachments"]) == (
        "С реакцией",
        {"🔥": 1},
        ["🔥"],
        [],
    )
    assert (await socket.receive())["type"] == "synced"
    await socket.close()


async def test_the_send_budget_is_shared_with_rest_and_a_refusal_stores_nothing(settings):
    settings.CHAT_SEND_RATE = "2/minute"
    anna = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna)
    socket, _hello = await signed_in(anna)

    def rest_send() -> int:
        client = Client()
        client.force_login(anna)
        response = client.post(
            f"/api/v1/chats/{chat.pk}/messages/", {"body": "по REST"}, content_type="application/json"
        )
        return response.status_code

    assert await database_sync_to_async(rest_send)() == 201
    for number in range(2):
        await socket.send({"type": "send", "ref": number, "chat": chat.pk, "client_id": f"c{number}", "body": "x"})
    frames = [await socket.receive() for _ in range(4)]

    refused = [frame for frame in frames if frame["type"] == "error"]
    assert len(refused) == 1
    assert (refused[0]["ref"], refused[0]["code"], refused[0]["chat"]) == (1, "rate_limited", chat.pk)
    assert 1 <= refused[0]["retry_after"] <= 60
    assert await database_sync_to_async(Message.objects.count)() == 2
    assert await database_sync_to_async(rest_send)() == 429
    await socket.close()


# --- Permission matrix of the socket's actions (SPEC §10) --------------------------------------------------------

# The class chats of 7Б at school A (tests/test_permission_matrix.World): the
# students' chat has the class's teacher (moderator) and students, the
# parents' chat the teacher and parents. Message 1 is the teacher's, message 2
# the student's (students' chat) or the parent's (parents' chat). "ok" is
# success (ack, synced, or silence for typing); otherwise the error code, or
# 4001 for a socket that never signs in.
SOCKET_ACTIONS = {
    "sync": {"type": "sync", "chats": {"CHAT": 0}},
    "send": {"type": "send", "chat": "CHAT", "client_id": "matrix", "body": "Проверка"},
    "read": {"type": "read", "chat": "CHAT", "seq": 1},
    "typing": {"type": "typing", "chat": "CHAT"},
    "react": {"type": "react", "chat": "CHAT", "seq": 1, "emoji": "👍"},
    "edit": {"type": "edit", "chat": "CHAT", "seq": 1, "body": "Исправлено"},
    "delete": {"type": "delete", "chat": "CHAT", "seq": "OWN_SEQ"},
}
MEMBER_ACTIONS = dict.fromkeys(SOCKET_ACTIONS, "ok")
OUTSIDER = dict.fromkeys(SOCKET_ACTIONS, "not_found")
SOCKET_MATRIX = {
    "students": {
        "anonymous": dict.fromkeys(SOCKET_ACTIONS, 4001),
        "stranger": OUTSIDER,
        "student": {**MEMBER_ACTIONS, "edit": "not_author"},
        "parent": OUTSIDER,
        "teacher": MEMBER_ACTIONS,
        "administrator": OUTSIDER,
        "official": OUTSIDER,
        "other_admin": OUTSIDER,
    },
    "parents": {
        "anonymous": dict.fromkeys(SOCKET_ACTIONS, 4001),
        "stranger": OUTSIDER,
        "student": OUTSIDER,
        "parent": {**MEMBER_ACTIONS, "edit": "not_author"},
        "teacher": MEMBER_ACTIONS,
        "administrator": OUTSIDER,
        "official": OUTSIDER,
        "other_admin": OUTSIDER,
    },
}


def socket_world(audience: str) -> tuple[Any, Chat]:
    from chats.services.sync import chats_sync
    from tests.test_permission_matrix import World

    world = World()
    chats_sync(organisation_ids=[world.school.pk, world.other_school.pk])
    kind = ChatKind.CLASS_STUDENTS if audience == "students" else ChatKind.CLASS_PARENTS
    chat = Chat.objects.get(kind=kind, study_group=world.group)
    message_send(user=world.users["teacher"], chat_id=chat.pk, body="Задание на завтра")
    author = world.users["student" if audience == "students" else "parent"]
    message_send(user=author, chat_id=chat.pk, body="Спасибо")
    chat.refresh_from_db()  # last_seq: the member's own "Спасибо"
    return world, chat


def frame_for(action: str, chat: Chat) -> str:
    text = json.dumps(SOCKET_ACTIONS[action])
    text = text.replace('"OWN_SEQ"', str(chat.last_seq))
    return text.replace('"CHAT":', f'"{chat.pk}":').replace('"CHAT"', str(chat.pk))


async def socket_outcome(socket: Socket, action: str) -> Any:
    while True:
        if action == "typing" and await socket.nothing():
            return "ok"
        answer = await socket.receive()
        if answer["type"] in ("ack", "synced"):
            return "ok"
        if answer["type"] == "error":
            return answer["code"]
        # message frames of a catch-up or a live event: not the answer yet


CHATS_AND_ROLES = [(audience, role) for audience in SOCKET_MATRIX for role in SOCKET_MATRIX[audience]]


@pytest.mark.parametrize(("audience", "role"), CHATS_AND_ROLES, ids=[f"{a} chat as {r}" for a, r in CHATS_AND_ROLES])
async def test_socket_permission_matrix(audience, role):
    world, chat = await database_sync_to_async(socket_world)(audience)
    stored = database_sync_to_async(lambda: sorted(Message.objects.values_list("chat_id", "seq", "body")))
    messages_before = await stored()
    outcomes: dict[str, Any] = {}
    if role == "anonymous":
        for action in SOCKET_ACTIONS:
            socket = Socket([ORIGIN, ENGLISH])
            assert await socket.open()
            await socket.communicator.send_to(text_data=frame_for(action, chat))
            outcomes[action] = await socket.receive_close()
    else:
        socket, _hello = await signed_in(world.users[role])
        for action in SOCKET_ACTIONS:
            await socket.communicator.send_to(text_data=frame_for(action, chat))
            outcomes[action] = await socket_outcome(socket, action)
        await socket.close()

    assert outcomes == SOCKET_MATRIX[audience][role]
    if role not in ("student", "parent", "teacher"):
        # Nothing stored by the refusals: the chat ends with the two set-up messages still.
        assert [body for chat_id, _seq, body in messages_before if chat_id == chat.pk][-2:] == [
            "Задание на завтра",
            "Спасибо",
        ]
        assert await stored() == messages_before


@pytest.mark.parametrize("key", ["²", "١", "-1", "1.0", "9" * 20, ""])
async def test_sync_chat_ids_must_be_ascii_digits(key):
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    await socket.send({"type": "sync", "ref": 1, "chats": {key: 0}})

    answer = await socket.receive()
    assert (answer["type"], answer["code"], answer["field"]) == ("error", "invalid", "chats")
    await socket.close()


async def test_a_revoked_token_closes_only_its_own_sockets():
    from accounts.authentication import token_key_hash
    from accounts.events import user_group_name

    anna = await database_sync_to_async(make_user)()
    key = await database_sync_to_async(token_of)(anna)
    phone = Socket([ORIGIN, (b"authorization", ("Token " + key).encode())])
    assert await phone.open()
    assert (await phone.receive())["type"] == "hello"
    laptop, _hello = await signed_in(anna)

    await database_sync_to_async(realtime.publish)(
        user_group_name(anna.pk),
        json.dumps({"type": "token.revoked", "key_hash": token_key_hash(key)}, separators=(",", ":")),
    )

    assert await phone.receive_close() == 4001
    await laptop.send({"type": "ping"})
    assert await laptop.receive() == {"type": "pong", "ref": None}
    await laptop.close()


async def test_after_a_redis_outage_the_socket_says_hello_again_with_what_it_missed(private_redis):
    anna = await database_sync_to_async(make_user)()
    ivan = await database_sync_to_async(make_user)()
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    socket, hello = await signed_in(anna)
    assert hello["chats"] == [{"chat": chat.pk, "last_seq": 0}]

    private_redis.stop()
    await database_sync_to_async(message_send)(user=ivan, chat_id=chat.pk, body="Пока Redis лежал")
    private_redis.start()

    again = await socket.receive()
    assert (again["type"], again["chats"]) == ("hello", [{"chat": chat.pk, "last_seq": 1}])
    await socket.send({"type": "sync", "ref": 1, "chats": {str(chat.pk): 0}})
    missed = await socket.receive()
    assert (missed["type"], missed["message"]["body"]) == ("message", "Пока Redis лежал")
    await socket.close()


async def test_a_logout_during_a_redis_outage_closes_the_socket_once_redis_is_back(private_redis):
    anna = await database_sync_to_async(make_user)()
    socket, _hello = await signed_in(anna)

    private_redis.stop()
    await database_sync_to_async(session_logout_everywhere)(user=anna)
    private_redis.start()

    assert await socket.receive_close() == 4001
