"""The load generator of the chats benchmark: many WebSocket clients in one
asyncio loop (the bench process), with the bookkeeping that proves delivery
(lost, duplicated, out of order per chat) and times it. One generator drives
both daphne and the baseline server: the frames used are those of
docs/protocol.md ("send" → "ack", and "message" events)."""

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

WS_PATH = "/ws/"


@dataclasses.dataclass(frozen=True)
class Account:
    user: int
    token: str
    chats: tuple[int, ...]


def frame_send(*, chat_id: int, client_id: str, body: str) -> str:
    return json.dumps({"type": "send", "chat": chat_id, "client_id": client_id, "body": body})


class Delivery:
    """What every socket received, and when: per (socket, chat) the seqs in
    arrival order (duplicates and order checked as they come), per message
    the receipts (latency to the last expected receiver)."""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.chat_of: dict[str, int] = {}
        self.acked: dict[str, int] = {}  # client_id -> seq
        self.ack_waiters: dict[str, asyncio.Future[int]] = {}
        self.receivers: dict[int, int] = {}  # chat -> sockets expected to receive
        self.receipts: dict[str, list[float]] = {}  # client_id -> [count, last receipt]
        self.latencies: list[float] = []
        self.deliveries = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.errors: list[str] = []

    def sending(self, chat_id: int, client_id: str) -> None:
        self.sent_at[client_id] = time.perf_counter()
        self.chat_of[client_id] = chat_id

    def received(self, client: "Client", message: dict[str, Any], now: float) -> None:
        self.deliveries += 1
        chat_id, seq = message["chat"], message["seq"]
        last = client.last_seq.get(chat_id, 0)
        seen = client.seen.setdefault(chat_id, set())
        if seq in seen:
            self.duplicates += 1
            return
        seen.add(seq)
        if seq < last:
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

    def acknowledged(self, client_id: str, seq: int) -> None:
        self.acked[client_id] = seq
        waiter = self.ack_waiters.pop(client_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(seq)

    def lost(self, client_ids: Iterable[str]) -> int:
        """Deliveries expected for these (acknowledged) messages that never came."""
        missing = 0
        for client_id in client_ids:
            expected = self.receivers.get(self.chat_of[client_id], 0)
            missing += expected - (self.receipts.get(client_id) or [0])[0]
        return missing


class Client:
    """One socket of one account; frames are read as they come."""

    def __init__(self, delivery: Delivery, account: Account, url: str) -> None:
        self.delivery = delivery
        self.account = account
        self.url = url
        self.socket: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.last_seq: dict[int, int] = {}
        self.seen: dict[int, set[int]] = {}
        self.own_echo = 0  # own messages seen come back (flow control of a sender)
        self.echo_event = asyncio.Event()
        self.closed_early = False

    async def connect(self, *, read: bool = True) -> None:
        host = self.url.split("//", 1)[1].rstrip("/")
        self.socket = await connect(
            "ws://" + host + WS_PATH,
            origin="http://" + host,  # type: ignore[arg-type]
            additional_headers={"Authorization": "Token " + self.account.token},
            compression=None,
            open_timeout=60,
            max_queue=None if read else 16,
            proxy=None,
        )
        if read:
            self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.socket is not None
        try:
            async for raw in self.socket:
                now = time.perf_counter()
                delivery = self.delivery
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    message = frame["message"]
                    delivery.received(self, message, now)
                    if message.get("author") and message["author"].get("id") == self.account.user:
                        self.own_echo += 1
                        self.echo_event.set()
                elif kind == "ack":
                    delivery.acknowledged(frame["client_id"], frame["message"]["seq"])
                elif kind == "error":
                    delivery.errors.append(str(raw)[:300])
        except ConnectionClosed:
            self.closed_early = True

    async def send(self, chat_id: int, client_id: str, body: str) -> None:
        assert self.socket is not None
        self.delivery.sending(chat_id, client_id)
        await self.socket.send(frame_send(chat_id=chat_id, client_id=client_id, body=body))

    @property
    def is_open(self) -> bool:
        return self.socket is not None and self.socket.protocol.state.name == "OPEN"

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            self.reader.cancel()


async def connect_all(clients: list[Client], *, concurrency: int = 32, read: bool = True) -> float:
    """Open every socket (at most `concurrency` handshakes at a time); returns
    the seconds it took."""
    semaphore = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(client: Client) -> None:
        async with semaphore:
            await client.connect(read=read)

    await asyncio.gather(*(one(client) for client in clients))
    return time.perf_counter() - started


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
