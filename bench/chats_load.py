"""The load generator of the chats benchmark: many WebSocket clients in one
asyncio loop (the bench process), with the bookkeeping that proves delivery
(lost, duplicated, out of order per chat) and times it.

One generator drives both daphne and the baseline server, with the frames of
docs/protocol.md ("Chat WebSocket"): the server's "hello" after the
handshake (`Authorization: Token <key>`), "send" answered by "ack" (or an
"error" with the same "ref"), "message" events, and — for the chaos run —
"sync" answered by the missed "message" frames then "synced", or "resync"."""

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

WS_PATH = "/ws/"
HELLO_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Account:
    user: int
    token: str
    chats: tuple[int, ...]


class SendRefused(Exception):
    """The server answered a "send" with an "error" frame."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(frame.get("code"))
        self.frame = frame


class Delivery:
    """What every socket received, and when: per (socket, chat) the seqs in
    arrival order (duplicates and order checked as they come), per message
    the receipts (latency from "send" to the last expected receiver)."""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.chat_of: dict[str, int] = {}
        self.acked: dict[str, int] = {}  # client_id -> seq
        self.ack_waiters: dict[str, asyncio.Future[int]] = {}
        self.receivers: dict[int, int] = {}  # chat -> sockets expected to receive
        self.receipts: dict[str, list[float]] = {}  # client_id -> [count, last receipt]
        self.completed: dict[int, int] = {}  # chat -> messages received by all its receivers
        self.progress: dict[int, asyncio.Event] = {}
        self.latencies: list[float] = []
        self.deliveries = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.errors: list[str] = []

    def sending(self, chat_id: int, client_id: str) -> None:
        self.sent_at.setdefault(client_id, time.perf_counter())
        self.chat_of[client_id] = chat_id

    def received(self, client: "Client", message: dict[str, Any], now: float, live: bool) -> None:
        self.deliveries += 1
        chat_id, seq = message["chat"], message["seq"]
        seen = client.seen.setdefault(chat_id, set())
        if seq in seen:
            self.duplicates += 1
            return
        seen.add(seq)
        if seq < client.last_seq.get(chat_id, 0):
            self.out_of_order += 1
        else:
            client.last_seq[chat_id] = seq
        client_id = message.get("client_id")
        if client_id in self.sent_at:
            receipt = self.receipts.get(client_id)
            if receipt is None:
                receipt = self.receipts[client_id] = [0, now]
            receipt[0] += 1
            receipt[1] = now
            if receipt[0] == self.receivers.get(chat_id):
                self.latencies.append(now - self.sent_at[client_id])
                self.completed[chat_id] = self.completed.get(chat_id, 0) + 1
                event = self.progress.get(chat_id)
                if event is not None:
                    event.set()

    def acknowledged(self, client_id: str, seq: int) -> None:
        self.acked[client_id] = seq
        waiter = self.ack_waiters.pop(client_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(seq)

    def refused(self, frame: dict[str, Any]) -> None:
        waiter = self.ack_waiters.pop(str(frame.get("ref")), None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(SendRefused(frame))
        elif len(self.errors) < 20:
            self.errors.append(json.dumps(frame, ensure_ascii=False)[:300])

    def lost(self, client_ids: Iterable[str]) -> int:
        """Deliveries expected for these messages that have not come."""
        missing = 0
        for client_id in client_ids:
            expected = self.receivers.get(self.chat_of[client_id], 0)
            missing += expected - int((self.receipts.get(client_id) or [0])[0])
        return missing


class Client:
    """One socket of one account. connect() returns once the server said
    "hello" (the socket listens to all its chats by then); frames are read
    as they come."""

    def __init__(self, delivery: Delivery, account: Account, url: str) -> None:
        self.delivery = delivery
        self.account = account
        self.host = url.split("//", 1)[1].rstrip("/")
        self.socket: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.hello: dict[str, Any] = {}
        self.last_seq: dict[int, int] = {}
        self.seen: dict[int, set[int]] = {}
        self.sync_answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pending: set[str] = set()  # client_ids sent on this socket, not yet answered
        self.closed_early = False
        self.closing = False

    async def connect(self) -> None:
        self.closed_early = self.closing = False
        socket = await connect(
            "ws://" + self.host + WS_PATH,
            origin="http://" + self.host,  # type: ignore[arg-type]
            additional_headers={"Authorization": "Token " + self.account.token},
            compression=None,
            open_timeout=60,
            max_queue=None,
            proxy=None,
        )
        try:
            hello = json.loads(await asyncio.wait_for(socket.recv(), HELLO_TIMEOUT))
            if hello.get("type") != "hello":
                raise RuntimeError(f"expected hello, got {str(hello)[:200]}")
        except BaseException:
            socket.transport.abort()
            raise
        self.hello = hello
        self.socket = socket
        self.reader = asyncio.create_task(self._read(socket))

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for raw in socket:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    self.delivery.received(self, frame["message"], now, True)
                elif kind == "ack":
                    client_id = frame.get("client_id")
                    if client_id is not None:
                        self.pending.discard(client_id)
                        self.delivery.acknowledged(client_id, frame["seq"])
                elif kind == "error":
                    self.pending.discard(str(frame.get("ref")))
                    self.delivery.refused(frame)
                elif kind in ("synced", "resync"):
                    self.sync_answers.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.closed_early = True
            for client_id in self.pending:
                waiter = self.delivery.ack_waiters.pop(client_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(ConnectionError("socket closed before the ack"))
            self.pending.clear()
            self.sync_answers.put_nowait({"type": "closed"})

    async def send(self, chat_id: int, client_id: str, body: str) -> None:
        if self.socket is None:
            raise ConnectionError("not connected")
        self.delivery.sending(chat_id, client_id)
        self.pending.add(client_id)
        await self.socket.send(
            json.dumps({"type": "send", "ref": client_id, "chat": chat_id, "client_id": client_id, "body": body})
        )

    async def send_acknowledged(self, chat_id: int, client_id: str, body: str, timeout: float) -> int:
        """Send and wait for the ack; returns the message's seq."""
        waiter = self.delivery.ack_waiters[client_id] = asyncio.get_running_loop().create_future()
        await self.send(chat_id, client_id, body)
        return await asyncio.wait_for(waiter, timeout)

    @property
    def is_open(self) -> bool:
        return self.socket is not None and self.socket.protocol.state is State.OPEN

    def abort(self) -> None:
        """Drop the connection without a closing handshake (a lost network)."""
        if self.socket is not None:
            self.socket.transport.abort()

    async def close(self) -> None:
        self.closing = True
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


async def connect_all(clients: list[Client], *, concurrency: int = 32) -> float:
    """Open every socket (at most `concurrency` handshakes at a time) and
    wait for their "hello"; returns the seconds it took."""
    semaphore = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(client: Client) -> None:
        async with semaphore:
            await client.connect()

    await asyncio.gather(*(one(client) for client in clients))
    return time.perf_counter() - started


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
