"""The signalling WebSocket of a lesson's call: `/ws/lessons/<occurrence_id>/`
(docs/protocol.md, "Lesson call WebSocket", is the contract; keep the two in
step).

One socket is one participant's way into the call of one occurrence. It
signs in like the chat socket (session cookie from a page of the portal, or
`Authorization: Token` / a "token" field for programs) or, for a guest
without an account, with the token of their personal link. The "join" frame
asks to come in (lessons.calls.call_join, i.e. selectors.join_verdict);
whoever must wait stays in the lobby until the host decides. Once admitted
the consumer places the participant's media on the media worker of the
occurrence (lessons.media.protocol.worker_for_room) and relays between the
browser and that worker over the channel layer: the worker's replies and
events come back to this consumer's own channel (and, for what concerns the
whole room, to the occurrence's group, which every socket of the call joins).

Every frame after "join" asks `participant_may_be_in_call` again: a
participant who is no longer allowed gets an error frame and is taken out of
the call, and nothing they sent is acted on. The consumer never waits for
the worker inside a handler (its replies arrive as messages handled one at a
time like everything else): each command carries a request id and its
reply continues the work, or a timeout says the media server is away.
"""

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.authentication import token_key_hash
from accounts.events import user_group_name
from accounts.models import User
from chats.consumers import FrameBucket, FrameError, frame_parse, frame_text, is_id, scope_language
from chats.ws_auth import user_by_token
from chats.ws_server import FRAME_MAX_BYTES
from common import realtime
from common.errors import ApplicationError
from lessons import calls, events, recordings, selectors
from lessons.media import ice, protocol
from lessons.models import ParticipantRole, ParticipantStatus

logger = logging.getLogger(__name__)

# Close codes (docs/protocol.md). The frame sent just before says why.
CLOSE_NORMAL = 1000  # after "leave"
CLOSE_TOO_BIG = 1009
CLOSE_TOO_BIG_FALLBACK = 4009
CLOSE_UNAUTHENTICATED = 4001  # bad credentials, or no "join" in time
CLOSE_REFUSED = 4003  # may not be in this call (refused, denied, removed)
CLOSE_POLICY = 4008  # sustained flooding
CLOSE_ENDED = 4010  # the host ended the call, or the meeting was cancelled
CLOSE_REPLACED = 4011  # the same participant joined from another connection
CLOSE_MEDIA_LOST = 4012  # the media connection or its server went away: join again

JOIN_TIMEOUT_SECONDS = 10
REF_MAX_LENGTH = 64
STATS_MIN_INTERVAL_SECONDS = 2.0
# A participant whose own connection was "poor" in this many "stats" reports
# in a row (taken at least STATS_MIN_INTERVAL_SECONDS apart; the portal's
# page reports every 5 s) is switched to audio only by the server.
AUDIO_ONLY_AFTER_POOR_REPORTS = 2
SDP_MAX_CHARS = 60_000
CANDIDATE_MAX_CHARS = 1000
TOKEN_MAX_LENGTH = 200

# The socket's stages.
NEW = "new"  # signed in or not, no "join" yet
WAITING = "waiting"  # in the lobby
JOINING = "joining"  # admitted; its media is being placed on the worker
IN_CALL = "in_call"
CLOSED = "closed"

LIMITS = {
    "frame_max_bytes": FRAME_MAX_BYTES,
    "join_timeout_seconds": JOIN_TIMEOUT_SECONDS,
    "frames_per_second": 10.0,
    "frames_burst": 30,
    "sdp_max_chars": SDP_MAX_CHARS,
    "stats_min_interval_seconds": STATS_MIN_INTERVAL_SECONDS,
    "message_max_chars": 2000,
}


def media_refusal(code: str, message: str) -> tuple[str, str]:
    """The socket's error code and detail for a media worker's refusal
    (the worker's own English message goes along as `media_detail`)."""
    codes = {
        "invalid-sdp": ("invalid_sdp", _("The media server refused the session description.")),
        "unsupported-codec": (
            "unsupported_codec",
            _("The media server forwards VP8 video and Opus audio only; offer one of them."),
        ),
        "invalid-candidate": ("invalid_candidate", _("The media server refused the ICE candidate.")),
        "wrong-state": ("wrong_state", _("That connection is not ready for this yet.")),
        "stale-answer": ("stale_answer", _("No offer with this revision is waiting for an answer.")),
        "room-full": ("room_full", _("There is no room for another participant in this call.")),
        "recording-active": ("already_recording", _("The meeting is being recorded already.")),
        "recording-unavailable": ("recording_unavailable", _("The media server cannot record now. Try again later.")),
        "timeout": ("media_unavailable", _("The media server does not answer. Try again in a minute.")),
    }
    return codes.get(code, ("media_error", _("The media server failed; try again.")))


@dataclass
class Pending:
    """A command sent to the media worker, waiting for its reply."""

    command: str
    ref: Any
    on_reply: Callable[[dict[str, Any]], Awaitable[None]] | None
    timer: asyncio.TimerHandle


def _kinds(value: Any, field: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or any(item not in calls.KINDS for item in value):
        raise FrameError("invalid", _("Invalid value of “%(field)s”.") % {"field": field}, field=field)
    return frozenset(value)


def _invalid(field: str) -> FrameError:
    return FrameError("invalid", _("Invalid value of “%(field)s”.") % {"field": field}, field=field)


def _description(frame: dict[str, Any], field: str, expected: str) -> dict[str, str]:
    value = frame.get(field)
    if (
        not isinstance(value, dict)
        or value.get("type") != expected
        or not isinstance(value.get("sdp"), str)
        or not value["sdp"]
        or len(value["sdp"]) > SDP_MAX_CHARS
    ):
        raise _invalid(field)
    return {"type": expected, "sdp": value["sdp"]}


def _candidate(frame: dict[str, Any]) -> dict[str, Any] | None:
    value = frame.get("candidate")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("candidate")
    text = value.get("candidate")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    if (
        not isinstance(text, str)
        or len(text) > CANDIDATE_MAX_CHARS
        or (mid is not None and not (isinstance(mid, str) and len(mid) <= 32))
        or (index is not None and not (is_id(index) or index == 0))
    ):
        raise _invalid("candidate")
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index}


def _participant_id(frame: dict[str, Any], *, allow_none: bool = False) -> int | None:
    value = frame.get("participant")
    if value is None and allow_none:
        return None
    if not is_id(value):
        raise _invalid("participant")
    return int(value)


def _boolean(frame: dict[str, Any], field: str) -> bool:
    value = frame.get(field)
    if not isinstance(value, bool):
        raise _invalid(field)
    return value


def _number(value: Any, field: str, *, maximum: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value <= maximum):
        raise _invalid(field)
    return float(value)


def _client_address(scope: Any) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _user_of(scope: Any) -> User | None:
    user = scope.get("user")
    return user if user is not None and user.is_authenticated else None


class CallConsumer(AsyncWebsocketConsumer):
    """`/ws/lessons/<occurrence_id>/`: one participant in one call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Frames, group events, worker replies and timeouts are handled one
        # at a time, in the order they arrive.
        self.turn = asyncio.Lock()
        self.timers_running: set[asyncio.Future[None]] = set()

    async def dispatch(self, message: dict[str, Any]) -> None:
        async with self.turn:
            with translation.override(getattr(self, "language", None) or settings.LANGUAGE_CODE):
                await super().dispatch(message)

    # --- Opening and closing ------------------------------------------------------------------------------------

    async def connect(self) -> None:
        self.occurrence_id = int(self.scope["url_route"]["kwargs"]["occurrence_id"])
        self.language = scope_language(self.scope)
        self.stage = NEW
        self.is_closing = False
        self.has_left = False
        self.user: User | None = _user_of(self.scope)
        self.participant_id: int | None = None
        self.role: str | None = None
        self.peer = ""
        self.group = events.meeting_group_name(self.occurrence_id)
        self.is_in_group = False
        self.room = calls.room_id(self.occurrence_id)
        self.worker_channel = protocol.worker_channel_name(
            protocol.worker_for_room(self.room, list(settings.LESSONS_MEDIA_WORKERS))
        )
        self.bucket = FrameBucket()
        self.pending: dict[str, Pending] = {}
        self.early_events: list[dict[str, Any]] = []
        # What this participant receives: the worker's default for unknown
        # publishers (fixed at peer.join) and the rules set per publisher.
        self.auto_subscribe: frozenset[str] = frozenset(calls.KINDS)
        self.rules: dict[str, frozenset[str]] = {}
        self.room_peers: set[str] = set()
        self.host_peers: set[str] = set()
        self.is_safe_lesson = False
        self.is_audio_only = False
        self.muted: frozenset[str] = frozenset()
        self.wanted_muted: frozenset[str] = frozenset()
        # Negotiation: the publish connection (the client offers) and the
        # worker's offer for the subscribe connection waiting for an answer.
        self.publish_stage: str | None = None  # None, "offering", "up"
        self.offer_revision: int | None = None
        self.has_subscribe_offer = False
        self.quality: str | None = None
        # The automatic fall-back to audio only (frame_stats): poor reports
        # in a row, and whether it may switch now. It is disarmed once it
        # switched, and armed again only by a "good" report while video is
        # on: after the person asked for video back, a connection that stays
        # weak does not switch them again and again.
        self.poor_reports = 0
        self.is_fallback_armed = True
        # The media section of this participant's shared screen, and whether
        # the recording under way takes its video from this participant.
        self.screen_mid: str | None = None
        self.is_recorded_video = False
        self.stats_at = 0.0
        self.join_timer: asyncio.TimerHandle | None = None
        self.auth_token: str | None = None
        self.signed_out_topic = ""
        await self.accept()
        if self.scope.get("auth_failed"):
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        self.join_timer = asyncio.get_running_loop().call_later(JOIN_TIMEOUT_SECONDS, self._later, self._join_deadline)

    async def realtime_deliver(self, text: str) -> None:
        """The person's real-time topic: only sign-outs matter here."""
        if self.is_closing:
            return
        if text.startswith('{"type":"session.revoked"') or (
            text.startswith('{"type":"token.revoked"')
            and self.auth_token
            and json.loads(text).get("key_hash") == token_key_hash(self.auth_token)
        ):
            self._later(self._signed_out)

    async def realtime_resumed(self) -> None:
        """A sign-out during a Redis outage is caught by the next frame's
        check of the participant; nothing to do here."""

    async def _signed_out(self) -> None:
        await self._finish(CLOSE_UNAUTHENTICATED, reason="disconnected")

    def _later(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` from a timer in the socket's turn."""

        async def run() -> None:
            async with self.turn:
                with translation.override(self.language):
                    try:
                        await work()
                    except Exception:
                        logger.exception("call socket timer failed")

        task = asyncio.ensure_future(run())
        self.timers_running.add(task)
        task.add_done_callback(self.timers_running.discard)

    async def _join_deadline(self) -> None:
        if self.stage == NEW and not self.is_closing:
            await self._close(CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        self.is_closing = True
        if self.signed_out_topic:
            await realtime.hub().leave(self, [self.signed_out_topic])
            self.signed_out_topic = ""
        if self.join_timer is not None:
            self.join_timer.cancel()
        for pending in self.pending.values():
            pending.timer.cancel()
        self.pending.clear()
        await self._leave_media(reason="disconnected")
        if self.is_in_group:
            self.is_in_group = False
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _close(self, code: int) -> None:
        if self.is_closing:
            return
        self.is_closing = True
        try:
            await self.close(code=code)
        except Exception:
            if code != CLOSE_TOO_BIG:
                raise
            await self.close(code=CLOSE_TOO_BIG_FALLBACK)

    async def _finish(self, code: int, frame: dict[str, Any] | None = None, *, reason: str = "left") -> None:
        """Say why, take the participant out of the call, close."""
        if self.is_closing:
            return
        if frame is not None:
            await self._reply(frame)
        await self._leave_media(reason=reason)
        self.stage = CLOSED
        await self._close(code)

    async def _leave_media(self, *, reason: str) -> None:
        """End the participant's presence and attendance (when this
        connection is still theirs) and take their peer off the worker."""
        if self.has_left or self.participant_id is None or self.stage not in (JOINING, IN_CALL):
            return
        self.has_left = True
        was_current, other_is_current = await database_sync_to_async(calls.call_leave)(
            participant_id=self.participant_id, channel_name=self.channel_name, reason=reason
        )
        if was_current or (self.stage == JOINING and not other_is_current):
            await self._send_command("peer.leave", room=self.room, peer=self.peer)
        if was_current:
            await database_sync_to_async(recordings.recording_collect_if_empty)(occurrence_id=self.occurrence_id)

    # --- Talking to the browser -----------------------------------------------------------------------------------

    async def _reply(self, frame: dict[str, Any]) -> None:
        if not self.is_closing:
            await self.send(text_data=frame_text(frame))

    async def _error(self, ref: Any, code: str, detail: str, **extra: Any) -> None:
        await self._reply({"type": "error", "ref": ref, "code": code, "detail": detail, **extra})

    # --- Talking to the media worker -------------------------------------------------------------------------------

    async def _send_command(self, name: str, **fields: Any) -> None:
        """A command whose reply nobody waits for (its refusals are logged by
        the worker)."""
        try:
            await self.channel_layer.send(self.worker_channel, protocol.command(name, **fields))
        except Exception:
            logger.warning("media command %s not sent (channel layer unavailable)", name)

    async def _command(
        self,
        name: str,
        *,
        ref: Any = None,
        on_reply: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        **fields: Any,
    ) -> None:
        """Send a command with this socket's channel as reply_to; `on_reply`
        gets the worker's reply or error event (or a "timeout" error)."""
        request = uuid.uuid4().hex[:20]
        timer = asyncio.get_running_loop().call_later(
            settings.LESSONS_MEDIA_COMMAND_TIMEOUT, self._later, lambda: self._timed_out(request)
        )
        self.pending[request] = Pending(command=name, ref=ref, on_reply=on_reply, timer=timer)
        try:
            await self.channel_layer.send(
                self.worker_channel,
                protocol.command(name, request_id=request, reply_to=self.channel_name, **fields),
            )
        except Exception:
            logger.warning("media command %s not sent (channel layer unavailable)", name)
            timer.cancel()
            self.pending.pop(request, None)
            await self._media_reply(
                Pending(command=name, ref=ref, on_reply=on_reply, timer=timer),
                {"event": "error", "ok": False, "code": "timeout", "message": "the channel layer is unavailable"},
            )

    async def _timed_out(self, request: str) -> None:
        pending = self.pending.pop(request, None)
        if pending is not None and not self.is_closing:
            await self._media_reply(
                pending, {"event": "error", "ok": False, "code": "timeout", "message": "no reply from the worker"}
            )

    async def _media_reply(self, pending: Pending, message: dict[str, Any]) -> None:
        if pending.on_reply is not None:
            await pending.on_reply(message)
        elif message.get("event") == "error":
            logger.info("media command %s refused: %s", pending.command, message.get("code"))

    async def _media_error(self, ref: Any, message: dict[str, Any]) -> None:
        """Tell the browser why the worker refused; a peer or room the
        worker no longer has means the media is gone: join again."""
        code = str(message.get("code"))
        if code in ("peer-not-found", "room-not-found") and self.stage == IN_CALL:
            await self._media_lost(ref, "media_lost")
            return
        socket_code, detail = media_refusal(code, str(message.get("message", "")))
        await self._error(ref, socket_code, detail, media_detail=str(message.get("message", ""))[:300])

    async def _media_lost(self, ref: Any, reason: str) -> None:
        await self._finish(
            CLOSE_MEDIA_LOST,
            {
                "type": "media.lost",
                "ref": ref,
                "reason": reason,
                "detail": _("The connection to the media server was lost. Join again."),
            },
            reason="media_lost",
        )

    # --- Frames from the browser -----------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.is_closing:
            return
        size = len(bytes_data) if bytes_data is not None else len(text_data or "")
        if size > FRAME_MAX_BYTES or (
            text_data is not None and size * 4 > FRAME_MAX_BYTES and len(text_data.encode()) > FRAME_MAX_BYTES
        ):
            await self._finish(CLOSE_TOO_BIG, reason="disconnected")
            return
        if not self.bucket.take():
            if self.bucket.is_flooding:
                await self._finish(CLOSE_POLICY, reason="disconnected")
                return
            await self._error(None, "throttled", _("Too many frames; slow down."))
            return
        frame = frame_parse(text_data) if text_data is not None else None
        if frame is None:
            await self._error(None, "invalid_frame", _("A frame must be a JSON object of at most 20 levels."))
            return
        ref = frame.get("ref")
        if ref is not None and not ((isinstance(ref, str) and len(ref) <= REF_MAX_LENGTH) or is_id(ref) or ref == 0):
            await self._error(None, "invalid_frame", _("ref must be a short string or a number."))
            return
        kind = frame.get("type")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._error(ref, "unknown_type", _("Unknown frame type."))
            return
        try:
            if kind not in ("join", "ping", "leave") and not await self._still_allowed(ref):
                return
            await handler(self, frame, ref)
        except FrameError as error:
            await self._error(ref, error.code, error.detail, **error.extra)
        except ApplicationError as error:
            extra = dict(error.extra)
            if error.retry_after is not None:
                extra["retry_after"] = error.retry_after
            await self._error(ref, error.code, error.message, **extra)
        except Exception:
            logger.exception("call socket frame failed")
            await self._error(ref, "server_error", _("The server failed; try again."))

    async def _still_allowed(self, ref: Any) -> bool:
        """Every frame but join/ping/leave: the participant must still be
        let into the call (selectors.participant_may_be_in_call)."""
        if self.stage == NEW or self.participant_id is None:
            await self._error(ref, "not_joined", _("Send “join” first."))
            return False
        if self.stage == WAITING:
            await self._error(ref, "not_admitted", _("You are in the lobby. The host will let you in soon."))
            return False
        participant = await database_sync_to_async(selectors.participant_may_be_in_call)(
            participant_id=self.participant_id
        )
        if participant is None:
            await self._error(ref, "not_admitted", _("You may not be in this call any more."))
            await self._finish(CLOSE_REFUSED, reason="refused")
            return False
        self.role = participant.role
        return True

    def _require_call(self) -> None:
        if self.stage != IN_CALL:
            raise FrameError("not_joined", _("Wait until you have joined the call."))

    def _require_host(self) -> None:
        self._require_call()
        if self.role != ParticipantRole.HOST:
            raise FrameError("not_host", _("Only the host may do this."))

    async def frame_ping(self, frame: dict[str, Any], ref: Any) -> None:
        await self._reply({"type": "pong", "ref": ref})

    async def frame_join(self, frame: dict[str, Any], ref: Any) -> None:
        if self.stage != NEW:
            raise FrameError("already_joined", _("This socket has joined already."))
        link = frame.get("link")
        token = frame.get("token")
        display_name = frame.get("display_name")
        if link is not None and not (isinstance(link, str) and 0 < len(link) <= 128):
            raise _invalid("link")
        if token is not None and not (isinstance(token, str) and 0 < len(token) <= TOKEN_MAX_LENGTH):
            raise _invalid("token")
        if display_name is not None and not (isinstance(display_name, str) and len(display_name) <= 200):
            raise _invalid("display_name")
        self.wanted_muted = _kinds(frame.get("muted"), "muted")
        audio_only = frame.get("audio_only", False)
        if not isinstance(audio_only, bool):
            raise _invalid("audio_only")
        self.is_audio_only = audio_only
        user = self.user
        if token is not None:
            user = await database_sync_to_async(user_by_token)(token)
            if user is None:
                await self._error(ref, "not_authenticated", _("This token is not valid."))
                await self._close(CLOSE_UNAUTHENTICATED)
                return
        if user is None and link is None:
            await self._error(ref, "not_authenticated", _("Sign in or use your personal link."))
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.auth_token = token if token is not None else self.scope.get("auth_token")
        try:
            participant = await database_sync_to_async(calls.call_join)(
                occurrence_id=self.occurrence_id,
                user=user,
                link_token=link,
                display_name=display_name,
                ip=_client_address(self.scope),
            )
        except ApplicationError as error:
            extra = dict(error.extra)
            if error.retry_after is not None:
                extra["retry_after"] = error.retry_after
            await self._error(ref, error.code, error.message, **extra)
            self.stage = CLOSED
            await self._close(CLOSE_REFUSED)
            return
        if self.join_timer is not None:
            self.join_timer.cancel()
            self.join_timer = None
        self.participant_id = participant.pk
        self.role = participant.role
        self.peer = calls.peer_id(participant.pk)
        self.join_ref = ref
        if user is not None:
            # A logout everywhere, a blocked account or this device's token
            # revoked ends the call for this socket (common.realtime).
            self.signed_out_topic = user_group_name(user.pk)
            await realtime.hub().join(self, [self.signed_out_topic])
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.is_in_group = True
        if participant.status == ParticipantStatus.WAITING:
            self.stage = WAITING
            await self._reply(
                {
                    "type": "lobby",
                    "ref": ref,
                    "participant": {
                        "id": participant.pk,
                        "display_name": participant.display_name,
                        "role": participant.role,
                        "status": participant.status,
                    },
                    "detail": _("You are in the lobby. The host will let you in soon."),
                    "recording": await database_sync_to_async(recordings.recording_running_payload)(
                        occurrence_id=self.occurrence_id
                    ),
                }
            )
            # Admitted between the join and listening to the group: the
            # event was missed, the status was not.
            await self._lobby_check()
        else:
            await self._admit()

    async def _lobby_check(self) -> None:
        assert self.participant_id is not None
        status = await database_sync_to_async(calls.participant_status)(participant_id=self.participant_id)
        if status == ParticipantStatus.ADMITTED:
            await self._admit()
        elif status == ParticipantStatus.DENIED:
            await self._finish(
                CLOSE_REFUSED, {"type": "denied", "detail": _("The host did not let you in.")}, reason="refused"
            )
        elif status == ParticipantStatus.REMOVED:
            await self._removed()

    async def _admit(self) -> None:
        """Admitted: open the room on its worker, then join the peer."""
        assert self.participant_id is not None
        plan = await database_sync_to_async(calls.call_plan)(
            participant_id=self.participant_id, muted=self.wanted_muted
        )
        if plan is None:
            await self._finish(
                CLOSE_REFUSED,
                {
                    "type": "error",
                    "ref": self.join_ref,
                    "code": "not_admitted",
                    "detail": _("You may not be in this call."),
                },
                reason="refused",
            )
            return
        self.stage = JOINING
        self.role = plan.participant.role
        self.muted = plan.muted
        self.is_safe_lesson = plan.state.is_safe_lesson
        self.host_peers = {calls.peer_id(pk) for pk in plan.host_participant_ids}
        self.auto_subscribe = self._auto_subscribe()
        await self._command("room.open", room=self.room, group=self.group, on_reply=self._room_opened)

    def _auto_subscribe(self) -> frozenset[str]:
        if self.is_audio_only or (self.is_safe_lesson and self.role != ParticipantRole.HOST):
            return frozenset({"audio"})
        return frozenset(calls.KINDS)

    def _desired(self, publisher: str) -> frozenset[str]:
        """What this participant receives from `publisher`: sound always;
        video unless in audio-only mode, and in a safe lesson only the
        hosts' video for everyone but the hosts."""
        if self.is_audio_only:
            return frozenset({"audio"})
        if self.is_safe_lesson and self.role != ParticipantRole.HOST and publisher not in self.host_peers:
            return frozenset({"audio"})
        return frozenset(calls.KINDS)

    async def _rules_sync(self, publishers: set[str]) -> None:
        for publisher in sorted(publishers - {self.peer}):
            desired = self._desired(publisher)
            current = self.rules.get(publisher, self.auto_subscribe)
            if desired - current:
                await self._command(
                    "subscribe", room=self.room, peer=self.peer, publisher=publisher, kinds=sorted(desired - current)
                )
            if current - desired:
                await self._command(
                    "unsubscribe", room=self.room, peer=self.peer, publisher=publisher, kinds=sorted(current - desired)
                )
            self.rules[publisher] = desired

    async def _room_opened(self, message: dict[str, Any]) -> None:
        if self.stage != JOINING:
            return
        if not message.get("ok"):
            await self._join_failed(message)
            return
        await self._command(
            "peer.join",
            room=self.room,
            peer=self.peer,
            auto_subscribe=sorted(self.auto_subscribe),
            muted=sorted(self.muted),
            on_reply=self._peer_joined,
        )

    async def _join_failed(self, message: dict[str, Any]) -> None:
        code, detail = media_refusal(str(message.get("code")), str(message.get("message", "")))
        await self._finish(
            CLOSE_MEDIA_LOST,
            {"type": "error", "ref": self.join_ref, "code": code, "detail": detail},
            reason="media_lost",
        )

    async def _peer_joined(self, message: dict[str, Any]) -> None:
        if self.stage != JOINING:
            return
        if not message.get("ok"):
            await self._join_failed(message)
            return
        assert self.participant_id is not None
        try:
            entry = await database_sync_to_async(calls.call_enter)(
                participant_id=self.participant_id,
                channel_name=self.channel_name,
                muted=self.muted,
                is_audio_only=self.is_audio_only,
            )
        except ApplicationError as error:
            await self._finish(
                CLOSE_REFUSED,
                {"type": "error", "ref": self.join_ref, "code": error.code, "detail": error.message},
                reason="refused",
            )
            return
        self.stage = IN_CALL
        self.room_peers = {peer for peer in message.get("peers") or [] if isinstance(peer, str)}
        participant = entry.participant
        occurrence = participant.occurrence
        meeting = occurrence.meeting
        frame: dict[str, Any] = {
            "type": "joined",
            "ref": self.join_ref,
            "participant": {
                "id": participant.pk,
                "peer": self.peer,
                "display_name": participant.display_name,
                "role": participant.role,
                "is_guest": participant.join_link_id is not None,
            },
            "meeting": {
                "id": meeting.pk,
                "kind": meeting.kind,
                "title": meeting.title,
                "is_recording_enabled": meeting.is_recording_enabled,
            },
            "occurrence": {
                "id": occurrence.pk,
                "starts_at": occurrence.starts_at.isoformat(),
                "ends_at": occurrence.ends_at.isoformat(),
            },
            "room": self.room,
            "ice_servers": ice.client_ice_servers(user_id=self.peer),
            "muted": sorted(self.muted),
            "audio_only": self.is_audio_only,
            "may_speak": calls.may_speak(participant=participant, state=entry.state),
            "state": calls.state_payload(entry.state),
            # Those whose media is in the room: a presence left behind by a
            # web process that died is not shown.
            "participants": [
                calls.presence_payload(presence)
                for presence in entry.presences
                if calls.peer_id(presence.participant_id) in self.room_peers | {self.peer}
            ],
            "peers": sorted(self.room_peers),
            "published": message.get("published") or [],
            "messages": [calls.message_payload(item) for item in entry.messages],
            "recording": await database_sync_to_async(recordings.recording_running_payload)(
                occurrence_id=self.occurrence_id
            ),
            "limits": LIMITS,
        }
        if participant.role == ParticipantRole.HOST:
            frame["lobby"] = [calls.lobby_payload(item) for item in entry.lobby]
        await self._reply(frame)
        await self._rules_sync(self.room_peers | self.host_peers)
        early, self.early_events = self.early_events, []
        for event in early:
            await self._media_room_event(event)

    async def frame_offer(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        offer = _description(frame, "offer", "offer")
        if self.publish_stage == "offering":
            raise FrameError("negotiating", _("Wait for the answer to your previous offer."))
        was_up = self.publish_stage == "up"
        self.publish_stage = "offering"

        async def answered(message: dict[str, Any]) -> None:
            if message.get("ok"):
                self.publish_stage = "up"
                await self._reply(
                    {"type": "answer", "ref": ref, "answer": message.get("answer"), "tracks": message.get("tracks")}
                )
            else:
                self.publish_stage = "up" if was_up else None
                await self._media_error(ref, message)

        await self._command("peer.publish", room=self.room, peer=self.peer, offer=offer, on_reply=answered)

    async def frame_answer(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        revision = frame.get("revision")
        if not is_id(revision):
            raise _invalid("revision")
        answer = _description(frame, "answer", "answer")
        if self.offer_revision is None or revision != self.offer_revision:
            raise FrameError("unexpected_answer", _("No offer with this revision is waiting for an answer."))
        self.offer_revision = None

        async def applied(message: dict[str, Any]) -> None:
            if not message.get("ok"):
                await self._media_error(ref, message)

        await self._command(
            "peer.answer", room=self.room, peer=self.peer, revision=revision, answer=answer, on_reply=applied
        )

    async def frame_ice(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        target = frame.get("target")
        if target not in ("publish", "subscribe"):
            raise _invalid("target")
        candidate = _candidate(frame)
        if (target == "publish" and self.publish_stage is None) or (
            target == "subscribe" and not self.has_subscribe_offer
        ):
            raise FrameError("no_connection", _("There is no such connection yet: offer or answer first."))

        async def added(message: dict[str, Any]) -> None:
            if not message.get("ok"):
                await self._media_error(ref, message)

        await self._command(
            "peer.ice", room=self.room, peer=self.peer, target=target, candidate=candidate, on_reply=added
        )

    async def frame_mute(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        kind = frame.get("kind")
        if kind not in calls.KINDS:
            raise _invalid("kind")
        is_muted = _boolean(frame, "muted")
        assert self.participant_id is not None
        await database_sync_to_async(calls.call_self_mute)(
            participant_id=self.participant_id, channel_name=self.channel_name, kind=kind, is_muted=is_muted
        )
        self.muted = self.muted | {kind} if is_muted else self.muted - {kind}
        await self._command("peer.mute", room=self.room, peer=self.peer, kinds=[kind], muted=is_muted)
        await self._reply({"type": "ack", "ref": ref, "for": "mute", "muted": sorted(self.muted)})

    async def frame_hand(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        raised = _boolean(frame, "raised")
        assert self.participant_id is not None
        await database_sync_to_async(calls.call_presence_update)(
            participant_id=self.participant_id, channel_name=self.channel_name, is_hand_raised=raised
        )
        await self._reply({"type": "ack", "ref": ref, "for": "hand", "raised": raised})

    async def frame_screen(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        mid = frame.get("mid")
        if mid is not None and not (isinstance(mid, str) and 0 < len(mid) <= 32):
            raise _invalid("mid")
        assert self.participant_id is not None
        await database_sync_to_async(calls.call_presence_update)(
            participant_id=self.participant_id, channel_name=self.channel_name, screen_mid=mid or ""
        )
        self.screen_mid = mid or None
        if self.is_recorded_video:
            # The recording shows the shared screen while there is one.
            await self._command("recording.video", room=self.room, video_peer=self.peer, screen_mid=self.screen_mid)
        await self._reply({"type": "ack", "ref": ref, "for": "screen", "mid": mid})

    async def frame_audio_only(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        enabled = _boolean(frame, "enabled")
        await self._audio_only_set(enabled)
        if not enabled:
            self.poor_reports = 0
        await self._reply({"type": "ack", "ref": ref, "for": "audio_only", "enabled": enabled})

    async def _audio_only_set(self, enabled: bool) -> None:
        """Receive sound only (or everything again): the others see it in
        the presence, the worker stops (or resumes) forwarding video."""
        assert self.participant_id is not None
        await database_sync_to_async(calls.call_presence_update)(
            participant_id=self.participant_id, channel_name=self.channel_name, is_audio_only=enabled
        )
        self.is_audio_only = enabled
        await self._rules_sync(self.room_peers | self.host_peers | set(self.rules))

    async def _fallback_check(self, level: str) -> None:
        """Switch a participant whose connection stays poor to audio only,
        and tell them why ("audio_only" with reason "poor_connection")."""
        if level == "good" and not self.is_audio_only:
            self.is_fallback_armed = True
        self.poor_reports = self.poor_reports + 1 if level == "poor" else 0
        if self.is_audio_only or not self.is_fallback_armed or self.poor_reports < AUDIO_ONLY_AFTER_POOR_REPORTS:
            return
        self.is_fallback_armed = False
        self.poor_reports = 0
        await self._audio_only_set(True)
        await self._reply(
            {
                "type": "audio_only",
                "enabled": True,
                "reason": "poor_connection",
                "detail": _("The connection is weak: audio only is on. Video comes back when you ask for it."),
            }
        )

    async def frame_chat(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_call()
        assert self.participant_id is not None
        message, created = await database_sync_to_async(calls.call_message_send)(
            participant_id=self.participant_id, body=frame.get("body"), client_id=frame.get("client_id")
        )
        await self._reply(
            {
                "type": "ack",
                "ref": ref,
                "for": "chat",
                "message": message.pk,
                "client_id": message.client_id or None,
                "status": "sent" if created else "duplicate",
            }
        )

    async def frame_stats(self, frame: dict[str, Any], ref: Any) -> None:
        """The browser's own measurements (RTCPeerConnection.getStats): the
        others hear of this participant's connection quality when it
        changes, and a connection that stays poor falls back to audio only."""
        self._require_call()
        rtt = _number(frame.get("rtt_ms"), "rtt_ms", maximum=600_000)
        loss = _number(frame.get("loss"), "loss", maximum=1)
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self.stats_at < STATS_MIN_INTERVAL_SECONDS:
            return
        self.stats_at = loop_time
        level = calls.quality_level(rtt_ms=rtt, loss=loss)
        await self._fallback_check(level)
        if level == self.quality:
            return
        self.quality = level
        event = {"type": calls.CALL_QUALITY, "participant": self.participant_id, "peer": self.peer, "level": level}
        try:
            await self.channel_layer.group_send(self.group, {"type": "lessons.event", "text": frame_text(event)})
        except Exception:
            logger.warning("call quality not published (channel layer unavailable)")

    async def frame_leave(self, frame: dict[str, Any], ref: Any) -> None:
        if self.stage in (NEW, CLOSED):
            await self._close(CLOSE_NORMAL)
            return
        await self._finish(CLOSE_NORMAL, {"type": "left", "ref": ref}, reason="left")

    # --- The host's frames --------------------------------------------------------------------------------------

    async def _mute_at_worker(self, participant_ids: list[int], kinds: list[str]) -> None:
        for participant_id in participant_ids:
            await self._command(
                "peer.mute", room=self.room, peer=calls.peer_id(participant_id), kinds=kinds, muted=True
            )

    async def frame_mute_participant(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        target = _participant_id(frame)
        kinds = _kinds(frame.get("kinds", ["audio"]), "kinds") or frozenset({"audio"})
        muted = await database_sync_to_async(calls.call_participant_mute)(
            actor_participant_id=self.participant_id, participant_id=target, kinds=kinds
        )
        await self._mute_at_worker(muted, sorted(kinds))
        await self._reply({"type": "ack", "ref": ref, "for": "mute_participant", "participants": muted})

    async def frame_mute_all(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        muted = await database_sync_to_async(calls.call_mute_all)(actor_participant_id=self.participant_id)
        await self._mute_at_worker(muted, ["audio"])
        await self._reply({"type": "ack", "ref": ref, "for": "mute_all", "participants": muted})

    async def frame_lock_microphones(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        locked = _boolean(frame, "locked")
        state, muted = await database_sync_to_async(calls.call_microphones_lock)(
            actor_participant_id=self.participant_id, is_locked=locked
        )
        await self._mute_at_worker(muted, ["audio"])
        await self._reply(
            {
                "type": "ack",
                "ref": ref,
                "for": "lock_microphones",
                "state": calls.state_payload(state),
                "participants": muted,
            }
        )

    async def frame_give_floor(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        target = _participant_id(frame, allow_none=True)
        state, muted = await database_sync_to_async(calls.call_floor_give)(
            actor_participant_id=self.participant_id, participant_id=target
        )
        await self._mute_at_worker(muted, ["audio"])
        await self._reply({"type": "ack", "ref": ref, "for": "give_floor", "state": calls.state_payload(state)})

    async def frame_safe_lesson(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        enabled = _boolean(frame, "enabled")
        state = await database_sync_to_async(calls.call_safe_lesson_set)(
            actor_participant_id=self.participant_id, is_enabled=enabled
        )
        await self._reply({"type": "ack", "ref": ref, "for": "safe_lesson", "state": calls.state_payload(state)})

    async def frame_remove(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        target = _participant_id(frame)
        assert target is not None
        participant = await database_sync_to_async(calls.call_remove)(
            actor_participant_id=self.participant_id, participant_id=target
        )
        # The removed participant's own socket leaves too; this makes sure
        # their media stops even if that socket is gone.
        await self._command("peer.leave", room=self.room, peer=calls.peer_id(participant.pk))
        await self._reply({"type": "ack", "ref": ref, "for": "remove", "participant": participant.pk})

    async def frame_admit(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        target = _participant_id(frame)
        admit = frame.get("admit", True)
        if not isinstance(admit, bool):
            raise _invalid("admit")
        participant = await database_sync_to_async(calls.call_lobby_decide)(
            actor_participant_id=self.participant_id, participant_id=target, admit=admit
        )
        await self._reply(
            {"type": "ack", "ref": ref, "for": "admit", "participant": participant.pk, "status": participant.status}
        )

    async def frame_end(self, frame: dict[str, Any], ref: Any) -> None:
        self._require_host()
        await database_sync_to_async(calls.call_end)(actor_participant_id=self.participant_id)
        # Closing the room completes a recording under way.
        await self._command("room.close", room=self.room)
        await database_sync_to_async(recordings.recording_collect_soon)(occurrence_id=self.occurrence_id)
        await self._reply({"type": "ack", "ref": ref, "for": "end"})

    async def frame_recording(self, frame: dict[str, Any], ref: Any) -> None:
        """A host starts ({"active": true}) or stops the recording; everyone
        hears "call.recording" (lessons.recordings)."""
        self._require_host()
        active = _boolean(frame, "active")
        assert self.participant_id is not None
        if active:
            await self._recording_start(ref)
        else:
            await self._recording_stop(ref)

    async def _recording_start(self, ref: Any) -> None:
        recording = await database_sync_to_async(recordings.recording_start)(actor_participant_id=self.participant_id)

        async def started(message: dict[str, Any]) -> None:
            if message.get("ok"):
                self.is_recorded_video = True
                payload = recordings.recording_payload(recording)
                await self._reply({"type": "ack", "ref": ref, "for": "recording", "recording": payload})
                return
            # Nothing is being written: the others hear it stopped.
            await database_sync_to_async(recordings.recording_fail)(recording_id=recording.pk)
            await self._media_error(ref, message)

        await self._command(
            "recording.start",
            room=self.room,
            recording=str(recording.pk),
            path=recording.file.name,
            video_peer=self.peer,
            screen_mid=self.screen_mid,
            on_reply=started,
        )

    async def _recording_stop(self, ref: Any) -> None:
        recording = await database_sync_to_async(recordings.recording_stop)(actor_participant_id=self.participant_id)

        async def stopped(message: dict[str, Any]) -> None:
            self.is_recorded_video = False
            if message.get("ok"):
                await database_sync_to_async(recordings.recording_finished)(
                    recording_id=message.get("recording"),
                    path=message.get("path"),
                    duration=message.get("duration"),
                    size=message.get("size"),
                )
            elif message.get("code") == "not-recording":
                # The worker has no such recording (it was restarted): no file.
                await database_sync_to_async(recordings.recording_fail)(recording_id=recording.pk)
            else:
                await self._media_error(ref, message)
                return
            await self._reply({"type": "ack", "ref": ref, "for": "recording", "recording": {"id": recording.pk}})

        await self._command("recording.stop", room=self.room, on_reply=stopped)

    handlers: dict[str, Callable[["CallConsumer", dict[str, Any], Any], Awaitable[None]]] = {
        "ping": frame_ping,
        "join": frame_join,
        "offer": frame_offer,
        "answer": frame_answer,
        "ice": frame_ice,
        "mute": frame_mute,
        "hand": frame_hand,
        "screen": frame_screen,
        "audio_only": frame_audio_only,
        "chat": frame_chat,
        "stats": frame_stats,
        "leave": frame_leave,
        "mute_participant": frame_mute_participant,
        "mute_all": frame_mute_all,
        "lock_microphones": frame_lock_microphones,
        "give_floor": frame_give_floor,
        "safe_lesson": frame_safe_lesson,
        "remove": frame_remove,
        "admit": frame_admit,
        "end": frame_end,
        "recording": frame_recording,
    }

    # --- Events of the occurrence's group (lessons.events, lessons.calls) -------------------------------------------

    async def lessons_event(self, message: dict[str, Any]) -> None:
        if self.is_closing:
            return
        text = message.get("text")
        try:
            event = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        subject = event.get("participant")
        subject_id = subject.get("id") if isinstance(subject, dict) else subject
        if kind == events.PARTICIPANT_ADMITTED:
            if self.stage == WAITING and subject_id == self.participant_id:
                await self._lobby_check()
        elif kind == events.LOBBY_CHANGED:
            if self.stage == WAITING:
                await self._lobby_check()
            elif self.stage == IN_CALL and self.role == ParticipantRole.HOST:
                await self._lobby_send()
            elif self.stage == IN_CALL:
                # Someone in the call may have been sent back (denied).
                await self._admission_check()
        elif kind == events.PARTICIPANT_REMOVED:
            if subject_id == self.participant_id and self.stage != NEW:
                await self._removed()
            elif self.stage == IN_CALL:
                await self._reply({"type": "participant.removed", "participant": {"id": subject_id}})
        elif kind == events.MEETING_CANCELLED:
            if self.stage != NEW:
                await self._finish(
                    CLOSE_ENDED,
                    {"type": "ended", "reason": "cancelled", "detail": _("This meeting has been cancelled.")},
                    reason="ended",
                )
        elif kind == calls.CALL_ENDED:
            if self.stage != NEW:
                await self._finish(
                    CLOSE_ENDED,
                    {"type": "ended", "reason": "ended", "detail": _("The host has ended this meeting.")},
                    reason="ended",
                )
        elif kind == recordings.CALL_RECORDING and self.stage == WAITING:
            # Those waiting in the lobby are told too.
            await self.send(text_data=text)
        elif self.stage == IN_CALL and isinstance(kind, str) and kind.startswith("call."):
            await self._call_event(kind, event, text)

    async def _call_event(self, kind: str, event: dict[str, Any], text: Any) -> None:
        if kind == calls.CALL_STATE:
            state: dict[str, Any] = event["state"] if isinstance(event.get("state"), dict) else {}
            is_safe_lesson = bool(state.get("is_safe_lesson"))
            if is_safe_lesson != self.is_safe_lesson:
                self.is_safe_lesson = is_safe_lesson
                await self._rules_sync(self.room_peers | self.host_peers | set(self.rules))
            may_speak = (
                self.role == ParticipantRole.HOST
                or not state.get("are_microphones_locked")
                or state.get("floor") == self.participant_id
            )
            if not may_speak and "audio" not in self.muted:
                # The host's socket mutes everyone at the worker; this one
                # closes the gap of an unmute that crossed the lock.
                self.muted = self.muted | {"audio"}
                await self._command("peer.mute", room=self.room, peer=self.peer, kinds=["audio"], muted=True)
        elif kind == calls.CALL_MUTED:
            if self.participant_id in (event.get("participants") or []):
                self.muted = self.muted | set(event.get("kinds") or [])
        elif kind == calls.CALL_PRESENCE:
            participant: dict[str, Any] = event["participant"] if isinstance(event.get("participant"), dict) else {}
            peer = participant.get("peer")
            if (
                event.get("action") == "joined"
                and participant.get("role") == ParticipantRole.HOST
                and isinstance(peer, str)
                and peer not in self.host_peers
            ):
                self.host_peers.add(peer)
                await self._rules_sync({peer})
        await self.send(text_data=text)

    async def _lobby_send(self) -> None:
        assert self.participant_id is not None
        waiting = await database_sync_to_async(calls.call_lobby_of_host)(participant_id=self.participant_id)
        if waiting is not None:
            await self._reply(
                {"type": "lobby.changed", "participants": [calls.lobby_payload(item) for item in waiting]}
            )

    async def _admission_check(self) -> None:
        assert self.participant_id is not None
        status = await database_sync_to_async(calls.participant_status)(participant_id=self.participant_id)
        if status == ParticipantStatus.REMOVED:
            await self._removed()
        elif status != ParticipantStatus.ADMITTED:
            await self._finish(
                CLOSE_REFUSED, {"type": "denied", "detail": _("The host did not let you in.")}, reason="refused"
            )

    async def _removed(self) -> None:
        await self._finish(
            CLOSE_REFUSED,
            {"type": "removed", "detail": _("The host has removed you from this meeting.")},
            reason="removed",
        )

    # --- Events of the media worker ----------------------------------------------------------------------------------

    async def media_event(self, message: dict[str, Any]) -> None:
        name = message.get("event")
        if name == "recording.finished":
            # Every socket of the call may pass the worker's report on (even
            # one closing after "end"); exactly one of them records it.
            if message.get("room") == self.room and self.participant_id is not None:
                self.is_recorded_video = False
                await database_sync_to_async(recordings.recording_finished)(
                    recording_id=message.get("recording"),
                    path=message.get("path"),
                    duration=message.get("duration"),
                    size=message.get("size"),
                )
            return
        if name in ("reply", "error"):
            pending = self.pending.pop(str(message.get("request_id")), None)
            if pending is not None:
                pending.timer.cancel()
                if not self.is_closing:
                    await self._media_reply(pending, message)
            return
        if self.is_closing or message.get("room") != self.room:
            return
        if self.stage == JOINING:
            if name == "peer.left" and message.get("peer") == self.peer:
                # The previous connection's peer, replaced by this one's join.
                return
            self.early_events.append(message)
        elif self.stage == IN_CALL:
            await self._media_room_event(message)

    async def _media_room_event(self, message: dict[str, Any]) -> None:
        name = message.get("event")
        peer = message.get("peer")
        if name == "sdp.offer":
            if peer != self.peer:
                return
            self.offer_revision = message.get("revision")
            self.has_subscribe_offer = True
            await self._reply(
                {
                    "type": "offer",
                    "revision": message.get("revision"),
                    "offer": message.get("offer"),
                    "tracks": message.get("tracks"),
                }
            )
            return
        if name == "peer.left" and peer == self.peer:
            reason = message.get("reason")
            if reason == "replaced":
                # Another connection of this participant took the peer over
                # (and the presence): leave without ending their attendance.
                self.has_left = True
                await self._reply(
                    {"type": "replaced", "detail": _("You have joined this meeting from another window or device.")}
                )
                self.stage = CLOSED
                await self._close(CLOSE_REPLACED)
            elif reason not in ("left", "room-closed"):
                await self._media_lost(None, str(reason))
            return
        if name == "room.closed":
            if message.get("reason") != "room-closed":
                await self._media_lost(None, str(message.get("reason")))
            return
        if name == "peer.joined" and isinstance(peer, str):
            if peer == self.peer:
                return
            self.room_peers.add(peer)
            await self._rules_sync({peer})
        elif name == "peer.left" and isinstance(peer, str):
            self.room_peers.discard(peer)
        if name in ("peer.joined", "peer.left", "track.published", "track.unpublished", "track.muted"):
            frame = {key: value for key, value in message.items() if key not in ("type", "event", "worker", "room")}
            await self._reply({"type": name, **frame})
