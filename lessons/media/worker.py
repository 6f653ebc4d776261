"""The media worker: reads commands from its channel-layer channel (and the
shared ROOMS_CHANNEL), runs them against its rooms and sends the replies and
events. One asyncio loop per process; a lesson lives on exactly one worker.

Commands about one peer run one after another in the order they arrived
(a join, then its ICE candidates); different peers proceed concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lessons.media import forwarding, protocol, recording
from lessons.media.protocol import CommandError
from lessons.media.sfu import MediaSettings, Outbox, Peer, Resources, Room

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class _Lane:
    """Runs the commands of one key (a peer) in arrival order."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class MediaWorker:
    def __init__(self, *, worker_id: str, channel_layer: Any, settings: MediaSettings | None = None) -> None:
        forwarding.check_aiortc()
        self.worker_id = protocol.identifier(worker_id, "worker")
        self.channel = protocol.worker_channel_name(worker_id)
        self.layer = channel_layer
        self.settings = settings or MediaSettings()
        self.outbox = Outbox()
        self.resources = Resources(self.settings)
        self.rooms: dict[str, Room] = {}
        self.ready = asyncio.Event()
        self.commands_handled = 0
        self._empty_since: dict[str, float] = {}
        self._lanes: dict[tuple[str, ...], _Lane] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._probe = "probe-" + uuid.uuid4().hex
        self._probes_heard: set[str] = set()
        self._handlers: dict[str, Handler] = {
            "room.open": self._room_open,
            "room.close": self._room_close,
            "peer.join": self._peer_join,
            "peer.publish": self._peer_publish,
            "peer.answer": self._peer_answer,
            "peer.ice": self._peer_ice,
            "peer.mute": self._peer_mute,
            "peer.leave": self._peer_leave,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "stats": self._stats,
            "workers.ping": self._workers_ping,
            "recording.start": self._recording_start,
            "recording.video": self._recording_video,
            "recording.stop": self._recording_stop,
        }

    # --- running ---------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled; on the way out every room is closed."""
        # Delivery runs apart: it must outlive the rest to say goodbye.
        deliver = asyncio.ensure_future(self._deliver())
        others = [
            asyncio.ensure_future(self._read(self.channel)),
            asyncio.ensure_future(self._read(protocol.ROOMS_CHANNEL)),
            asyncio.ensure_future(self._sweep()),
            asyncio.ensure_future(self._announce_ready()),
        ]
        try:
            await asyncio.gather(*others)
        finally:
            for task in [*others, *self._tasks]:
                task.cancel()
            await asyncio.gather(*others, *tuple(self._tasks), return_exceptions=True)
            for room in tuple(self.rooms.values()):
                self._room_drop(room, reason="worker-stopped")
            await self.resources.settle()
            # Everything said before stopping still goes out.
            self.outbox.stop()
            await asyncio.gather(deliver, return_exceptions=True)

    async def _announce_ready(self) -> None:
        # Redis pub/sub drops what is published before the subscription, so
        # the worker is ready once it hears its own probe on both channels.
        while not self.ready.is_set():
            for channel in (self.channel, protocol.ROOMS_CHANNEL):
                await self.layer.send(channel, {"type": protocol.COMMAND_TYPE, "command": self._probe})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.ready.wait(), 0.2)
        logger.info("media worker %s listening on %s", self.worker_id, self.channel)

    async def _read(self, channel: str) -> None:
        while True:
            message = await self.layer.receive(channel)
            name = message.get("command") if isinstance(message, dict) else None
            if isinstance(name, str) and name.startswith("probe-"):
                # Readiness probes, this worker's or another's (ROOMS_CHANNEL).
                if name == self._probe:
                    self._probes_heard.add(channel)
                    if len(self._probes_heard) == 2:
                        self.ready.set()
                continue
            task = asyncio.ensure_future(self.handle(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self) -> None:
        while True:
            item = await self.outbox.queue.get()
            if item is None:
                return
            kind, target, message = item
            await self._send(kind, target, message)

    async def _send(self, kind: str, target: str, message: dict[str, Any]) -> None:
        try:
            if kind == "group":
                await self.layer.group_send(target, message)
            else:
                await self.layer.send(target, message)
        except Exception:
            logger.exception("media worker %s could not deliver a %s event", self.worker_id, message.get("event"))

    async def _sweep(self) -> None:
        """Close rooms that stayed empty for room_idle_timeout."""
        loop = asyncio.get_running_loop()
        interval = max(0.05, min(30.0, self.settings.room_idle_timeout / 2))
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for room_id, since in tuple(self._empty_since.items()):
                room = self.rooms.get(room_id)
                if room is None or room.peers:
                    self._empty_since.pop(room_id, None)
                elif now - since >= self.settings.room_idle_timeout:
                    self._room_drop(room, reason="idle")

    # --- commands ----------------------------------------------------------------

    async def handle(self, message: Any) -> None:
        """Run one command and send its reply (or error) to its reply_to."""
        self.commands_handled += 1
        name = message.get("command") if isinstance(message, dict) else None
        reply_to = None
        request = None
        context: dict[str, Any] = {}
        try:
            if not isinstance(message, dict):
                raise CommandError("invalid-command", "a command is a map")
            reply_to = protocol.optional_channel_name(message, "reply_to")
            request = protocol.request_id(message)
            for field in ("room", "peer"):
                if isinstance(message.get(field), str):
                    context[field] = message[field]
            handler = self._handlers.get(name) if isinstance(name, str) else None
            if handler is None or not isinstance(name, str):
                raise CommandError("unknown-command", "unknown command " + repr(name)[:80])
            key = self._lane_key(name, message)
            if key is None:
                result = await handler(message)
            else:
                result = await self._in_lane(key, handler, message)
        except CommandError as error:
            self._reply_error(reply_to, name, request, context, error.code, error.message)
        except Exception:
            logger.exception("media worker %s failed on %s", self.worker_id, name)
            self._reply_error(reply_to, name, request, context, "internal-error", "the media worker failed")
        else:
            if reply_to is not None:
                fields = {"command": name, "request_id": request, "ok": True, **context, **result}
                self.outbox.to_channel(reply_to, protocol.event("reply", **{**fields, "worker": self.worker_id}))

    def _reply_error(
        self,
        reply_to: str | None,
        name: Any,
        request: str | None,
        context: dict[str, Any],
        code: str,
        message: str,
    ) -> None:
        if reply_to is None:
            logger.warning("media worker %s refused %s: %s", self.worker_id, str(name)[:40], code)
            return
        fields = {"command": name if isinstance(name, str) else None, "request_id": request, "ok": False, **context}
        self.outbox.to_channel(
            reply_to, protocol.event("error", worker=self.worker_id, code=code, message=message, **fields)
        )

    def _lane_key(self, name: str, message: dict[str, Any]) -> tuple[str, ...] | None:
        if name.startswith("peer.") or name in ("subscribe", "unsubscribe"):
            return (protocol.identifier(message.get("room"), "room"), protocol.identifier(message.get("peer"), "peer"))
        return None

    async def _in_lane(self, key: tuple[str, ...], handler: Handler, message: dict[str, Any]) -> dict[str, Any]:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        lane.users += 1
        try:
            async with lane.lock:
                return await handler(message)
        finally:
            lane.users -= 1
            if not lane.users:
                del self._lanes[key]

    def _room(self, message: dict[str, Any]) -> Room:
        room_id = protocol.identifier(message.get("room"), "room")
        room = self.rooms.get(room_id)
        if room is None:
            raise CommandError("room-not-found", "room " + room_id + " is not open on worker " + self.worker_id)
        return room

    def _peer(self, message: dict[str, Any]) -> Peer:
        return self._room(message).peer_get(protocol.identifier(message.get("peer"), "peer"))

    def _room_emptied(self, room: Room) -> None:
        self._empty_since[room.room_id] = asyncio.get_running_loop().time()

    def _room_drop(self, room: Room, *, reason: str) -> None:
        room.close(reason=reason)
        self.rooms.pop(room.room_id, None)
        self._empty_since.pop(room.room_id, None)

    async def _room_open(self, message: dict[str, Any]) -> dict[str, Any]:
        room_id = protocol.identifier(message.get("room"), "room")
        group = message.get("group")
        if group is not None:
            group = protocol.channel_name(group, "group")
        room = self.rooms.get(room_id)
        is_new = room is None
        if room is None:
            room = self.rooms[room_id] = Room(
                room_id=room_id,
                group=group,
                worker_id=self.worker_id,
                resources=self.resources,
                outbox=self.outbox,
                on_empty=self._room_emptied,
            )
            self._room_emptied(room)
        elif "group" in message:
            room.group = group
        return {"room": room_id, "created": is_new}

    async def _room_close(self, message: dict[str, Any]) -> dict[str, Any]:
        room_id = protocol.identifier(message.get("room"), "room")
        room = self.rooms.get(room_id)
        if room is not None:
            self._room_drop(room, reason="room-closed")
        return {"room": room_id, "existed": room is not None}

    async def _peer_join(self, message: dict[str, Any]) -> dict[str, Any]:
        room = self._room(message)
        peer_id = protocol.identifier(message.get("peer"), "peer")
        channel = protocol.channel_name(message.get("reply_to"), "reply_to")
        offer = None
        if message.get("offer") is not None:
            offer = protocol.description(message, "offer", "offer", max_bytes=self.settings.max_sdp_bytes)
        auto_subscribe = protocol.kinds(message, "auto_subscribe", protocol.KINDS)
        muted = protocol.kinds(message, "muted", ())
        peer, answer = await room.peer_join(
            peer_id=peer_id, channel=channel, offer_sdp=offer, auto_subscribe=auto_subscribe, muted_kinds=muted
        )
        self._empty_since.pop(room.room_id, None)
        others = [other for other in room.peers.values() if other is not peer]
        return {
            "answer": {"type": "answer", "sdp": answer} if answer is not None else None,
            "tracks": [published.payload() for published in peer.published.values()],
            "peers": [other.peer_id for other in others],
            "published": [published.payload() for other in others for published in other.published.values()],
        }

    async def _peer_publish(self, message: dict[str, Any]) -> dict[str, Any]:
        peer = self._peer(message)
        offer = protocol.description(message, "offer", "offer", max_bytes=self.settings.max_sdp_bytes)
        answer = await peer.publish(offer)
        return {
            "answer": {"type": "answer", "sdp": answer},
            "tracks": [published.payload() for published in peer.published.values()],
        }

    async def _peer_answer(self, message: dict[str, Any]) -> dict[str, Any]:
        peer = self._peer(message)
        answer = protocol.description(message, "answer", "answer", max_bytes=self.settings.max_sdp_bytes)
        revision = message.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise CommandError("invalid-command", "revision must be the integer of the offer answered")
        await peer.answer_apply(answer, revision)
        return {"revision": revision}

    async def _peer_ice(self, message: dict[str, Any]) -> dict[str, Any]:
        peer = self._peer(message)
        target = message.get("target", "publish")
        if target not in ("publish", "subscribe"):
            raise CommandError("invalid-command", 'target must be "publish" or "subscribe"')
        candidate = message.get("candidate")
        if candidate is not None and not isinstance(candidate, dict):
            raise CommandError("invalid-candidate", "candidate must be a map or null")
        await peer.ice_add(target, candidate)
        return {}

    async def _peer_mute(self, message: dict[str, Any]) -> dict[str, Any]:
        peer = self._peer(message)
        kinds = protocol.kinds(message, "kinds", protocol.KINDS)
        is_muted = protocol.boolean(message, "muted", True)
        for published in peer.mute(kinds, is_muted):
            peer.room.broadcast("track.muted", **published.payload())
        return {"muted": sorted(peer.muted_kinds)}

    async def _peer_leave(self, message: dict[str, Any]) -> dict[str, Any]:
        room = self._room(message)
        peer = room.peers.get(protocol.identifier(message.get("peer"), "peer"))
        if peer is not None:
            room.peer_remove(peer, reason="left")
        return {"existed": peer is not None}

    async def _subscribe(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._subscription_change(message, is_adding=True)

    async def _unsubscribe(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._subscription_change(message, is_adding=False)

    def _subscription_change(self, message: dict[str, Any], *, is_adding: bool) -> dict[str, Any]:
        peer = self._peer(message)
        publisher = protocol.identifier(message.get("publisher"), "publisher")
        kinds = protocol.kinds(message, "kinds", protocol.KINDS)
        current = peer.rules.get(publisher, peer.auto_subscribe)
        peer.rules[publisher] = current | kinds if is_adding else current - kinds
        peer.negotiation_request()
        return {"publisher": publisher, "kinds": sorted(peer.rules[publisher])}

    async def _recording_start(self, message: dict[str, Any]) -> dict[str, Any]:
        room = self._room(message)
        recording_id = protocol.identifier(message.get("recording"), "recording")
        relative_path = message.get("path")
        path = recording.path_check(relative_path, self.settings.recordings_root)
        video_peer, screen_mid = self._recording_video_fields(message)
        if room.recorder is not None:
            raise CommandError(
                "recording-active", "room " + room.room_id + " is recording " + room.recorder.recording_id
            )
        recorder = recording.Recorder(
            room=room,
            recording_id=recording_id,
            path=path,
            relative_path=str(relative_path),
            video_peer=video_peer,
            screen_mid=screen_mid,
        )
        try:
            recorder.start()
        except OSError as error:
            raise CommandError("recording-unavailable", "the file cannot be written: " + type(error).__name__) from (
                error
            )
        room.recorder = recorder
        return {"recording": recording_id, "path": relative_path}

    def _recording_video_fields(self, message: dict[str, Any]) -> tuple[str | None, str | None]:
        video_peer = message.get("video_peer")
        if video_peer is not None:
            video_peer = protocol.identifier(video_peer, "video_peer")
        screen_mid = message.get("screen_mid")
        if screen_mid is not None and not (isinstance(screen_mid, str) and 0 < len(screen_mid) <= 32):
            raise CommandError("invalid-command", "screen_mid must be a media section id (mid) or null")
        return video_peer, screen_mid

    async def _recording_video(self, message: dict[str, Any]) -> dict[str, Any]:
        room = self._room(message)
        video_peer, screen_mid = self._recording_video_fields(message)
        if room.recorder is None:
            raise CommandError("not-recording", "room " + room.room_id + " is not recording")
        room.recorder.video_set(video_peer=video_peer, screen_mid=screen_mid)
        return {"recording": room.recorder.recording_id}

    async def _recording_stop(self, message: dict[str, Any]) -> dict[str, Any]:
        room = self._room(message)
        report = room.recording_finish(reason="stopped")
        if report is None:
            raise CommandError("not-recording", "room " + room.room_id + " is not recording")
        return report

    async def _stats(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("room") is not None:
            rooms = [self._room(message).stats()]
        else:
            rooms = [room.stats() for room in self.rooms.values()]
        return {**self.status(), "rooms": rooms}

    async def _workers_ping(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        """Counts of what the worker holds: the figures a leak would grow."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peers = [peer for room in self.rooms.values() for peer in room.peers.values()]
        return {
            "worker": self.worker_id,
            "room_count": len(self.rooms),
            "peer_count": len(peers),
            "peer_connection_count": len(self.resources.peer_connections),
            "closing_count": len(self.resources.closing),
            "peer_connections_in_memory": len(self.resources.connections_in_memory),
            "source_count": sum(len(peer.published) for peer in peers),
            "forwarded_track_count": sum(len(peer.slots) for peer in peers),
            "recording_count": sum(1 for room in self.rooms.values() if room.recorder is not None),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_kb": usage.ru_maxrss,
            "pid": os.getpid(),
        }


def settings_from_django() -> MediaSettings:
    """The worker's settings from Django's (read at start, not import)."""
    from django.conf import settings

    from lessons.media.ice import worker_ice_servers

    return MediaSettings(
        ice_servers=tuple(worker_ice_servers()),
        connect_timeout=float(getattr(settings, "LESSONS_MEDIA_CONNECT_TIMEOUT", 30.0)),
        answer_timeout=float(getattr(settings, "LESSONS_MEDIA_ANSWER_TIMEOUT", 30.0)),
        max_peers_per_room=int(getattr(settings, "LESSONS_MEDIA_MAX_PEERS_PER_ROOM", 200)),
        recordings_root=str(settings.MEDIA_ROOT),
    )


def default_worker_id() -> str:
    from django.conf import settings

    return str(getattr(settings, "LESSONS_MEDIA_WORKER_ID", "") or os.environ.get("MEDIA_WORKER_ID", "") or "main")


async def serve(*, worker_id: str) -> None:
    """Run a worker with Django's channel layer until SIGINT or SIGTERM."""
    from channels.layers import get_channel_layer

    # aioice logs every candidate pair, with the participants' addresses, at
    # INFO: too much, and personal data.
    ice_logger = logging.getLogger("aioice")
    if ice_logger.level == logging.NOTSET:
        ice_logger.setLevel(logging.WARNING)
    worker = MediaWorker(worker_id=worker_id, channel_layer=get_channel_layer(), settings=settings_from_django())
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(worker.run())
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(*, worker_id: str | None = None) -> None:
    """Entry point of `python -m lessons.media` and `manage.py media_worker`."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    django.setup()
    asyncio.run(serve(worker_id=worker_id or default_worker_id()))
