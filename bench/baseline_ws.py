"""The baseline of the chats benchmark: a minimal `websockets` server that
broadcasts through raw Redis pub/sub, speaking the subset of the chat
protocol the load uses (docs/protocol.md) so that one load generator drives
both servers.

- Auth: `Authorization: Token <key>` on the handshake, looked up in a JSON
  file {key: {"user": id, "chats": [ids]}} (no database).
- Every socket subscribes to its chats' Redis channels "baseline.chat.<id>" (one
  shared pub/sub connection per process; a channel is subscribed once,
  however many sockets listen to it).
- A "send" frame takes the chat's next seq (INCR), PUBLISHes the message
  serialised once, and acknowledges; a published message is forwarded as is
  to every socket of the chat (websockets.broadcast).

    python -m bench.baseline_ws --port PORT --redis-url URL --tokens FILE
"""

import argparse
import asyncio
import datetime
import http
import json
import signal
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response


def frame_text(frame: dict[str, Any]) -> str:
    """The same encoding as the chat server's."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def hello_frame(account: dict[str, Any], chats: list[int], positions: list[Any]) -> str:
    """The "hello" of the protocol subset: the chats and their newest seq."""
    return frame_text(
        {
            "type": "hello",
            "user": {"id": account["user"]},
            "chats": [
                {"chat": chat_id, "last_seq": int(position or 0)}
                for chat_id, position in zip(chats, positions, strict=True)
            ],
        }
    )


def message_and_ack(frame: dict[str, Any], user_id: int, seq: int) -> tuple[str, str]:
    """A "send" frame's message frame (published) and its "ack"."""
    chat_id = frame["chat"]
    message = {
        "chat": chat_id,
        "seq": seq,
        "author": {"id": user_id},
        "client_id": frame.get("client_id"),
        "body": frame.get("body", ""),
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    ack = {
        "type": "ack",
        "ref": frame.get("ref"),
        "chat": chat_id,
        "seq": seq,
        "client_id": frame.get("client_id"),
        "status": "sent",
    }
    return frame_text({"type": "message", "message": message}), frame_text(ack)


class BaselineServer:
    def __init__(self, redis_url: str, tokens: dict[str, dict[str, Any]]) -> None:
        self.tokens = tokens
        # socket_timeout None: the subscriber connection is idle for long
        # stretches (redis-py 8 would otherwise time it out after 5 s).
        self.redis = aioredis.Redis.from_url(redis_url, socket_timeout=None)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.listeners: dict[bytes, set[ServerConnection]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe("baseline.control")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "message":
                sockets = self.listeners.get(message["channel"])
                if sockets:
                    broadcast(sockets, message["data"].decode())

    def authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        key = request.headers.get("Authorization", "").removeprefix("Token ").strip()
        if key not in self.tokens:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "invalid token\n")
        return None

    async def handle(self, socket: ServerConnection) -> None:
        assert socket.request is not None
        account = self.tokens[socket.request.headers["Authorization"].removeprefix("Token ").strip()]
        chats = set(account["chats"])
        channels = [f"baseline.chat.{chat_id}".encode() for chat_id in chats]
        for channel in channels:
            if channel not in self.listeners:
                self.listeners[channel] = set()
                await self.pubsub.subscribe(channel)
            self.listeners[channel].add(socket)
        try:
            positions = await self.redis.mget([f"baseline.seq.{chat_id}" for chat_id in sorted(chats)])
            await socket.send(hello_frame(account, sorted(chats), positions))
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("type") == "send" and frame.get("chat") in chats:
                    await self._send(socket, account["user"], frame)
                elif frame.get("type") == "ping":
                    await socket.send(frame_text({"type": "pong", "ref": frame.get("ref")}))
                else:
                    await socket.send(frame_text({"type": "error", "ref": frame.get("ref"), "code": "unsupported"}))
        finally:
            for channel in channels:
                self.listeners[channel].discard(socket)

    async def _send(self, socket: ServerConnection, user_id: int, frame: dict[str, Any]) -> None:
        chat_id = frame["chat"]
        seq = await self.redis.incr(f"baseline.seq.{chat_id}")
        message, ack = message_and_ack(frame, user_id, seq)
        await self.redis.publish(f"baseline.chat.{chat_id}", message)
        await socket.send(ack)


async def main(port: int, redis_url: str, tokens_path: str) -> None:
    with open(tokens_path) as tokens_file:
        tokens = json.load(tokens_file)
    server = BaselineServer(redis_url, tokens)
    await server.start()
    stop = asyncio.get_running_loop().create_future()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stop.set_result, None)
    async with serve(
        server.handle,
        "127.0.0.1",
        port,
        process_request=server.authenticate,
        compression=None,
        max_size=64 * 1024,
        backlog=4096,
    ):
        print(f"baseline listening on {port}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--tokens", required=True)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.redis_url, arguments.tokens))
