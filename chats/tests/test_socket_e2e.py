"""The chat WebSocket end to end: a real daphne process (tests/live.py) on
the test database and Redis, real clients (the `websockets` package), and
the example client of docs/protocol.md run exactly as printed there."""

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from django.db import connection
from django.db.models import F
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect

from accounts.services import api_token_create
from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message
from chats.services.messages import message_send
from organisations.tests.factories import make_user
from tests.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
TIMEOUT = 10


@pytest.fixture
def daphne(transactional_db) -> Iterator[LiveServer]:
    server = LiveServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _close_thread_connections():
    yield
    connection.close()


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws/"


def origin_of(server: LiveServer) -> Any:
    return server.url


def make_chat(*users: Any, kind: str = ChatKind.GROUP) -> Chat:
    chat = Chat.objects.create(kind=kind, title="7Б")
    for user in users:
        ChatMember.objects.create(chat=chat, user=user, role=MemberRole.MEMBER)
    return chat


def person_with_token() -> tuple[Any, str]:
    user = make_user()
    return user, api_token_create(user=user, name="e2e")


def open_socket(server: LiveServer, key: str | None = None, **options: Any) -> Any:
    headers = {"Authorization": "Token " + key} if key else {}
    headers.update(options.pop("headers", {}))
    return connect(ws_url(server), additional_headers=headers, proxy=None, open_timeout=TIMEOUT, **options)


async def receive(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=TIMEOUT))


async def receive_close_code(socket: ClientConnection) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(socket.recv(), timeout=TIMEOUT)
    return socket.close_code


def http(server: LiveServer, method: str, path: str, *, key: str, data: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + path,
        method=method,
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Authorization": "Token " + key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        body = response.read()
        return response.status, json.loads(body) if body else None


def healthz(server: LiveServer) -> int:
    with urllib.request.urlopen(server.url + "/healthz", timeout=TIMEOUT) as response:
        return int(response.status)


async def test_a_message_sent_by_one_client_reaches_the_other(daphne):
    (anna, anna_key), (ivan, ivan_key) = [await database_sync_to_async(person_with_token)() for _ in range(2)]
    chat = await database_sync_to_async(make_chat)(anna, ivan)

    async with open_socket(daphne, anna_key) as sender, open_socket(daphne, ivan_key) as receiver:
        assert (await receive(sender))["chats"] == [{"chat": chat.pk, "last_seq": 0}]
        assert (await receive(receiver))["type"] == "hello"
        await sender.send(json.dumps({"type": "send", "ref": 1, "chat": chat.pk, "client_id": "a1", "body": "Привет"}))

        answers = [await receive(sender), await receive(sender)]
        delivered = await receive(receiver)

    ack = next(frame for frame in answers if frame["type"] == "ack")
    assert (ack["ref"], ack["seq"], ack["status"], ack["client_id"]) == (1, 1, "sent", "a1")
    assert delivered["type"] == "message"
    assert (delivered["message"]["seq"], delivered["message"]["body"]) == (1, "Привет")
    assert delivered["message"]["author"]["id"] == anna.pk
    assert await database_sync_to_async(Message.objects.count)() == 1


async def test_after_a_reconnect_the_missed_messages_arrive_in_order(daphne):
    (anna, anna_key), (ivan, _ivan_key) = [await database_sync_to_async(person_with_token)() for _ in range(2)]
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    await database_sync_to_async(message_send)(user=ivan, chat_id=chat.pk, body="первое")
    async with open_socket(daphne, anna_key) as socket:
        hello = await receive(socket)
        assert hello["chats"] == [{"chat": chat.pk, "last_seq": 1}]
    for number in range(2, 7):
        await database_sync_to_async(message_send)(user=ivan, chat_id=chat.pk, body=f"сообщение {number}")

    async with open_socket(daphne, anna_key) as socket:
        hello = await receive(socket)
        await socket.send(json.dumps({"type": "sync", "chats": {str(chat.pk): 1}}))
        frames = [await receive(socket) for _ in range(6)]

    assert hello["chats"] == [{"chat": chat.pk, "last_seq": 6}]
    assert [(frame["type"], frame.get("message", {}).get("seq")) for frame in frames] == [
        ("message", 2),
        ("message", 3),
        ("message", 4),
        ("message", 5),
        ("message", 6),
        ("synced", None),
    ]
    assert frames[-1] == {"type": "synced", "ref": None, "chat": chat.pk, "last_seq": 6}


def _many_messages(chat: Chat, author: Any, count: int) -> None:
    Message.objects.bulk_create(
        [Message(chat=chat, seq=seq, author=author, body=f"m{seq}") for seq in range(1, count + 1)]
    )
    Chat.objects.filter(pk=chat.pk).update(last_seq=F("last_seq") + count)


async def test_a_gap_over_200_answers_resync_and_the_history_reloads_over_rest(daphne):
    anna, anna_key = await database_sync_to_async(person_with_token)()
    chat = await database_sync_to_async(make_chat)(anna)
    await database_sync_to_async(_many_messages)(chat, anna, 205)

    async with open_socket(daphne, anna_key) as socket:
        await receive(socket)
        await socket.send(json.dumps({"type": "sync", "ref": "s", "chats": {str(chat.pk): 4}}))
        resync = await receive(socket)
        await socket.send(json.dumps({"type": "sync", "ref": "t", "chats": {str(chat.pk): 5}}))
        batch = [await receive(socket) for _ in range(201)]

    assert resync == {"type": "resync", "ref": "s", "chat": chat.pk, "last_seq": 205}
    assert [frame["message"]["seq"] for frame in batch[:200]] == list(range(6, 206))
    assert batch[200] == {"type": "synced", "ref": "t", "chat": chat.pk, "last_seq": 205}
    status, page = await asyncio.to_thread(
        http, daphne, "GET", f"/api/v1/chats/{chat.pk}/messages/?after=105&limit=100", key=anna_key
    )
    assert status == 200
    assert [message["seq"] for message in page["messages"]] == list(range(106, 206))
    assert (page["last_seq"], page["has_more"]) == (205, False)


async def test_a_10_mb_frame_is_refused_and_the_server_carries_on(daphne):
    _anna, anna_key = await database_sync_to_async(person_with_token)()

    async with open_socket(daphne, anna_key, compression=None, max_size=None) as socket:
        await receive(socket)
        with pytest.raises(websockets.ConnectionClosed):
            await socket.send("x" * (10 * 1024 * 1024))
            while True:
                await asyncio.wait_for(socket.recv(), timeout=TIMEOUT)
        code = socket.close_code

    assert code == 1009
    assert await asyncio.to_thread(healthz, daphne) == 200
    async with open_socket(daphne, anna_key) as socket:
        assert (await receive(socket))["type"] == "hello"
        await socket.send(json.dumps({"type": "ping", "ref": 1}))
        assert await receive(socket) == {"type": "pong", "ref": 1}


async def test_a_frame_just_over_64_kb_closes_with_1009(daphne):
    _anna, anna_key = await database_sync_to_async(person_with_token)()

    async with open_socket(daphne, anna_key, compression=None) as socket:
        await receive(socket)
        await socket.send(json.dumps({"type": "ping", "pad": "x" * (64 * 1024)}))
        code = await receive_close_code(socket)

    assert code == 1009


async def test_a_foreign_origin_is_refused(daphne):
    _anna, anna_key = await database_sync_to_async(person_with_token)()

    with pytest.raises(websockets.InvalidStatus) as refused:
        async with open_socket(daphne, anna_key, origin="https://evil.example"):
            pass

    assert refused.value.response.status_code == 403


def _session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return "sessionid=" + client.cookies["sessionid"].value


async def test_a_session_cookie_without_origin_does_not_sign_in(daphne):
    anna = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(_session_cookie)(anna)

    async with open_socket(daphne, headers={"Cookie": cookie}, origin=origin_of(daphne)) as browser:
        hello = await receive(browser)
    async with open_socket(daphne, headers={"Cookie": cookie}) as replay:
        await replay.send(json.dumps({"type": "ping"}))
        code = await receive_close_code(replay)

    assert (hello["type"], hello["user"]["id"]) == ("hello", anna.pk)
    assert code == 4001


async def test_logout_everywhere_closes_the_open_socket(daphne):
    anna, anna_key = await database_sync_to_async(person_with_token)()
    cookie = await database_sync_to_async(_session_cookie)(anna)

    async with (
        open_socket(daphne, anna_key) as by_token,
        open_socket(daphne, headers={"Cookie": cookie}, origin=origin_of(daphne)) as by_session,
    ):
        await receive(by_token)
        await receive(by_session)
        status, _body = await asyncio.to_thread(http, daphne, "POST", "/api/v1/auth/logout-all/", key=anna_key)
        token_code = await receive_close_code(by_token)
        session_code = await receive_close_code(by_session)

    assert status in (200, 204)
    assert (token_code, session_code) == (4001, 4001)


async def test_the_first_frame_may_carry_the_token(daphne):
    anna, anna_key = await database_sync_to_async(person_with_token)()

    async with open_socket(daphne) as socket:
        await socket.send(json.dumps({"type": "auth", "token": anna_key}))
        hello = await receive(socket)

    assert (hello["type"], hello["user"]["id"]) == ("hello", anna.pk)


async def test_an_idle_socket_survives_and_then_receives(daphne):
    """channels-redis with redis-py 8 dropped idle connections after about
    5 s unless the layer's socket_timeout is None (settings)."""
    (anna, anna_key), (ivan, ivan_key) = [await database_sync_to_async(person_with_token)() for _ in range(2)]
    chat = await database_sync_to_async(make_chat)(anna, ivan)

    async with open_socket(daphne, anna_key, ping_interval=None) as socket:
        await receive(socket)
        await asyncio.sleep(8)
        status, _body = await asyncio.to_thread(
            http,
            daphne,
            "POST",
            f"/api/v1/chats/{chat.pk}/messages/",
            key=ivan_key,
            data={"body": "Вы тут?", "client_id": "idle-1"},
        )
        delivered = await receive(socket)

    assert status == 201
    assert (delivered["type"], delivered["message"]["body"]) == ("message", "Вы тут?")


def protocol_example() -> str:
    """The Python example client of docs/protocol.md."""
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- example-client -->\n```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/protocol.md must hold exactly one example client"
    return blocks[0]


async def test_the_example_client_of_the_protocol_document_works(daphne):
    (anna, anna_key), (ivan, _ivan_key) = [await database_sync_to_async(person_with_token)() for _ in range(2)]
    chat = await database_sync_to_async(make_chat)(anna, ivan)
    for number in range(1, 4):
        await database_sync_to_async(message_send)(user=ivan, chat_id=chat.pk, body=f"до {number}")
    namespace: dict[str, Any] = {"__name__": "protocol_example"}
    exec(compile(protocol_example(), str(PROTOCOL_DOC), "exec"), namespace)  # noqa: S102 - our own document
    client = namespace["ChatClient"](ws_url(daphne), anna_key)
    client.last_seq[chat.pk] = 1  # it saw the first message in an earlier session

    async def scenario() -> None:
        runner = asyncio.ensure_future(client.run())
        await asyncio.wait_for(client.synced.wait(), timeout=TIMEOUT)
        ack = await asyncio.wait_for(client.send(chat.pk, "Здравствуйте!"), timeout=TIMEOUT)
        assert (ack["type"], ack["status"], ack["seq"]) == ("ack", "sent", 4)
        await database_sync_to_async(message_send)(user=ivan, chat_id=chat.pk, body="после")
        for _ in range(100):
            if client.last_seq[chat.pk] == 5:
                break
            await asyncio.sleep(0.1)
        runner.cancel()

    await scenario()

    assert [(message["seq"], message["body"]) for message in client.received] == [
        (2, "до 2"),
        (3, "до 3"),
        (4, "Здравствуйте!"),
        (5, "после"),
    ]
    assert client.last_seq[chat.pk] == 5


async def test_the_example_client_reloads_over_rest_after_a_resync(daphne):
    anna, anna_key = await database_sync_to_async(person_with_token)()
    chat = await database_sync_to_async(make_chat)(anna)
    await database_sync_to_async(_many_messages)(chat, anna, 205)
    namespace: dict[str, Any] = {"__name__": "protocol_example"}
    exec(compile(protocol_example(), str(PROTOCOL_DOC), "exec"), namespace)  # noqa: S102 - our own document
    client = namespace["ChatClient"](ws_url(daphne), anna_key)

    runner = asyncio.ensure_future(client.run())
    await asyncio.wait_for(client.synced.wait(), timeout=TIMEOUT)
    runner.cancel()

    assert [message["seq"] for message in client.received] == list(range(106, 206))
    assert client.last_seq == {chat.pk: 205}
