"""The chat WebSocket: one socket per client for all its chats (docs/protocol.md,
"Chat WebSocket", is the contract; keep the two in step).

The consumer is an interface: it parses frames, calls the services and
selectors (which check membership on every action), and shapes answers.
Events come from the process's real-time Hub (common.realtime), already
serialised once per chat (chats.events), and are written as they are, never
re-serialised per socket. A socket handles one frame or control event at a
time, and live frames that arrive meanwhile wait for it ("held"), so the
frames a "sync" produces leave before any live event that arrived meanwhile.
"""

import asyncio
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, TypeVar

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.cache import cache
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.authentication import token_key_hash
from accounts.events import user_group_name
from accounts.models import User
from chats import events, selectors
from chats.group_commit import group_commit
from chats.models import Chat, ScheduledMessage
from chats.services import channels as channel_services
from chats.services import chats as chat_services
from chats.services import content, moderation
from chats.services.messages import posting_check
from chats.ws_auth import AUTH_SESSION, AUTH_TOKEN, scope_header, user_by_token
from chats.ws_server import FRAME_MAX_BYTES
from common import realtime
from common.errors import ApplicationError, NotFound

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Close codes (docs/protocol.md).
CLOSE_UNAUTHENTICATED = 4001  # no, bad or revoked credentials
CLOSE_POLICY = 4008  # sustained flooding
CLOSE_TOO_BIG = 1009  # a frame over FRAME_MAX_BYTES
# Daphne refuses frames over FRAME_MAX_BYTES itself with 1009 (chats.ws_server);
# the consumer's own check is for other servers, and a server that will not
# send 1009 from the application gets this code instead.
CLOSE_TOO_BIG_FALLBACK = 4009
JSON_MAX_DEPTH = 20
AUTH_TIMEOUT_SECONDS = 10
RATE_PER_SECOND = 10.0
RATE_BURST = 30
# Throttled frames are counted and one is forgotten per second; past this
# the client is not a client but a flood and the socket is closed (4008).
THROTTLED_MAX = 200
SYNC_BATCH = 200  # at most this many missed messages per chat, then "resync"
SYNC_MAX_CHATS = 100
TYPING_INTERVAL_SECONDS = 3
REF_MAX_LENGTH = 64

# Frames of the person's topic that change the socket itself; they are
# handled in the socket's turn, after what it is doing.
CONTROL_PREFIXES = (
    '{"type":"session.revoked"',
    '{"type":"token.revoked"',
    '{"type":"chat.joined"',
    '{"type":"chat.left"',
    '{"type":"chat.archived"',
)

LIMITS = {
    "frame_max_bytes": FRAME_MAX_BYTES,
    "json_max_depth": JSON_MAX_DEPTH,
    "auth_timeout_seconds": AUTH_TIMEOUT_SECONDS,
    "frames_per_second": RATE_PER_SECOND,
    "frames_burst": RATE_BURST,
    "throttled_max": THROTTLED_MAX,
    "sync_batch": SYNC_BATCH,
    "sync_max_chats": SYNC_MAX_CHATS,
    "typing_interval_seconds": TYPING_INTERVAL_SECONDS,
    "body_max_chars": 4000,
}


def frame_text(frame: dict[str, Any]) -> str:
    """A server frame as it goes on the wire (the same encoding as
    chats.events)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Is `value` nested deeper than `limit`? Iterative: no recursion for a
    client to exhaust."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def frame_parse(text: str) -> dict[str, Any] | None:
    """A client frame: a JSON object nested at most JSON_MAX_DEPTH deep, or
    None. The C parser gives up on absurd nesting with RecursionError before
    the depth check; the bracket count spares the walk for ordinary frames."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    if text.count("[") + text.count("{") > JSON_MAX_DEPTH and json_depth_exceeds(value, JSON_MAX_DEPTH):
        return None
    return value


# The bucket's clock (a name of its own so that tests can move time).
clock = time.monotonic


def _handshake_forget(scope: Any) -> None:
    """Empty the handshake's headers and cookies once read: every layer of
    the stack (daphne's, the origin check's, the router's copy) keeps the
    scope for the life of the socket, and they were most of an idle
    socket's own memory."""
    for key in ("headers", "cookies"):
        value = scope.get(key)
        if isinstance(value, list | dict):
            value.clear()


def is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


class FrameBucket:
    """A token bucket of frames per socket, plus the count of throttled
    frames that decides when to give up on the socket."""

    __slots__ = ("throttled", "tokens", "updated")

    def __init__(self) -> None:
        self.tokens = float(RATE_BURST)
        self.throttled = 0.0
        self.updated = clock()

    def take(self) -> bool:
        now = clock()
        elapsed = now - self.updated
        self.updated = now
        self.tokens = min(float(RATE_BURST), self.tokens + elapsed * RATE_PER_SECOND)
        self.throttled = max(0.0, self.throttled - elapsed)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.throttled += 1.0
        return False

    @property
    def is_flooding(self) -> bool:
        return self.throttled > THROTTLED_MAX


class FrameError(Exception):
    """A refusal of one frame that is not the services' (bad fields)."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


def _field_invalid(field: str) -> FrameError:
    return FrameError("invalid", _("Invalid value of “%(field)s”.") % {"field": field}, field=field)


class _Handshake:
    """What Django's language negotiation reads of a request."""

    def __init__(self, scope: Any) -> None:
        self.COOKIES = scope.get("cookies") or {}
        accept_language = scope_header(scope, b"accept-language") or b""
        self.META = {"HTTP_ACCEPT_LANGUAGE": accept_language.decode("latin1")}


def scope_language(scope: Any) -> str:
    """The language of error details: the language cookie, then
    Accept-Language of the handshake, then Russian (like the REST API)."""
    return translation.get_language_from_request(_Handshake(scope))  # type: ignore[arg-type]


def _chat_positions(chat_ids: list[int]) -> dict[int, int]:
    """The newest seq of each chat."""
    return dict(Chat.objects.filter(pk__in=chat_ids).values_list("pk", "last_seq"))


def _connect_snapshot(user: User) -> list[int]:
    return selectors.chat_ids_of_user(user=user)


def _credentials_hold(*, user: User, auth_method: str | None, token: str | None, generation: int) -> bool:
    """Are the credentials the socket was opened with still good? Called once
    the socket listens for "session.revoked", so that a logout between the
    handshake and then is not missed."""
    if auth_method == AUTH_TOKEN:
        current = user_by_token(token)
        return current is not None and current.pk == user.pk
    return User.objects.filter(pk=user.pk, is_active=True, session_generation=generation).exists()


def _sync_plan(user: User, wanted: dict[int, int]) -> tuple[list[int], dict[int, int]]:
    """The chats of `wanted` the user is (still) in, and their newest seq."""
    member_of = set(selectors.chat_ids_of_user(user=user))
    allowed = [chat_id for chat_id in wanted if chat_id in member_of]
    return allowed, _chat_positions(allowed)


def _missed_messages(user: User, chat_id: int, after_seq: int, last_seq: int) -> list[str]:
    """The "message" frames of seqs after_seq+1..last_seq, with what the REST
    history adds (attachments, reactions, poll): the events that changed
    them were missed too."""
    missed = [
        message
        for message in selectors.messages_after(chat_id=chat_id, after_seq=after_seq, limit=last_seq - after_seq)
        if message.seq <= last_seq
    ]
    extras = content.messages_content(user=user, messages_shown=missed)
    return [
        frame_text({"type": "message", "message": {**events.message_payload(message), **extras[message.pk]}})
        for message in missed
    ]


def _is_member(user: User, chat_id: int) -> bool:
    try:
        selectors.chat_member_get(user=user, chat_id=chat_id)
    except NotFound:
        return False
    return True


def _send(*, user: User, frame: dict[str, Any], chat_id: int) -> dict[str, Any]:
    message, created = content.message_send_with_attachments(
        user=user,
        chat_id=chat_id,
        body=frame.get("body"),
        attachment_ids=frame.get("attachments", []),
        client_id=frame.get("client_id"),
        reply_to_seq=frame.get("reply_to"),
        mention_ids=frame.get("mentions") or (),
    )
    if isinstance(message, ScheduledMessage):
        return {
            "chat": chat_id,
            "seq": None,
            "client_id": message.client_id or None,
            "status": "scheduled",
            "deliver_at": message.deliver_at.isoformat(),
        }
    return {
        "chat": chat_id,
        "seq": message.seq,
        "client_id": message.client_id or None,
        "status": "sent" if created else "duplicate",
        "message": message.pk,
    }


def _typing_allowed(*, user: User, chat_id: int) -> bool:
    """Membership and posting rules (a reader of a channel has no business
    announcing that they type), then one typing event per chat and person
    every TYPING_INTERVAL_SECONDS across all their sockets."""
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    posting_check(member=member, now=timezone.now())
    return bool(cache.add(f"chats:typing:{chat_id}:{user.pk}", 1, timeout=TYPING_INTERVAL_SECONDS))


class ChatConsumer(AsyncWebsocketConsumer):
    """`/ws/`: every chat of the signed-in person over one socket."""

    # No channel layer: events come through the process's Hub (see the
    # module docstring of common.realtime for why).
    channel_layer_alias = "none: events come from common.realtime"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__ for a consumer without a channel
        layer, without its `await_many_dispatch`: for a single source of
        messages that keeps a task and a future alive per idle socket, and
        a loop awaiting receive() does the same with neither."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections` hop to the
        database thread before every frame: every database call here goes
        through database_sync_to_async, which closes stale connections in
        that thread anyway."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError("No handler for message type " + str(message["type"]))
        await handler(message)

    async def connect(self) -> None:
        self.hub = realtime.hub()
        self.held: deque[str] | None = None
        self.holders = 0
        self.turn: asyncio.Lock | None = None
        # Made when first needed: most sockets never use them, and an idle
        # socket's memory is measured (bench/bench_chats.py).
        self.background: set[asyncio.Future[None]] | None = None
        self.user: User | None = None
        self.token: str | None = None
        self.chat_ids: set[int] = set()
        self.bucket: FrameBucket | None = None
        self.is_closing = False
        self.typing_sent: dict[int, float] | None = None
        self.auth_timer: asyncio.Task[None] | None = None
        self.language = scope_language(self.scope)
        _handshake_forget(self.scope)
        await self.accept()
        if self.scope.get("auth_failed"):
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            self.token = self.scope.get("auth_token")
            auth_method = self.scope.get("auth_method") or AUTH_SESSION
            with translation.override(self.language):
                await self._exclusive(lambda: self._start(user, auth_method))
        else:
            self.auth_timer = asyncio.ensure_future(self._auth_deadline())

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(AUTH_TIMEOUT_SECONDS)
        if self.user is None:
            await self._close(CLOSE_UNAUTHENTICATED)

    async def _start(self, user: User, auth_method: str) -> None:
        """Listen to the person's and their chats' topics, make sure the
        credentials still hold, then say hello."""
        self.user = user
        self.auth_method = auth_method
        self.generation = user.session_generation
        await self.hub.join(self, [user_group_name(user.pk)])
        await self._hello()

    async def _hello(self) -> None:
        """(Re)read the person's chats, check the credentials, send "hello".
        Sent again after the server lost its Redis connection: frames may
        have been lost, and the client catches up from "hello"."""
        user = self.user
        assert user is not None
        chat_ids = await database_sync_to_async(_connect_snapshot)(user)
        for chat_id in self.chat_ids - set(chat_ids):
            await self._chat_leave(chat_id)
        await self._chats_join(chat_ids)
        holds = await database_sync_to_async(_credentials_hold)(
            user=user, auth_method=self.auth_method, token=self.token, generation=self.generation
        )
        if not holds:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        # Read after joining the topics: a message committed later arrives live.
        positions = await database_sync_to_async(_chat_positions)(sorted(self.chat_ids))
        await self._reply(
            {
                "type": "hello",
                "user": {"id": user.pk, "display_name": str(user.display_name)},
                "chats": [
                    {"chat": chat_id, "last_seq": positions.get(chat_id, 0)} for chat_id in sorted(self.chat_ids)
                ],
                "limits": LIMITS,
            }
        )

    async def _chats_join(self, chat_ids: list[int]) -> None:
        new = [chat_id for chat_id in chat_ids if chat_id not in self.chat_ids]
        self.chat_ids.update(new)
        if new:
            await self.hub.join(self, [events.chat_group_name(chat_id) for chat_id in new])

    async def _chat_leave(self, chat_id: int) -> None:
        if chat_id not in self.chat_ids:
            return
        self.chat_ids.discard(chat_id)
        await self.hub.leave(self, [events.chat_group_name(chat_id)])

    async def disconnect(self, code: int) -> None:
        self.is_closing = True
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        for task in self.background or ():
            task.cancel()
        if self.user is not None:
            topics = [user_group_name(self.user.pk), *(events.chat_group_name(chat_id) for chat_id in self.chat_ids)]
            self.chat_ids = set()
            await self.hub.leave(self, topics)

    # --- The socket's turn -----------------------------------------------------------------------------------

    async def _exclusive(self, work: Callable[[], Awaitable[None]] | None) -> None:
        """Run `work` in the socket's turn: live frames arriving meanwhile are
        held, and sent (in order) when the last waiting turn ends."""
        self.holders += 1
        if self.held is None:
            self.held = deque()
        try:
            if self.turn is None:
                self.turn = asyncio.Lock()
            async with self.turn:
                try:
                    if work is not None:
                        await work()
                finally:
                    if self.holders == 1:
                        await self._release()
        finally:
            self.holders -= 1
            if self.holders == 0:
                # Nobody holds or waits for the turn: an idle socket keeps
                # neither the queue nor the lock.
                self.held = None
                self.turn = None

    async def _release(self) -> None:
        held = self.held
        while held:
            try:
                await self._event(held.popleft())
            except Exception:
                logger.exception("chat socket event failed")

    def _in_background(self, work: Callable[[], Awaitable[None]] | None) -> None:
        task = asyncio.ensure_future(self._exclusive(work))
        if self.background is None:
            self.background = set()
        self.background.add(task)
        task.add_done_callback(self.background.discard)

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

    async def _reply(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=frame_text(frame))

    async def _error(self, ref: Any, code: str, detail: str, **extra: Any) -> None:
        await self._reply({"type": "error", "ref": ref, "code": code, "detail": detail, **extra})

    # --- Frames from the client ------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.is_closing:
            return
        with translation.override(self.language):
            await self._exclusive(lambda: self._receive(text_data, bytes_data))

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        size = len(bytes_data) if bytes_data is not None else len(text_data or "")
        if size > FRAME_MAX_BYTES or (
            text_data is not None and size * 4 > FRAME_MAX_BYTES and len(text_data.encode()) > FRAME_MAX_BYTES
        ):
            await self._close(CLOSE_TOO_BIG)
            return
        if self.bucket is None:
            self.bucket = FrameBucket()
        if not self.bucket.take():
            if self.bucket.is_flooding:
                await self._close(CLOSE_POLICY)
                return
            await self._error(None, "throttled", _("Too many frames; slow down."))
            return
        frame = frame_parse(text_data) if text_data is not None else None
        if frame is None:
            if self.user is None:
                await self._close(CLOSE_UNAUTHENTICATED)
                return
            await self._error(None, "invalid_frame", _("A frame must be a JSON object of at most 20 levels."))
            return
        if self.user is None:
            await self._authenticate(frame)
            return
        ref = frame.get("ref")
        if ref is not None and not ((isinstance(ref, str) and len(ref) <= REF_MAX_LENGTH) or (is_id(ref) or ref == 0)):
            await self._error(None, "invalid_frame", _("ref must be a short string or a number."))
            return
        kind = frame.get("type")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._error(ref, "unknown_type", _("Unknown frame type."))
            return
        try:
            await handler(self, frame, ref)
        except FrameError as error:
            await self._error(ref, error.code, error.detail, **error.extra)
        except NotFound as error:
            detail = _("Not found.") if error.message == "Not found." else error.message
            await self._error(ref, error.code, detail, **self._chat_of(frame))
        except ApplicationError as error:
            extra = {**error.extra, **self._chat_of(frame)}
            if error.retry_after is not None:
                extra["retry_after"] = error.retry_after
            await self._error(ref, error.code, error.message, **extra)
        except Exception:
            logger.exception("chat socket frame failed")
            await self._error(ref, "server_error", _("The server failed; try again."))

    @staticmethod
    def _chat_of(frame: dict[str, Any]) -> dict[str, Any]:
        chat = frame.get("chat")
        return {"chat": chat} if is_id(chat) else {}

    async def _authenticate(self, frame: dict[str, Any]) -> None:
        """The first frame of a socket opened without credentials."""
        if frame.get("type") != "auth":
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        user = await database_sync_to_async(user_by_token)(frame.get("token"))
        if user is None or self.is_closing:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        if self.auth_timer is not None:
            self.auth_timer.cancel()
            self.auth_timer = None
        self.token = frame["token"]
        await self._start(user, AUTH_TOKEN)

    async def frame_auth(self, frame: dict[str, Any], ref: Any) -> None:
        raise FrameError("already_authenticated", _("This socket is already signed in."))

    async def frame_ping(self, frame: dict[str, Any], ref: Any) -> None:
        await self._reply({"type": "pong", "ref": ref})

    async def frame_send(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id = self._chat_id(frame)
        assert self.user is not None
        write = functools.partial(_send, user=self.user, frame=frame, chat_id=chat_id)
        answer = await self._in_chat(chat_id, group_commit().write(chat_id, write, sender_id=self.user.pk))
        await self._reply({"type": "ack", "ref": ref, **answer})

    async def frame_sync(self, frame: dict[str, Any], ref: Any) -> None:
        chats = frame.get("chats")
        if not isinstance(chats, dict) or len(chats) > SYNC_MAX_CHATS:
            raise _field_invalid("chats")
        wanted: dict[int, int] = {}
        for key, value in chats.items():
            chat_id = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) < 19 else 0
            if not is_id(chat_id) or not (is_id(value) or value == 0):
                raise _field_invalid("chats")
            wanted[chat_id] = value
        allowed, positions = await database_sync_to_async(_sync_plan)(self.user, wanted)
        # A chat joined while the "chat.joined" event was lost: listen now.
        await self._chats_join(allowed)
        for chat_id, after_seq in wanted.items():
            if chat_id not in positions or chat_id not in allowed:
                await self._chat_leave(chat_id)
                await self._error(ref, "not_found", _("Not found."), chat=chat_id)
                continue
            last_seq = positions[chat_id]
            if after_seq > last_seq or last_seq - after_seq > SYNC_BATCH:
                await self._reply({"type": "resync", "ref": ref, "chat": chat_id, "last_seq": last_seq})
                continue
            if last_seq > after_seq:
                for text in await database_sync_to_async(_missed_messages)(self.user, chat_id, after_seq, last_seq):
                    await self.send(text_data=text)
            await self._reply({"type": "synced", "ref": ref, "chat": chat_id, "last_seq": last_seq})

    async def frame_typing(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id = self._chat_id(frame)
        now = time.monotonic()
        sent = self.typing_sent if self.typing_sent is not None else {}
        if now - sent.get(chat_id, -TYPING_INTERVAL_SECONDS) < TYPING_INTERVAL_SECONDS:
            return
        sent[chat_id] = now
        self.typing_sent = sent if len(sent) <= 64 else {chat_id: now}
        if not await self._call(chat_id, _typing_allowed, user=self.user):
            return
        user = self.user
        assert user is not None
        text = frame_text(
            {"type": "typing", "chat": chat_id, "user": {"id": user.pk, "display_name": str(user.display_name)}}
        )
        try:
            await self.hub.publish(events.chat_group_name(chat_id), text, skip=self)
        except Exception:
            logger.warning("typing not published (Redis unavailable)")

    async def frame_read(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id = self._chat_id(frame)
        seq = frame.get("seq")
        if not (is_id(seq) or seq == 0):
            raise _field_invalid("seq")
        position, last_seq = await self._call(chat_id, chat_services.chat_read_mark, user=self.user, seq=seq)
        await self._reply({"type": "ack", "ref": ref, "chat": chat_id, "seq": position, "last_seq": last_seq})

    async def frame_edit(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id, seq = self._chat_id(frame), self._seq(frame)
        await self._call(chat_id, content.message_edit, user=self.user, seq=seq, body=frame.get("body"))
        await self._reply({"type": "ack", "ref": ref, "chat": chat_id, "seq": seq})

    async def frame_delete(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id, seq = self._chat_id(frame), self._seq(frame)
        await self._call(chat_id, moderation.message_delete, actor=self.user, seq=seq)
        await self._reply({"type": "ack", "ref": ref, "chat": chat_id, "seq": seq})

    async def frame_react(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id, seq = self._chat_id(frame), self._seq(frame)
        added, counts = await self._call(
            chat_id, content.reaction_toggle, user=self.user, seq=seq, emoji=frame.get("emoji")
        )
        await self._reply({"type": "ack", "ref": ref, "chat": chat_id, "seq": seq, "added": added, "reactions": counts})

    async def frame_acknowledge(self, frame: dict[str, Any], ref: Any) -> None:
        chat_id, seq = self._chat_id(frame), self._seq(frame)
        _acknowledgement, created = await self._call(
            chat_id, channel_services.acknowledgement_create, user=self.user, seq=seq
        )
        await self._reply(
            {
                "type": "ack",
                "ref": ref,
                "chat": chat_id,
                "seq": seq,
                "status": "acknowledged" if created else "duplicate",
            }
        )

    async def _call(self, chat_id: int, service: Callable[..., Any], **arguments: Any) -> Any:
        """Run a service of one chat in the database thread; a chat the
        person is no longer in stops being listened to."""
        return await self._in_chat(chat_id, database_sync_to_async(service)(chat_id=chat_id, **arguments))

    async def _in_chat(self, chat_id: int, work: Awaitable[T]) -> T:
        """`work` on one chat; a chat the person is no longer in stops being
        listened to."""
        try:
            return await work
        except NotFound:
            if not await database_sync_to_async(_is_member)(self.user, chat_id):
                await self._chat_leave(chat_id)
            raise

    @staticmethod
    def _chat_id(frame: dict[str, Any]) -> int:
        chat_id = frame.get("chat")
        if not is_id(chat_id):
            raise _field_invalid("chat")
        return int(chat_id)

    @staticmethod
    def _seq(frame: dict[str, Any]) -> int:
        seq = frame.get("seq")
        if not is_id(seq):
            raise _field_invalid("seq")
        return int(seq)

    handlers: dict[str, Callable[["ChatConsumer", dict[str, Any], Any], Awaitable[None]]] = {
        "auth": frame_auth,
        "ping": frame_ping,
        "send": frame_send,
        "sync": frame_sync,
        "typing": frame_typing,
        "read": frame_read,
        "edit": frame_edit,
        "delete": frame_delete,
        "react": frame_react,
        "acknowledge": frame_acknowledge,
    }

    # --- Events from the Hub ---------------------------------------------------------------------------------

    async def realtime_deliver(self, text: str) -> None:
        """A frame of one of the socket's topics, as published (common.realtime).
        Written at once unless the socket is in a turn; a frame that changes
        the socket waits for a turn of its own."""
        if self.is_closing:
            return
        if self.held is not None:
            self.held.append(text)
        elif text.startswith(CONTROL_PREFIXES):
            self.held = deque([text])
            self._in_background(None)
        else:
            await self.base_send({"type": "websocket.send", "text": text})

    async def realtime_resumed(self) -> None:
        """The Hub lost Redis for a while: frames (a logout too) may be lost.
        Check again and say "hello" again so that the client catches up."""
        if self.user is not None and not self.is_closing:
            self._in_background(self._hello_again)

    async def _hello_again(self) -> None:
        with translation.override(self.language):
            await self._hello()

    async def _event(self, text: str) -> None:
        """A held frame, in the socket's turn."""
        if self.is_closing:
            return
        if text.startswith('{"type":"session.revoked"'):
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        if text.startswith('{"type":"token.revoked"'):
            # One device signed out: only the sockets opened with its token close.
            if self.token and json.loads(text).get("key_hash") == token_key_hash(self.token):
                await self._close(CLOSE_UNAUTHENTICATED)
            return
        if text.startswith(('{"type":"chat.joined"', '{"type":"chat.left"')):
            payload = json.loads(text)
            chat = payload.get("chat")
            chat_id = chat.get("id") if isinstance(chat, dict) else chat
            if is_id(chat_id) and payload.get("type") == "chat.joined":
                await self._chats_join([chat_id])
            elif is_id(chat_id) and payload.get("type") == "chat.left":
                await self._chat_leave(chat_id)
        await self.send(text_data=text)
        if text.startswith('{"type":"chat.archived"'):
            chat_id = json.loads(text).get("chat")
            if is_id(chat_id):
                await self._chat_leave(chat_id)
