"""Writes of chats: sending with delivery guarantees, and the rules that
decide who may post. Every event goes out after commit (chats.events)."""

import contextlib
import contextvars
import datetime
import hashlib
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chats import events, extensions, selectors
from chats.models import (
    MESSAGE_MAX_LENGTH,
    Chat,
    ChatKind,
    ChatMember,
    Mention,
    Message,
    MessageKind,
    Notification,
    OfficeHours,
    ScheduledMessage,
)
from common import rows
from common.errors import ApplicationError, PermissionDenied
from common.ratelimit import rate_limit_hit_many
from organisations.selectors import contact_is_allowed

CLIENT_ID_MAX_LENGTH = 64

# True while the chat sockets' writer (chats.group_commit) writes a batch of
# sends in one transaction. A send then makes no savepoint of its own: if
# one of its writes fails, the whole batch is rolled back and written again
# send by send (with savepoints), so a savepoint per send would only cost.
_batched: contextvars.ContextVar[bool] = contextvars.ContextVar("chats_sends_batched", default=False)


@contextlib.contextmanager
def sends_batched() -> Iterator[None]:
    token = _batched.set(True)
    try:
        yield
    finally:
        _batched.reset(token)


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def body_clean(body: Any) -> str:
    """A message text: a string of 1..4000 characters once trimmed.

    Raises ApplicationError "message_empty" / "message_too_long".
    """
    if not isinstance(body, str):
        raise ApplicationError(_("The message must be text."), code="invalid", extra={"field": "body"})
    body = body.strip()
    if not body:
        raise ApplicationError(_("The message is empty."), code="message_empty", extra={"field": "body"})
    if len(body) > MESSAGE_MAX_LENGTH:
        raise ApplicationError(
            _("A message may have at most %(limit)d characters.") % {"limit": MESSAGE_MAX_LENGTH},
            code="message_too_long",
            extra={"field": "body"},
        )
    return body


def client_id_clean(client_id: Any) -> str:
    if client_id in (None, ""):
        return ""
    if not isinstance(client_id, str) or len(client_id) > CLIENT_ID_MAX_LENGTH or not client_id.isprintable():
        raise ApplicationError(
            _("client_id must be a string of at most 64 characters."), code="invalid", extra={"field": "client_id"}
        )
    return client_id


def _local_time(chat: Chat, now: datetime.datetime) -> datetime.time:
    organisation = selectors.chat_organisation(chat)
    zone = organisation.effective_time_zone if organisation is not None else "Europe/Moscow"
    return now.astimezone(zoneinfo.ZoneInfo(zone)).time()


def _is_within(start: datetime.time, end: datetime.time, moment: datetime.time) -> bool:
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end  # overnight window


def posting_check(*, member: ChatMember, now: datetime.datetime) -> None:
    """May this member post in their chat now?

    Raises PermissionDenied with a code naming the rule: "channel_read_only",
    "announcement_only", "muted", "chat_closed", "contact_not_allowed".
    """
    chat = member.chat
    is_staff = selectors.member_is_staff(member)
    if chat.kind == ChatKind.CHANNEL and not is_staff:
        raise PermissionDenied(_("Only the channel's editors post here."), code="channel_read_only")
    if chat.is_announcement_only and not is_staff:
        raise PermissionDenied(_("Only teachers post in this chat now."), code="announcement_only")
    if member.muted_until and member.muted_until > now:
        raise PermissionDenied(_("You are muted in this chat."), code="muted")
    if (
        chat.opens_at
        and chat.closes_at
        and not is_staff
        and member.user.is_safe_mode
        and not _is_within(chat.opens_at, chat.closes_at, _local_time(chat, now))
    ):
        raise PermissionDenied(
            _("The chat is closed for students until %(time)s.") % {"time": chat.opens_at.strftime("%H:%M")},
            code="chat_closed",
        )
    if chat.kind == ChatKind.DIRECT:
        other = selectors.direct_chat_other_user(chat=chat, user=member.user)
        if other is not None and other.is_safe_mode and not contact_is_allowed(actor=member.user, child=other):
            raise PermissionDenied(_("This person accepts messages only from contacts."), code="contact_not_allowed")


def _mentions_clean(*, member: ChatMember, mention_ids: Sequence[Any]) -> list[User]:
    if not isinstance(mention_ids, list | tuple) or len(mention_ids) > 50:
        raise ApplicationError(_("Invalid mentions."), code="invalid", extra={"field": "mentions"})
    if not mention_ids:
        return []
    ids = {value for value in mention_ids if isinstance(value, int) and not isinstance(value, bool)}
    if len(ids) != len(mention_ids):
        raise ApplicationError(_("Invalid mentions."), code="invalid", extra={"field": "mentions"})
    users = list(
        User.objects.filter(
            pk__in=ids, chat_memberships__chat=member.chat, chat_memberships__left_at__isnull=True
        ).distinct()
    )
    if len(users) != len(ids):
        raise ApplicationError(_("Only members of the chat can be mentioned."), code="invalid_mention")
    for user in users:
        if user.is_safe_mode and not contact_is_allowed(actor=member.user, child=user):
            raise PermissionDenied(_("This person accepts messages only from contacts."), code="contact_not_allowed")
    return users


def _office_hours_delivery(*, chat: Chat, author: User, now: datetime.datetime) -> datetime.datetime | None:
    """When a direct message to a teacher written after hours is delivered
    (None: now)."""
    if chat.kind != ChatKind.DIRECT:
        return None
    other = selectors.direct_chat_other_user(chat=chat, user=author)
    if other is None:
        return None
    hours = OfficeHours.objects.filter(user=other).first()
    if hours is None:
        return None
    if selectors.user_is_educator(user=author):
        return None  # colleagues write to each other freely
    return office_hours_next_opening(hours=hours, now=now)


def office_hours_next_opening(*, hours: OfficeHours, now: datetime.datetime) -> datetime.datetime | None:
    """None when `now` is within the hours, otherwise the next opening."""
    zone = zoneinfo.ZoneInfo(hours.time_zone)
    local = now.astimezone(zone)
    weekdays = {int(day) for day in hours.weekdays if day.isdigit()}
    if local.isoweekday() in weekdays and _is_within(hours.starts_at, hours.ends_at, local.time()):
        return None
    for days_ahead in range(0, 8):
        day = (local + datetime.timedelta(days=days_ahead)).date()
        if day.isoweekday() not in weekdays:
            continue
        opening = datetime.datetime.combine(day, hours.starts_at, tzinfo=zone)
        if opening > local:
            return opening
    return None


def message_send(
    *,
    user: User,
    chat_id: int,
    body: Any,
    client_id: Any = "",
    reply_to_seq: Any = None,
    mention_ids: Sequence[Any] = (),
    kind: str = MessageKind.TEXT,
    requires_acknowledgement: bool = False,
) -> tuple[Message | ScheduledMessage, bool]:
    """Send a message; returns (message, created).

    The message is committed with the chat's next seq before anyone hears of
    it. A resend with the same client_id and body returns the first message
    (created False); with another body it raises ApplicationError
    "client_id_conflict". A message to a teacher after their office hours is
    held (a ScheduledMessage) and delivered at the next opening.

    Raises NotFound (not a member), PermissionDenied (a posting rule) and
    ApplicationError (invalid input).
    """
    text = body_clean(body)
    client_id = client_id_clean(client_id)
    now = timezone.now()
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    if client_id:
        existing = _sent_by_client_id(chat=member.chat, user=user, client_id=client_id, text=text)
        if existing is not None:
            return existing, False
    posting_check(member=member, now=now)
    mentioned = _mentions_clean(member=member, mention_ids=list(mention_ids or []))
    reply_to = None
    if reply_to_seq is not None:
        if not isinstance(reply_to_seq, int) or isinstance(reply_to_seq, bool):
            raise ApplicationError(_("reply_to must be a message's seq."), code="invalid", extra={"field": "reply_to"})
        reply_to = Message.objects.filter(chat_id=chat_id, seq=reply_to_seq).first()
        if reply_to is None:
            raise ApplicationError(_("The message replied to does not exist."), code="invalid_reply")
    deliver_at = _office_hours_delivery(chat=member.chat, author=user, now=now)
    try:
        with transaction.atomic(savepoint=not _batched.get()):
            if deliver_at is not None:
                scheduled = ScheduledMessage.objects.create(
                    chat=member.chat,
                    author=user,
                    client_id=client_id,
                    body=text,
                    body_hash=body_hash(text),
                    reply_to=reply_to,
                    deliver_at=deliver_at,
                )
                return scheduled, True
            message = _message_create(
                chat=member.chat,
                author=user,
                text=text,
                client_id=client_id,
                reply_to=reply_to,
                kind=kind,
                requires_acknowledgement=requires_acknowledgement,
                mentioned=mentioned,
            )
    except IntegrityError:
        # A parallel resend with the same client_id won the race.
        if not client_id:
            raise
        existing = _sent_by_client_id(chat=member.chat, user=user, client_id=client_id, text=text)
        if existing is None:
            raise
        return existing, False
    return message, True


def _sent_by_client_id(*, chat: Chat, user: User, client_id: str, text: str) -> Message | ScheduledMessage | None:
    """What this client id already sent: the message, or the held message
    not yet delivered (held messages exist in direct chats only).

    Raises ApplicationError "client_id_conflict" when it was another text.
    The first look is a bare (id, hash) query: it runs on every send and
    almost always finds nothing.
    """
    found = _client_id_sent(chat_id=chat.pk, author_id=user.pk, client_id=client_id)
    model: type[Message] | type[ScheduledMessage] = Message
    if not found and chat.kind == ChatKind.DIRECT:
        model = ScheduledMessage
        found = list(
            ScheduledMessage.objects.filter(
                chat_id=chat.pk, author=user, client_id=client_id, delivered_message__isnull=True
            ).values_list("pk", "body_hash")[:1]
        )
    if not found:
        return None
    pk, hash_found = found[0]
    if hash_found != body_hash(text):
        raise ApplicationError(_("This client_id was already used for a different message."), code="client_id_conflict")
    if model is Message:
        return Message.objects.select_related("author", "reply_to").get(pk=pk)
    return ScheduledMessage.objects.get(pk=pk)


def message_send_rate_check(*, user: User) -> None:
    """Count one message towards the sender's budget (settings
    CHAT_SEND_RATE, "30/minute" by default), shared by every interface.

    Raises RateLimited with the seconds to wait.
    """
    [check] = message_send_rate_checks([user.pk])
    check()


def message_send_rate_checks(user_ids: Sequence[int]) -> list[Callable[[], None]]:
    """message_send_rate_check for several sends at once, in one round trip
    to Redis, on the same budgets: a check per send, raising RateLimited
    where it is called."""
    rate = getattr(settings, "CHAT_SEND_RATE", "30/minute")
    return rate_limit_hit_many([("chat_send", str(user_id), rate) for user_id in user_ids])


def _message_create(
    *,
    chat: Chat,
    author: User | None,
    text: str,
    client_id: str = "",
    reply_to: Message | None = None,
    kind: str = MessageKind.TEXT,
    requires_acknowledgement: bool = False,
    mentioned: Sequence[User] = (),
    buttons: list[list[dict[str, str]]] | None = None,
) -> Message:
    """Inside a transaction: take the chat's next seq (the row update
    serialises writers of one chat), store the message, its mentions and
    their notifications, and publish it after commit. `buttons` are a bot's
    inline buttons, already checked by bots.services."""
    seq = _next_seq(chat_id=chat.pk)
    message = rows.insert(
        Message(
            chat=chat,
            seq=seq,
            author=author,
            kind=kind,
            client_id=client_id,
            body=text,
            body_hash=body_hash(text),
            reply_to=reply_to,
            requires_acknowledgement=requires_acknowledgement,
            buttons=buttons or [],
        )
    )
    if author is not None:
        _author_read_mark(chat_id=chat.pk, author_id=author.pk, seq=seq)
    if mentioned:
        Mention.objects.bulk_create([Mention(message=message, user=user) for user in mentioned])
        Notification.objects.bulk_create(
            [
                Notification(user=user, kind=Notification.Kind.MENTION, chat=chat, message=message)
                for user in mentioned
                if user.pk != getattr(author, "pk", None)
            ]
        )
    chat.last_seq = seq
    events.event_publish(chat=chat, event={"type": "message", "message": events.message_payload(message)})
    extensions.message_created(message)
    return message


# The three statements below run for every message sent. Written in SQL:
# building them with the ORM cost more CPU than running them (about a third
# of a send), and the send path bounds how many messages a daphne process
# takes per second. Table and column names come from the models' meta.


def _client_id_sent(*, chat_id: int, author_id: int, client_id: str) -> list[tuple[int, str]]:
    """(id, body hash) of the message this author sent with this client id."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, body_hash FROM {table} WHERE chat_id = %s AND author_id = %s AND client_id = %s"  # noqa: S608 - names from the model's meta
            # The unique index on (chat, author, client_id) is partial (WHERE
            # NOT client_id = ''): only with its condition spelled out do
            # SQLite (and PostgreSQL's generic plans) use it instead of
            # scanning every message of the chat.
            " AND NOT (client_id = '') LIMIT 1",
            [chat_id, author_id, client_id],
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _next_seq(*, chat_id: int) -> int:
    """Take the chat's next seq. The row update serialises the writers of one
    chat until the transaction ends; RETURNING (PostgreSQL, SQLite 3.35+)
    reads it back in the same statement."""
    table = Chat._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1, updated_at = %s WHERE id = %s RETURNING last_seq",  # noqa: S608 - names from the model's meta
            [connection.ops.adapt_datetimefield_value(timezone.now()), chat_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise Chat.DoesNotExist
    return int(row[0])


def _author_read_mark(*, chat_id: int, author_id: int, seq: int) -> None:
    """The author has read what they sent."""
    table = ChatMember._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_read_seq = %s WHERE chat_id = %s AND user_id = %s AND left_at IS NULL",  # noqa: S608 - names from the model's meta
            [seq, chat_id, author_id],
        )


def scheduled_messages_deliver(*, now: datetime.datetime | None = None, batch_size: int = 500) -> int:
    """Deliver held messages whose time has come (Celery beat, every minute);
    returns how many were delivered.

    Exactly once, even with two workers at it: each is taken under a row
    lock (skipped by the other worker, SKIP LOCKED) in its own transaction,
    and re-checked inside it. A message whose author may no longer post
    there (left the chat, lost the contact with a child) is cancelled, not
    delivered.
    """
    now = now or timezone.now()
    due = list(
        ScheduledMessage.objects.filter(deliver_at__lte=now, delivered_message__isnull=True, cancelled_at__isnull=True)
        .order_by("deliver_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    delivered = 0
    for pk in due:
        with transaction.atomic():
            scheduled = (
                ScheduledMessage.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("chat", "chat__organisation", "author")
                .filter(pk=pk, delivered_message__isnull=True, cancelled_at__isnull=True)
                .first()
            )
            if scheduled is None:
                continue
            if not _may_still_post(scheduled=scheduled, now=now):
                scheduled.cancelled_at = now
                scheduled.save(update_fields=["cancelled_at"])
                continue
            message = _message_create(
                chat=scheduled.chat,
                author=scheduled.author,
                text=scheduled.body,
                client_id=scheduled.client_id,
                reply_to=scheduled.reply_to,
            )
            scheduled.delivered_message = message
            scheduled.save(update_fields=["delivered_message"])
            delivered += 1
    return delivered


def _may_still_post(*, scheduled: ScheduledMessage, now: datetime.datetime) -> bool:
    member = (
        ChatMember.objects.active()
        .select_related("chat", "chat__organisation", "user")
        .filter(chat_id=scheduled.chat_id, user_id=scheduled.author_id, chat__is_archived=False)
        .first()
    )
    if member is None or not member.user.is_active:
        return False
    try:
        posting_check(member=member, now=now)
    except PermissionDenied:
        return False
    return True


def message_system_post(*, chat: Chat, text: str) -> Message:
    """A message from the system (no author), e.g. "the chat was migrated"."""
    with transaction.atomic():
        return _message_create(chat=chat, author=None, text=text, kind=MessageKind.SYSTEM)
