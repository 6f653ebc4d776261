"""Rooms, peers and their peer connections on one media worker.

Every participant ("peer") has up to two peer connections with the worker:
the publish connection, negotiated by the client's offers, carries what the
participant sends; the subscribe connection, negotiated by the worker's
offers, carries the forwarded media of the others. Each connection has one
offerer, so the two sides never offer at once ("glare"). A published track
becomes a ForwardingSource; each subscription is one sending transceiver of
the subscribe connection whose ForwardedTrack is attached to a source.
Transceivers are never removed (aiortc cannot): an unsubscribed one turns
"inactive" and is reused for the next track of its kind.

Nothing here knows Django or the channel layer: lessons.media.worker calls
these methods for commands and delivers what they put in the Outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.sdp import candidate_from_sdp

from lessons.media import forwarding, opus, protocol
from lessons.media.protocol import CommandError

if TYPE_CHECKING:
    from lessons.media.recording import Recorder

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0
# Room events after which a recorder looks at the published tracks again.
_TRACK_EVENTS = frozenset({"track.published", "track.unpublished", "peer.left"})


@dataclasses.dataclass(frozen=True)
class MediaSettings:
    """How a worker treats its peers. Timeouts in seconds."""

    ice_servers: tuple[dict[str, Any], ...] = ()
    # A peer connection that is not up this long after its negotiation is
    # given up (the participant vanished or cannot reach the worker).
    connect_timeout: float = 30.0
    # A subscriber that does not answer the worker's offer in time is removed.
    answer_timeout: float = 30.0
    # A keyframe asked of a publisher is awaited this long before it is
    # asked for again (requests in between are folded into it).
    keyframe_interval: float = 0.5
    max_peers_per_room: int = 200
    max_sdp_bytes: int = 100_000
    # An empty room is closed after this long.
    room_idle_timeout: float = 600.0
    # Where recordings are written (Django's MEDIA_ROOT); None: not here.
    recordings_root: str | None = None


class Outbox:
    """Events waiting to leave the worker, in order. The worker drains it
    onto the channel layer; tests may read it directly."""

    def __init__(self) -> None:
        # None marks the end (the worker is stopping).
        self.queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | None] = asyncio.Queue()

    def to_channel(self, channel: str, message: dict[str, Any]) -> None:
        self.queue.put_nowait(("channel", channel, message))

    def to_group(self, group: str, message: dict[str, Any]) -> None:
        self.queue.put_nowait(("group", group, message))

    def stop(self) -> None:
        self.queue.put_nowait(None)


class Resources:
    """Every peer connection the worker has made and not yet closed, and the
    closings still under way: what "no leaked peer connections" counts."""

    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings
        self.peer_connections: set[RTCPeerConnection] = set()
        self.closing: set[asyncio.Task[None]] = set()
        # Every connection ever made that is still in memory: a closed one
        # that stays here after a garbage collection has leaked.
        self.connections_in_memory: weakref.WeakSet[RTCPeerConnection] = weakref.WeakSet()

    def peer_connection_create(self) -> RTCPeerConnection:
        servers = [
            RTCIceServer(urls=server["urls"], username=server.get("username"), credential=server.get("credential"))
            for server in self.settings.ice_servers
        ]
        # One transport for all media (max-bundle): a subscriber's new
        # transceivers reuse the connection that is already up.
        connection = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.peer_connections.add(connection)
        self.connections_in_memory.add(connection)
        return connection

    def peer_connection_close(self, connection: RTCPeerConnection) -> None:
        async def close() -> None:
            try:
                # aiortc's close can wait forever on a sender or receiver
                # whose task never started; a worker must not.
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)
            except Exception:
                logger.exception("closing a peer connection failed")
            finally:
                self.peer_connections.discard(connection)

        task = asyncio.ensure_future(close())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def settle(self) -> None:
        """Wait until every closing under way has finished."""
        while self.closing:
            await asyncio.gather(*tuple(self.closing), return_exceptions=True)


@dataclasses.dataclass(eq=False)
class PublishedTrack:
    """A track a peer sends, as the room sees it."""

    source_id: str
    peer: Peer
    kind: str
    mid: str
    track_id: str | None
    source: forwarding.ForwardingSource
    is_active: bool = True

    def payload(self) -> dict[str, Any]:
        return {
            "source": self.source_id,
            "peer": self.peer.peer_id,
            "kind": self.kind,
            "mid": self.mid,
            "track": self.track_id,
            "muted": not self.source.is_forwarding,
        }


@dataclasses.dataclass(eq=False)
class Slot:
    """One sending transceiver of a subscribe connection."""

    transceiver: RTCRtpTransceiver
    track: forwarding.ForwardedTrack
    published: PublishedTrack | None = None
    is_activation_due: bool = False


class Peer:
    def __init__(
        self,
        *,
        room: Room,
        peer_id: str,
        channel: str,
        auto_subscribe: frozenset[str],
        muted_kinds: frozenset[str],
    ) -> None:
        self.room = room
        self.peer_id = peer_id
        self.channel = channel
        self.auto_subscribe = auto_subscribe
        self.muted_kinds = set(muted_kinds)
        # Per publisher: the kinds subscribed to, overriding auto_subscribe.
        self.rules: dict[str, frozenset[str]] = {}
        self.is_joined = False
        self.is_removed = False
        self.publish_connection: RTCPeerConnection | None = None
        self.published: dict[str, PublishedTrack] = {}
        self.sources_by_transceiver: dict[RTCRtpTransceiver, forwarding.ForwardingSource] = {}
        self.source_count = 0
        self.subscribe_connection: RTCPeerConnection | None = None
        self.slots: list[Slot] = []
        self.revision = 0
        self.is_awaiting_answer = False
        self.is_negotiation_wanted = False
        self.negotiation_task: asyncio.Task[None] | None = None
        self.has_answered = False
        self.timers: dict[str, asyncio.TimerHandle] = {}

    @property
    def resources(self) -> Resources:
        return self.room.resources

    @property
    def settings(self) -> MediaSettings:
        return self.room.resources.settings

    def send(self, name: str, **fields: Any) -> None:
        self.room.outbox.to_channel(
            self.channel, protocol.event(name, worker=self.room.worker_id, room=self.room.room_id, **fields)
        )

    # --- timers -------------------------------------------------------------

    def timer_start(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self.timer_cancel(name)
        self.timers[name] = asyncio.get_running_loop().call_later(delay, callback)

    def timer_cancel(self, name: str) -> None:
        timer = self.timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _connect_watch(self, connection: RTCPeerConnection, name: str) -> None:
        """Give the connection connect_timeout to come up."""

        def check() -> None:
            self.timers.pop(name, None)
            if not self.is_removed and connection.connectionState != "connected":
                self.room.peer_remove(self, reason="connect-timeout")

        self.timer_start(name, self.settings.connect_timeout, check)

    def _state_watch(self, connection: RTCPeerConnection) -> None:
        @connection.on("connectionstatechange")
        def changed() -> None:
            if self.is_removed or connection not in (self.publish_connection, self.subscribe_connection):
                return
            state = connection.connectionState
            if state == "failed":
                self.room.peer_remove(self, reason="connection-failed")
            elif state == "closed":
                self.room.peer_remove(self, reason="connection-closed")

    # --- publishing ----------------------------------------------------------

    async def publish(self, offer_sdp: str) -> str:
        """Apply the client's offer to the publish connection; returns the
        answer's SDP. New sending media sections become published tracks."""
        try:
            parsed = aiortc_sdp.SessionDescription.parse(offer_sdp)
        except Exception as error:
            raise CommandError("invalid-sdp", "the offer is not valid SDP: " + type(error).__name__) from error
        if not any(media.kind in protocol.KINDS for media in parsed.media):
            raise CommandError("invalid-sdp", "the offer has no audio or video section")
        connection = self.publish_connection
        is_new = connection is None
        if connection is None:
            connection = self.resources.peer_connection_create()
            self._state_watch(connection)

            @connection.on("track")
            def on_track(track: Any) -> None:
                # A transceiver aiortc made itself must not decode either.
                for transceiver in connection.getTransceivers():
                    if transceiver.receiver.track is track and transceiver not in self.sources_by_transceiver:
                        forwarding.tap_install(transceiver.receiver, lambda codec, frame: None)

        elif connection.signalingState != "stable":
            raise CommandError("wrong-state", "the publish connection is still negotiating")
        known_mids = {transceiver.mid for transceiver in connection.getTransceivers() if transceiver.mid is not None}
        for media in parsed.media:
            if media.kind not in protocol.KINDS or media.rtp.muxId in known_mids:
                continue
            # Made before the offer is applied, so that aiortc matches them to
            # the offer's sections in order and honours the codec preference.
            transceiver = connection.addTransceiver(media.kind, direction="recvonly")
            transceiver.setCodecPreferences(forwarding.codec_preferences(media.kind))
            source = forwarding.ForwardingSource(
                receiver=transceiver.receiver, kind=media.kind, keyframe_interval=self.settings.keyframe_interval
            )
            self.sources_by_transceiver[transceiver] = source
        try:
            await connection.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            answer = await connection.createAnswer()
            await connection.setLocalDescription(answer)
        except Exception as error:
            if is_new:
                self.resources.peer_connection_close(connection)
                self.sources_by_transceiver.clear()
            code = "unsupported-codec" if "description send parameters" in str(error) else "invalid-sdp"
            message = "no codec in common (the worker forwards VP8 and Opus)" if code == "unsupported-codec" else ""
            raise CommandError(code, message or "the offer was refused: " + (str(error) or type(error).__name__)) from (
                error
            )
        if is_new:
            self.publish_connection = connection
            self._connect_watch(connection, "publish-connect")
        self._published_refresh(parsed)
        assert connection.localDescription is not None
        # What the publisher's encoder should send (lessons.media.opus); the
        # worker's own side of the connection is not affected.
        return opus.answer_tune(connection.localDescription.sdp)

    def _published_refresh(self, offer: Any) -> None:
        """Match published tracks to the directions the client now sends."""
        assert self.publish_connection is not None
        by_mid = {media.rtp.muxId: media for media in offer.media}
        changed = False
        for transceiver, source in self.sources_by_transceiver.items():
            media = by_mid.get(transceiver.mid)
            is_sending = media is not None and media.direction in ("sendonly", "sendrecv") and media.port != 0
            current = next((track for track in self.published.values() if track.source is source), None)
            if is_sending and current is None:
                assert media is not None and transceiver.mid is not None
                source_id = self.peer_id + "." + str(self.source_count)
                self.source_count += 1
                track_id = media.msid.split()[-1] if media.msid else None
                published = PublishedTrack(
                    source_id=source_id,
                    peer=self,
                    kind=source.kind,
                    mid=transceiver.mid,
                    track_id=track_id,
                    source=source,
                )
                source.forwarding_set(source.kind not in self.muted_kinds)
                self.published[source_id] = published
                if self.is_joined:
                    self.room.broadcast("track.published", **published.payload())
                changed = True
            elif not is_sending and current is not None:
                self._unpublish(current)
                changed = True
        if changed and self.is_joined:
            self.room.negotiation_request_all(exclude=self)

    def _unpublish(self, published: PublishedTrack) -> None:
        published.is_active = False
        self.published.pop(published.source_id, None)
        for sink in tuple(published.source.sinks):
            sink.detach()
        self.room.broadcast("track.unpublished", source=published.source_id, peer=self.peer_id, kind=published.kind)

    def mute(self, kinds: frozenset[str], is_muted: bool) -> list[PublishedTrack]:
        """Stop (or resume) forwarding this peer's tracks of these kinds, now
        and for tracks it publishes later."""
        if is_muted:
            self.muted_kinds |= kinds
        else:
            self.muted_kinds -= kinds
        changed = []
        for published in self.published.values():
            if published.kind in kinds and published.source.is_forwarding == is_muted:
                published.source.forwarding_set(not is_muted)
                changed.append(published)
        return changed

    async def ice_add(self, target: str, candidate: dict[str, Any] | None) -> None:
        connection = self.publish_connection if target == "publish" else self.subscribe_connection
        if connection is None:
            raise CommandError("wrong-state", "there is no " + target + " connection")
        if candidate is None or not candidate.get("candidate"):
            await connection.addIceCandidate(None)  # type: ignore[arg-type]
            return
        text = candidate.get("candidate")
        mid = candidate.get("sdpMid")
        index = candidate.get("sdpMLineIndex")
        if not isinstance(text, str) or (mid is not None and not isinstance(mid, str)):
            raise CommandError("invalid-candidate", "candidate must be a string and sdpMid a string or null")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            raise CommandError("invalid-candidate", "sdpMLineIndex must be an integer or null")
        if mid is None and index is None:
            raise CommandError("invalid-candidate", "a candidate needs sdpMid or sdpMLineIndex")
        try:
            parsed = candidate_from_sdp(text.removeprefix("a=").removeprefix("candidate:"))
        except Exception as error:
            raise CommandError("invalid-candidate", "the candidate is not valid SDP") from error
        parsed.sdpMid = mid
        parsed.sdpMLineIndex = index
        await connection.addIceCandidate(parsed)

    # --- subscribing -----------------------------------------------------------

    def wanted_tracks(self) -> dict[str, PublishedTrack]:
        wanted: dict[str, PublishedTrack] = {}
        for other in self.room.peers.values():
            if other is self:
                continue
            kinds = self.rules.get(other.peer_id, self.auto_subscribe)
            for published in other.published.values():
                if published.kind in kinds and published.is_active:
                    wanted[published.source_id] = published
        return wanted

    def negotiation_request(self) -> None:
        """Bring the subscribe connection in line with what this peer should
        receive, with a new offer if anything changed."""
        self.is_negotiation_wanted = True
        if self.negotiation_task is None and not self.is_awaiting_answer and not self.is_removed:
            self.negotiation_task = asyncio.ensure_future(self._negotiate())

    async def _negotiate(self) -> None:
        try:
            # Changes made in the same turn of the event loop share one offer.
            await asyncio.sleep(0)
            while self.is_negotiation_wanted and not self.is_awaiting_answer and not self.is_removed:
                self.is_negotiation_wanted = False
                if not self._reconcile():
                    continue
                connection = self.subscribe_connection
                assert connection is not None
                await connection.setLocalDescription(await connection.createOffer())
                if self.is_removed or connection is not self.subscribe_connection:
                    return
                assert connection.localDescription is not None
                self.revision += 1
                self.is_awaiting_answer = True
                self.send(
                    "sdp.offer",
                    peer=self.peer_id,
                    revision=self.revision,
                    offer={"type": "offer", "sdp": connection.localDescription.sdp},
                    tracks=self.tracks_payload(),
                )
                self.timer_start("answer", self.settings.answer_timeout, self._answer_timeout)
        except Exception:
            logger.exception("negotiating a subscribe connection failed")
            self.room.peer_remove(self, reason="internal-error")
        finally:
            self.negotiation_task = None

    def _answer_timeout(self) -> None:
        self.timers.pop("answer", None)
        if not self.is_removed and self.is_awaiting_answer:
            self.room.peer_remove(self, reason="answer-timeout")

    def tracks_payload(self) -> list[dict[str, Any]]:
        """Which published track each media section of the subscribe
        connection carries: the key to tell received tracks apart."""
        tracks = []
        for slot in self.slots:
            published = slot.published
            tracks.append(
                {
                    "mid": slot.transceiver.mid,
                    "kind": slot.track.kind,
                    "source": published.source_id if published else None,
                    "peer": published.peer.peer_id if published else None,
                    "active": published is not None,
                }
            )
        return tracks

    def _reconcile(self) -> bool:
        """Attach and detach forwarded tracks; True when an offer is due."""
        wanted = self.wanted_tracks()
        changed = False
        freed: set[int] = set()
        for index, slot in enumerate(self.slots):
            published = slot.published
            if published is not None and published.source_id not in wanted:
                slot.track.detach()
                slot.published = None
                slot.is_activation_due = False
                slot.transceiver.direction = "inactive"
                freed.add(index)
                changed = True
        attached = {slot.published.source_id for slot in self.slots if slot.published is not None}
        for source_id, published in wanted.items():
            if source_id in attached:
                continue
            free = next(
                (
                    candidate
                    for index, candidate in enumerate(self.slots)
                    if candidate.published is None and candidate.track.kind == published.kind and index not in freed
                ),
                None,
            )
            slot = free if free is not None else self._slot_create(published.kind)
            slot.transceiver.direction = "sendonly"
            slot.published = published
            slot.track.track_id = source_id
            slot.track.attach(published.source)
            forwarding.sender_stream_id_set(slot.transceiver.sender, published.peer.peer_id)
            # Refreshes the msid track id of the media section.
            slot.transceiver.sender.replaceTrack(slot.track)
            slot.is_activation_due = True
            changed = True
        return changed

    def _slot_create(self, kind: str) -> Slot:
        if self.subscribe_connection is None:
            self.subscribe_connection = self.resources.peer_connection_create()
            self._state_watch(self.subscribe_connection)
        track = forwarding.ForwardedTrack(kind)
        transceiver = self.subscribe_connection.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(forwarding.codec_preferences(kind))

        def keyframe_wanted() -> None:
            if track.source is not None:
                track.source.keyframe_request()

        forwarding.sender_on_keyframe_request(transceiver.sender, keyframe_wanted)
        slot = Slot(transceiver=transceiver, track=track)
        self.slots.append(slot)
        return slot

    async def answer_apply(self, answer_sdp: str, revision: int) -> None:
        connection = self.subscribe_connection
        if connection is None or not self.is_awaiting_answer or revision != self.revision:
            raise CommandError("stale-answer", "no offer with revision " + str(revision) + " is waiting for an answer")
        try:
            await connection.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as error:
            # aiortc cannot roll back: start the subscribe connection afresh.
            self._subscribe_reset()
            raise CommandError(
                "invalid-sdp", "the answer was refused; a new offer follows: " + (str(error) or type(error).__name__)
            ) from error
        if connection is not self.subscribe_connection or self.is_removed:
            return
        self.is_awaiting_answer = False
        self.timer_cancel("answer")
        for slot in self.slots:
            if slot.is_activation_due:
                slot.is_activation_due = False
                # The sender dropped what came while it was inactive.
                slot.track._await_keyframe()
        if not self.has_answered:
            self.has_answered = True
            self._connect_watch(connection, "subscribe-connect")
        if self.is_negotiation_wanted:
            self.negotiation_request()

    def _subscribe_reset(self) -> None:
        connection = self.subscribe_connection
        self.subscribe_connection = None
        for slot in self.slots:
            slot.track.stop()
        self.slots = []
        self.is_awaiting_answer = False
        self.has_answered = False
        self.timer_cancel("answer")
        self.timer_cancel("subscribe-connect")
        if connection is not None:
            self.resources.peer_connection_close(connection)
        self.negotiation_request()

    # --- leaving -----------------------------------------------------------------

    def close(self) -> None:
        """Release everything; idempotent. The room announces the departure."""
        self.is_removed = True
        for name in tuple(self.timers):
            self.timer_cancel(name)
        if self.negotiation_task is not None:
            self.negotiation_task.cancel()
            self.negotiation_task = None
        for published in tuple(self.published.values()):
            published.is_active = False
            published.source.close()
        self.published.clear()
        for source in self.sources_by_transceiver.values():
            source.close()
        self.sources_by_transceiver.clear()
        for slot in self.slots:
            slot.track.stop()
        self.slots = []
        for connection in (self.publish_connection, self.subscribe_connection):
            if connection is not None:
                self.resources.peer_connection_close(connection)
        self.publish_connection = None
        self.subscribe_connection = None

    def stats(self) -> dict[str, Any]:
        return {
            "peer": self.peer_id,
            "publish_state": self.publish_connection.connectionState if self.publish_connection else None,
            "subscribe_state": self.subscribe_connection.connectionState if self.subscribe_connection else None,
            "published": [
                {
                    **published.payload(),
                    "frames_received": published.source.frames_received,
                    "keyframes_received": published.source.keyframes_received,
                    "keyframes_requested": published.source.keyframes_requested,
                    "subscribers": len(published.source.sinks),
                }
                for published in self.published.values()
            ],
            "subscribed": [
                {
                    "mid": slot.transceiver.mid,
                    "kind": slot.track.kind,
                    "source": slot.published.source_id if slot.published else None,
                    "frames_forwarded": slot.track.frames_forwarded,
                }
                for slot in self.slots
            ],
            "muted": sorted(self.muted_kinds),
        }


class Room:
    def __init__(
        self,
        *,
        room_id: str,
        group: str | None,
        worker_id: str,
        resources: Resources,
        outbox: Outbox,
        on_empty: Callable[[Room], None] | None = None,
    ) -> None:
        self.room_id = room_id
        self.group = group
        self.worker_id = worker_id
        self.resources = resources
        self.outbox = outbox
        self.peers: dict[str, Peer] = {}
        self.is_closed = False
        self._on_empty = on_empty
        # The room's recording under way (lessons.media.recording).
        self.recorder: Recorder | None = None

    def broadcast(self, name: str, *, extra_channels: Iterable[str] = (), **fields: Any) -> None:
        """A room-wide event: to the room's group when it has one, otherwise
        to the channel of every peer (and of `extra_channels`)."""
        if self.recorder is not None and name in _TRACK_EVENTS:
            self.recorder.refresh()
        message = protocol.event(name, worker=self.worker_id, room=self.room_id, **fields)
        if self.group is not None:
            self.outbox.to_group(self.group, message)
            return
        channels = {peer.channel for peer in self.peers.values()} | set(extra_channels)
        for channel in sorted(channels):
            self.outbox.to_channel(channel, message)

    def peer_get(self, peer_id: str) -> Peer:
        peer = self.peers.get(peer_id)
        if peer is None:
            raise CommandError("peer-not-found", "peer " + peer_id + " is not in room " + self.room_id)
        return peer

    async def peer_join(
        self,
        *,
        peer_id: str,
        channel: str,
        offer_sdp: str | None,
        auto_subscribe: frozenset[str],
        muted_kinds: frozenset[str],
    ) -> tuple[Peer, str | None]:
        """Add a peer (replacing one with the same id); returns it with the
        answer to its offer. A refused offer leaves nothing behind."""
        previous = self.peers.get(peer_id)
        if previous is None and len(self.peers) >= self.resources.settings.max_peers_per_room:
            raise CommandError("room-full", "room " + self.room_id + " has no room for another peer")
        peer = Peer(
            room=self,
            peer_id=peer_id,
            channel=channel,
            auto_subscribe=auto_subscribe,
            muted_kinds=muted_kinds,
        )
        answer = None
        if offer_sdp is not None:
            try:
                answer = await peer.publish(offer_sdp)
            except BaseException:
                peer.close()
                raise
        if self.is_closed:
            peer.close()
            raise CommandError("room-not-found", "room " + self.room_id + " was closed")
        previous = self.peers.get(peer_id)
        if previous is not None:
            self.peer_remove(previous, reason="replaced")
        self.peers[peer_id] = peer
        peer.is_joined = True
        self.broadcast("peer.joined", peer=peer_id)
        for published in peer.published.values():
            self.broadcast("track.published", **published.payload())
        self.negotiation_request_all(exclude=None)
        return peer, answer

    def peer_remove(self, peer: Peer, *, reason: str) -> None:
        """Take a peer out and release its connections; idempotent."""
        if peer.is_removed:
            return
        if self.peers.get(peer.peer_id) is peer:
            del self.peers[peer.peer_id]
        had_tracks = bool(peer.published)
        for published in tuple(peer.published.values()):
            self.broadcast(
                "track.unpublished",
                extra_channels=[peer.channel],
                source=published.source_id,
                peer=peer.peer_id,
                kind=published.kind,
            )
        peer.close()
        self.broadcast("peer.left", extra_channels=[peer.channel], peer=peer.peer_id, reason=reason)
        if had_tracks:
            self.negotiation_request_all(exclude=None)
        if not self.peers and not self.is_closed:
            if reason != "replaced":
                # Nobody left to record: the file is completed now (a peer
                # replaced by its own new connection is back at once).
                self.recording_finish(reason="empty")
            if self._on_empty is not None:
                self._on_empty(self)

    def negotiation_request_all(self, *, exclude: Peer | None) -> None:
        for peer in self.peers.values():
            if peer is not exclude:
                peer.negotiation_request()

    def close(self, *, reason: str) -> None:
        """Remove every peer and announce the end of the room."""
        channels = [peer.channel for peer in self.peers.values()]
        self.recording_finish(reason=reason, extra_channels=channels)
        self.is_closed = True
        for peer in tuple(self.peers.values()):
            self.peer_remove(peer, reason=reason)
        self.broadcast("room.closed", extra_channels=channels, reason=reason)

    def recording_finish(self, *, reason: str, extra_channels: Iterable[str] = ()) -> dict[str, Any] | None:
        """Complete the recording under way, if any, and announce it with
        `recording.finished`; returns its report."""
        recorder = self.recorder
        if recorder is None:
            return None
        self.recorder = None
        try:
            report = recorder.finish()
        except Exception:
            logger.exception("completing recording %s failed", recorder.recording_id)
            report = recorder.report()
            reason = "failed"
        self.broadcast("recording.finished", extra_channels=extra_channels, reason=reason, **report)
        return report

    def stats(self) -> dict[str, Any]:
        recording = None
        if self.recorder is not None:
            recording = {**self.recorder.report(), "video_peer": self.recorder.video_peer}
        return {
            "room": self.room_id,
            "peers": [peer.stats() for peer in self.peers.values()],
            "recording": recording,
        }
