"""A second reference point of the chats benchmark: the baseline's protocol
subset (bench/baseline_ws.py) as a bare ASGI application served by daphne,
with no Django, no database and no Channels. It measures what daphne itself
(Twisted and Autobahn underneath) costs per delivered frame, so that the
report can tell the server's floor from the portal's own work.

    BASELINE_TOKENS=FILE BASELINE_REDIS_URL=URL python -m daphne -p PORT bench.baseline_daphne:application
"""

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from bench.baseline_ws import frame_text, hello_frame, message_and_ack

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Hub:
    """One pub/sub connection per process; a message is forwarded to every
    socket of its chat as the same text."""

    def __init__(self) -> None:
        with open(os.environ["BASELINE_TOKENS"]) as tokens_file:
            self.tokens: dict[str, dict[str, Any]] = json.load(tokens_file)
        self.redis = aioredis.Redis.from_url(os.environ["BASELINE_REDIS_URL"], socket_timeout=None)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.listeners: dict[bytes, set[Send]] = {}
        self.started: asyncio.Future[None] | None = None
        self.reader: asyncio.Future[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe("baseline.control")
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "message":
                event = {"type": "websocket.send", "text": message["data"].decode()}
                for send in list(self.listeners.get(message["channel"], ())):
                    await send(event)


hub: Hub | None = None


async def application(scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Send) -> None:
    global hub
    if scope["type"] == "lifespan":
        return
    if scope["type"] != "websocket":
        # GET /healthz answers 200: bench.core.Daphne waits for it.
        status = 200 if scope["path"] == "/healthz" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if hub is None:
        hub = Hub()
        hub.started = asyncio.ensure_future(hub.start())
    assert hub.started is not None
    await hub.started
    headers = dict(scope["headers"])
    key = headers.get(b"authorization", b"").decode().removeprefix("Token ").strip()
    await receive()  # websocket.connect
    account = hub.tokens.get(key)
    if account is None:
        await send({"type": "websocket.close", "code": 4001})
        return
    await send({"type": "websocket.accept"})
    chats = set(account["chats"])
    channels = [f"baseline.chat.{chat_id}".encode() for chat_id in chats]
    for channel in channels:
        if channel not in hub.listeners:
            hub.listeners[channel] = set()
            await hub.pubsub.subscribe(channel)
        hub.listeners[channel].add(send)
    try:
        positions = await hub.redis.mget([f"baseline.seq.{chat_id}" for chat_id in sorted(chats)])
        await send({"type": "websocket.send", "text": hello_frame(account, sorted(chats), positions)})
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                break
            frame = json.loads(event.get("text") or "{}")
            if frame.get("type") == "send" and frame.get("chat") in chats:
                await _send(send, account["user"], frame)
            elif frame.get("type") == "ping":
                await send({"type": "websocket.send", "text": frame_text({"type": "pong", "ref": frame.get("ref")})})
    finally:
        for channel in channels:
            hub.listeners[channel].discard(send)


async def _send(send: Send, user_id: int, frame: dict[str, Any]) -> None:
    assert hub is not None
    chat_id = frame["chat"]
    seq = await hub.redis.incr(f"baseline.seq.{chat_id}")
    message, ack = message_and_ack(frame, user_id, seq)
    await hub.redis.publish(f"baseline.chat.{chat_id}", message)
    await send({"type": "websocket.send", "text": ack})
