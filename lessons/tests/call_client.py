"""A participant of a lesson's call written against docs/protocol.md ("Lesson
call WebSocket") alone: aiortc peer connections driven by the signalling
socket's frames. The tests use it over channels' WebsocketCommunicator and
over a real WebSocket to daphne."""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class Transport(Protocol):
    async def send(self, frame: dict[str, Any]) -> None: ...

    async def receive(self) -> dict[str, Any]:
        """The next frame; {"type": "closed", "code": …} once the socket closed."""
        ...


class CommunicatorTransport:
    """channels.testing.WebsocketCommunicator as a Transport."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        output = await self.communicator.receive_output(timeout=600)
        if output["type"] == "websocket.close":
            return {"type": "closed", "code": output.get("code", 1000)}
        return dict(json.loads(output["text"]))


class WebsocketTransport:
    """A `websockets` client connection as a Transport."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            return dict(json.loads(await self.connection.recv()))
        except ConnectionClosed as closed:
            return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else 1006}


class CallClient:
    """Joins with "join", publishes `tracks` with "offer", answers the
    worker's "offer" frames on its receiving connection, and counts the
    frames it decodes per publishing peer and kind."""

    def __init__(self, transport: Transport, *, tracks: list[MediaStreamTrack] | None = None) -> None:
        self.transport = transport
        self.tracks = tracks or []
        self.frames: list[dict[str, Any]] = []
        self.decoded: dict[tuple[str | None, str], int] = {}
        self.publish_connection: RTCPeerConnection | None = None
        self.subscribe_connection: RTCPeerConnection | None = None
        self.ice_servers: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._mid_peers: dict[str, str | None] = {}
        self._changed = asyncio.Event()
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader = asyncio.ensure_future(self._read())
        self._answerer = asyncio.ensure_future(self._answer_offers())

    async def _read(self) -> None:
        while True:
            frame = await self.transport.receive()
            self.frames.append(frame)
            if frame["type"] == "offer":
                self._offers.put_nowait(frame)
            self._changed.set()
            if frame["type"] == "closed":
                self.close_code = frame["code"]
                return

    async def send(self, frame: dict[str, Any]) -> None:
        await self.transport.send(frame)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0) -> dict[str, Any]:
        """The first frame received (already or later) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching frame; received " + repr([f["type"] for f in self.frames]))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_type(self, frame_type: str, **fields: Any) -> dict[str, Any]:
        return await self.wait_for(
            lambda frame: frame["type"] == frame_type and all(frame.get(key) == value for key, value in fields.items())
        )

    async def request(self, frame: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
        """Send a frame with a fresh ref; its answer (the first frame with that ref)."""
        ref = "r" + str(len(self.frames)) + "-" + str(time.monotonic_ns())
        await self.send({**frame, "ref": ref})
        return await self.wait_for(lambda answer: answer.get("ref") == ref, timeout=timeout)

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=[RTCIceServer(urls=server["urls"]) for server in self.ice_servers if "username" not in server]
        )

    async def join(self, **fields: Any) -> dict[str, Any]:
        """Send "join"; returns "joined", "lobby" or the error."""
        answer = await self.request({"type": "join", **fields})
        if answer["type"] == "joined":
            self.ice_servers = answer["ice_servers"]
        return answer

    async def joined_after_lobby(self) -> dict[str, Any]:
        joined = await self.wait_type("joined")
        self.ice_servers = joined["ice_servers"]
        return joined

    async def publish(self) -> dict[str, Any]:
        """Offer the tracks on the publishing connection; returns "answer"
        (or the error)."""
        connection = self.publish_connection = RTCPeerConnection(self._configuration())
        for track in self.tracks:
            connection.addTransceiver(track, direction="sendonly")
        await connection.setLocalDescription(await connection.createOffer())
        assert connection.localDescription is not None
        answer = await self.request(
            {"type": "offer", "offer": {"type": "offer", "sdp": connection.localDescription.sdp}}
        )
        if answer["type"] == "answer":
            await connection.setRemoteDescription(RTCSessionDescription(**answer["answer"]))
        return answer

    async def _answer_offers(self) -> None:
        while True:
            frame = await self._offers.get()
            if self.subscribe_connection is None:
                self.subscribe_connection = RTCPeerConnection(self._configuration())
                self.subscribe_connection.on("track", self._on_track)
            connection = self.subscribe_connection
            if connection.signalingState == "closed":
                continue
            for track in frame["tracks"]:
                self._mid_peers[track["mid"]] = track["peer"]
            await connection.setRemoteDescription(RTCSessionDescription(**frame["offer"]))
            await connection.setLocalDescription(await connection.createAnswer())
            assert connection.localDescription is not None
            await self.send(
                {
                    "type": "answer",
                    "revision": frame["revision"],
                    "answer": {"type": "answer", "sdp": connection.localDescription.sdp},
                }
            )

    def _on_track(self, track: MediaStreamTrack) -> None:
        connection = self.subscribe_connection
        assert connection is not None
        transceiver = next(item for item in connection.getTransceivers() if item.receiver.track is track)
        mid = transceiver.mid

        async def read() -> None:
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return
                key = (self._mid_peers.get(mid or ""), track.kind)
                self.decoded[key] = self.decoded.get(key, 0) + 1

        task = asyncio.ensure_future(read())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def decoded_from(self, peer: str, kind: str) -> int:
        return self.decoded.get((peer, kind), 0)

    async def until_decoded(self, peer: str, kind: str, count: int, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.decoded_from(peer, kind) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} {kind} frames from {peer} not decoded; got {self.decoded}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in (self._reader, self._answerer, *self._tasks):
            task.cancel()
        await asyncio.gather(self._reader, self._answerer, *self._tasks, return_exceptions=True)
        for connection in (self.publish_connection, self.subscribe_connection):
            if connection is not None:
                await connection.close()
