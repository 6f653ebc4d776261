"""Real-time fan-out to the portal's open sockets over Redis pub/sub.

A topic ("chat.17", "user.42") is one Redis pub/sub channel. Publishers send
a frame already serialised, once, whatever the number of sockets; every
server process keeps ONE subscription per topic that has a socket on it (the
Hub) and writes the frame as it is to each of its local sockets.

Why not the channel layer for this: Channels runs `aclose_old_connections`
in the database thread before every event it dispatches to a consumer, so a
delivery waits behind whatever ORM work the process is doing; it also
deserialises each event once per socket and keeps a Redis channel and a
receive task per socket. Measured on the chat benchmark (bench/README.md)
that made deliveries cost ~1.6 ms of CPU each and queue for seconds under
load. The channel layer stays for what it is good at: commands to a named
consumer or worker (the media server).

Nothing here is a source of truth: a frame lost while Redis is down is in
the database and reaches clients by catch-up. After the Hub gets its
connection back it tells every listener (`realtime_resumed`) so that they
can ask for what they may have missed.
"""

import asyncio
import contextlib
import logging
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import redis
import redis.asyncio
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.redis_clients import async_redis

logger = logging.getLogger(__name__)

PREFIX = "parta.rt."
SKIP_MARK = b"\0"
# How long a subscription may take to be confirmed by Redis before the
# caller goes on anyway (it is then made again on reconnect).
SUBSCRIBE_CONFIRM_SECONDS = 2.0
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 2.0


class Listener(Protocol):
    """A socket (or anything) that receives the frames of its topics."""

    async def realtime_deliver(self, text: str) -> None:
        """One frame. Must not wait on the Hub (it is called from the Hub's
        reader): hand slow work to a task of your own."""

    async def realtime_resumed(self) -> None:
        """The Hub reconnected to Redis: frames may have been lost meanwhile."""


# --- Publishing (synchronous: request handlers, Celery, the DB thread) -----------------------------------------

_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        # Short timeouts: a Redis outage must not hold a request that has
        # already committed its work.
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        _clients[url] = client
    return client


def publish_many(items: Iterable[tuple[str, str]]) -> None:
    """Publish (topic, frame text) pairs in one round trip. Raises
    redis.RedisError or OSError when Redis is unavailable; callers decide how
    to log it (the frames' data is in the database either way).

    In a process whose event loop runs a Hub (daphne), a call from another
    thread (the database thread, a view's thread) hands the frames to the
    loop and returns at once: the Hub writes them to Redis in the order they
    were handed over, over one connection, and logs a failure itself. The
    database thread runs every chat's writes one after another, so a Redis
    round trip there delayed every other writer of the process."""
    frames = [(PREFIX + topic, text.encode()) for topic, text in items]
    if not frames:
        return
    if _handed_to_loop(frames):
        return
    pipeline = _client().pipeline(transaction=False)
    for channel, data in frames:
        pipeline.publish(channel, data)
    pipeline.execute()


# The loop of this process that runs a Hub, its thread, and the Hub; set
# when a Hub starts listening.
_loop_hub: "tuple[asyncio.AbstractEventLoop, int, Hub] | None" = None


def _handed_to_loop(frames: list[tuple[str, bytes]]) -> bool:
    target = _loop_hub
    if target is None:
        return False
    loop, thread_id, loop_hub = target
    if thread_id == threading.get_ident() or loop.is_closed() or not loop.is_running():
        return False
    try:
        loop.call_soon_threadsafe(loop_hub.publish_enqueue, frames)
    except RuntimeError:  # the loop closed meanwhile
        return False
    return True


def publish(topic: str, text: str) -> None:
    publish_many([(topic, text)])


# --- Receiving (one Hub per event loop: one per daphne process) -------------------------------------------------


class Hub:
    """The process's subscriptions and the sockets behind each of them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.id = uuid.uuid4().hex.encode()
        self.listeners: dict[bytes, set[Listener]] = {}
        self.redis: redis.asyncio.Redis | None = None
        self.pubsub: redis.asyncio.client.PubSub | None = None
        self.reader: asyncio.Task[None] | None = None
        self.waiting: dict[bytes, list[asyncio.Future[None]]] = {}
        self.has_topics = asyncio.Event()
        self.lock = asyncio.Lock()
        self.publisher: redis.asyncio.Redis | None = None
        # Frames handed over by other threads (publish_many), in order.
        self.outbox: deque[list[tuple[str, bytes]]] = deque()
        self.sender: asyncio.Task[None] | None = None

    # Topics ---------------------------------------------------------------------------------------------------------

    async def join(self, listener: Listener, topics: Iterable[str]) -> None:
        """Listen to `topics`. Returns once Redis has confirmed the new
        subscriptions (or could not), so that a frame published after this
        returns reaches the listener."""
        new: list[bytes] = []
        for topic in topics:
            key = (PREFIX + topic).encode()
            members = self.listeners.setdefault(key, set())
            if not members:
                new.append(key)
            members.add(listener)
        self._start()
        if new:
            await self._command("subscribe", new, confirm=True)

    async def leave(self, listener: Listener, topics: Iterable[str]) -> None:
        gone: list[bytes] = []
        for topic in topics:
            key = (PREFIX + topic).encode()
            members = self.listeners.get(key)
            if members is None:
                continue
            members.discard(listener)
            if not members:
                del self.listeners[key]
                gone.append(key)
        if gone:
            await self._command("unsubscribe", gone, confirm=False)

    async def _command(self, name: str, keys: list[bytes], *, confirm: bool) -> None:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        async with self.lock:
            # The topics may have changed while waiting for the lock: ask only
            # for what is still true.
            if name == "subscribe":
                keys = [key for key in keys if key in self.listeners]
            else:
                keys = [key for key in keys if key not in self.listeners]
            if not keys:
                return
            if confirm:
                for key in keys:
                    future: asyncio.Future[None] = loop.create_future()
                    self.waiting.setdefault(key, []).append(future)
                    futures.append(future)
            # Not connected yet: the reader subscribes to every topic when it
            # connects, and the confirmations resolve the futures all the same.
            if self.pubsub is not None:
                try:
                    await getattr(self.pubsub, name)(*keys)
                except (redis.RedisError, OSError):
                    logger.warning("real-time %s failed; made again on reconnect", name)
                    for future in futures:
                        future.cancel()
                    return
                self.has_topics.set()
        if futures:
            await asyncio.wait(futures, timeout=SUBSCRIBE_CONFIRM_SECONDS)

    # Reader ---------------------------------------------------------------------------------------------------------

    def _start(self) -> None:
        global _loop_hub
        if self.reader is None or self.reader.done():
            self.reader = asyncio.ensure_future(self._read_forever())
        _loop_hub = (asyncio.get_running_loop(), threading.get_ident(), self)

    async def _connect(self) -> None:
        # No retries inside redis-py: it would reconnect and resubscribe
        # silently, and the listeners would never hear that frames were lost.
        self.redis = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=None, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        self.pubsub = self.redis.pubsub()
        async with self.lock:
            keys = list(self.listeners)
            if keys:
                await self.pubsub.subscribe(*keys)

    async def _disconnect(self) -> None:
        pubsub, client = self.pubsub, self.redis
        self.pubsub = self.redis = None
        for future_list in self.waiting.values():
            for future in future_list:
                future.cancel()
        self.waiting.clear()
        try:
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()
        except (redis.RedisError, OSError):
            pass

    async def _read_forever(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        connected_before = is_down = False
        while True:
            try:
                await self._connect()
                if connected_before:
                    logger.warning("real-time connection to Redis is back")
                    await self._resumed()
                connected_before, is_down = True, False
                delay = RECONNECT_MIN_SECONDS
                await self._read()
            except asyncio.CancelledError:
                await self._disconnect()
                raise
            except Exception as error:
                if not is_down:
                    logger.warning("real-time connection to Redis lost or refused: %s", error)
                is_down = True
                await self._disconnect()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _read(self) -> None:
        while True:
            pubsub = self.pubsub
            assert pubsub is not None
            if not pubsub.subscribed:
                self.has_topics.clear()
                await self.has_topics.wait()
                continue
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"]
            if kind == "message":
                data = message["data"]
                skip = None
                if data.startswith(SKIP_MARK):
                    # "\0<hub>:<listener>\0<frame>": not to the socket that sent it.
                    marker, _separator, data = data[1:].partition(SKIP_MARK)
                    hub_id, _colon, listener_id = marker.partition(b":")
                    if hub_id == self.id:
                        skip = int(listener_id)
                await self._deliver(channel, data.decode(), skip)
            elif kind == "subscribe":
                for future in self.waiting.pop(channel, ()):
                    if not future.done():
                        future.set_result(None)

    async def _deliver(self, key: bytes, text: str, skip: int | None = None) -> None:
        for listener in tuple(self.listeners.get(key, ())):
            if skip is not None and id(listener) == skip:
                continue
            try:
                await listener.realtime_deliver(text)
            except Exception:
                logger.exception("real-time delivery failed")

    async def _resumed(self) -> None:
        listeners = {listener for members in self.listeners.values() for listener in members}
        for listener in listeners:
            try:
                await listener.realtime_resumed()
            except Exception:
                logger.exception("real-time resume failed")

    async def close(self) -> None:
        global _loop_hub
        if _loop_hub is not None and _loop_hub[2] is self:
            _loop_hub = None
        if self.sender is not None and not self.sender.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sender, SUBSCRIBE_CONFIRM_SECONDS)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
            self.reader = None
        await self._disconnect()
        if self.publisher is not None:
            await self.publisher.aclose()
            self.publisher = None

    # Async publishing (from a consumer) -------------------------------------------------------------------------------

    def _publisher(self) -> redis.asyncio.Redis:
        if self.publisher is None:
            self.publisher = async_redis(self.url)
        return self.publisher

    async def publish(self, topic: str, text: str, *, skip: Listener | None = None) -> None:
        """Publish from the event loop without a thread hop, to every
        listener but `skip`. Raises like publish_many."""
        data = text.encode()
        if skip is not None:
            data = SKIP_MARK + self.id + b":" + str(id(skip)).encode() + SKIP_MARK + data
        await self._publisher().publish(PREFIX + topic, data)

    def publish_enqueue(self, frames: list[tuple[str, bytes]]) -> None:
        """Frames of another thread (publish_many), called on the loop: sent
        by one task at a time, so they reach Redis in the order given."""
        self.outbox.append(frames)
        if self.sender is None or self.sender.done():
            self.sender = asyncio.ensure_future(self._send_outbox())

    async def _send_outbox(self) -> None:
        while self.outbox:
            batch: list[tuple[str, bytes]] = []
            while self.outbox:
                batch.extend(self.outbox.popleft())
            try:
                pipeline = self._publisher().pipeline(transaction=False)
                for channel, data in batch:
                    pipeline.publish(channel, data)
                await pipeline.execute()
            except Exception as error:
                # The frames' data is in the database: clients catch up.
                logger.warning("%d real-time frames not published (Redis unavailable: %s)", len(batch), error)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """The Hub of the running event loop (one per daphne process)."""
    loop = asyncio.get_running_loop()
    current = _hubs.get(loop)
    if current is None or current.url != settings.REDIS_URL:
        current = Hub(settings.REDIS_URL)
        _hubs[loop] = current
    return current
