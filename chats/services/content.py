"""What happens to messages after they are sent: edits with their history,
reactions, pins, teachers' polls and attachments (deleting and the read
position live in moderation.message_delete and chats.chat_read_mark).

Every action enters through `selectors.chat_member_get` (a chat one is not
in answers like one that does not exist), changes the database in one
transaction and tells the chat's sockets only after commit. A refusal
raises before anything is written.
"""

import datetime
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chats import events, files, selectors
from chats.models import (
    Attachment,
    ChatKind,
    ChatMember,
    Message,
    MessageKind,
    MessageRevision,
    Notification,
    Pin,
    Poll,
    PollOption,
    PollVote,
    Reaction,
    ScheduledMessage,
)
from chats.services import messages
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.ratelimit import rate_limit_hit
from organisations.selectors import contact_is_allowed

EDIT_WINDOW = datetime.timedelta(hours=48)
REVISIONS_MAX = 100
# The reactions on offer, in the order they are shown. Variation selectors
# (U+FE0F) are optional on input: "❤" and "❤️" are the same reaction.
REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🙏", "👏", "🔥", "✅")
_REACTION_BY_BARE = {emoji.replace("\ufe0f", ""): emoji for emoji in REACTIONS}
PINS_MAX = 50
POLL_QUESTION_MAX_LENGTH = 300
POLL_OPTION_MAX_LENGTH = 200
POLL_OPTIONS_MIN = 2
POLL_OPTIONS_MAX = 10
ATTACHMENTS_PER_MESSAGE_MAX = 10
ATTACHMENT_MAX_BYTES_DEFAULT = 20 * 1024 * 1024
ATTACHMENT_UPLOAD_RATE_DEFAULT = "60/hour"
UNBOUND_ATTACHMENT_LIFETIME = datetime.timedelta(days=1)


def _not_found() -> NotFound:
    return selectors.chat_not_found()


def _id_list(value: Any, *, field: str, maximum: int) -> list[int]:
    """A list of distinct integer ids (no booleans), at most `maximum`."""
    if not isinstance(value, list | tuple) or len(value) > maximum:
        raise ApplicationError(_("Invalid list of ids."), code="invalid", extra={"field": field})
    ids = [item for item in value if isinstance(item, int) and not isinstance(item, bool)]
    if len(ids) != len(value) or len(set(ids)) != len(ids):
        raise ApplicationError(_("Invalid list of ids."), code="invalid", extra={"field": field})
    return ids


def _message_for_update(*, chat_id: int, seq: int) -> Message:
    """The chat's message with this seq, locked until the transaction ends."""
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("author", "reply_to")
        .filter(chat_id=chat_id, seq=seq)
        .first()
    )
    if message is None:
        raise _not_found()
    return message


def _refuse_deleted(message: Message) -> None:
    if message.deleted_at is not None:
        raise ApplicationError(_("The message was deleted."), code="message_deleted")


def _contact_check(member: ChatMember) -> None:
    """Safe mode reaches into existing direct chats: a child in safe mode
    hears only from contacts, reactions included."""
    if member.chat.kind != ChatKind.DIRECT:
        return
    other = selectors.direct_chat_other_user(chat=member.chat, user=member.user)
    if other is not None and other.is_safe_mode and not contact_is_allowed(actor=member.user, child=other):
        raise PermissionDenied(_("This person accepts messages only from contacts."), code="contact_not_allowed")


def message_payload_full(message: Message) -> dict[str, Any]:
    """`events.message_payload` with the message's attachments."""
    payload = events.message_payload(message)
    payload["attachments"] = (
        [] if message.deleted_at is not None else [attachment_payload(a) for a in message.attachments.all()]
    )
    return payload


# --- Edit -------------------------------------------------------------


def message_edit(*, user: User, chat_id: int, seq: int, body: Any) -> Message:
    """Change the text of one's own message within EDIT_WINDOW of sending.

    The previous text is kept as a MessageRevision and the message is marked
    edited. The same text again changes nothing.

    Raises NotFound (not a member, no such message), PermissionDenied
    "not_author" / "edit_window_passed" / a posting rule of
    `messages.posting_check`, ApplicationError "message_deleted" /
    "message_not_editable" / "too_many_edits" / "message_too_long" /
    "message_empty". Publishes {"type": "message.updated", "message"} after
    commit.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    now = timezone.now()
    with transaction.atomic():
        message = _message_for_update(chat_id=chat_id, seq=seq)
        if message.author_id != user.pk:
            raise PermissionDenied(_("Only the author may edit a message."), code="not_author")
        _refuse_deleted(message)
        if message.kind != MessageKind.TEXT:
            raise ApplicationError(_("This message cannot be edited."), code="message_not_editable")
        if now - message.created_at > EDIT_WINDOW:
            raise PermissionDenied(
                _("A message may be edited within %(hours)d hours of sending.")
                % {"hours": int(EDIT_WINDOW.total_seconds() // 3600)},
                code="edit_window_passed",
            )
        text = messages.body_clean(body)
        messages.posting_check(member=member, now=now)
        if text == message.body:
            return message
        if MessageRevision.objects.filter(message=message).count() >= REVISIONS_MAX:
            raise ApplicationError(_("This message was edited too many times."), code="too_many_edits")
        MessageRevision.objects.create(message=message, body=message.body)
        # body_hash stays that of the text first sent: a client's resend of
        # it (same client_id) must still find this message.
        message.body = text
        message.edited_at = now
        message.save(update_fields=["body", "edited_at"])
        events.event_publish(chat=chat_id, event={"type": "message.updated", "message": message_payload_full(message)})
    return message


def message_revisions_get(*, user: User, chat_id: int, seq: int) -> tuple[Message, list[MessageRevision]]:
    """A message and its earlier texts, oldest first, for any member. A
    deleted message shows no history.

    Raises NotFound (not a member, no such message).
    """
    selectors.chat_member_get(user=user, chat_id=chat_id)
    message = selectors.message_get(chat_id=chat_id, seq=seq)
    if message.deleted_at is not None:
        return message, []
    return message, list(MessageRevision.objects.filter(message=message).order_by("replaced_at", "id"))


def message_content_retract(*, message: Message) -> None:
    """What goes with a message when it is deleted, beyond its text: its
    reactions, the unread mention and reply notifications it caused, and a
    poll in it closes (its files stop being served by
    `attachment_for_download`). For the deleting service
    (moderation.message_delete) to call inside its transaction; publishes
    nothing of its own ("message.deleted" says it all)."""
    Reaction.objects.filter(message=message).delete()
    Notification.objects.filter(
        message=message,
        read_at__isnull=True,
        kind__in=[Notification.Kind.MENTION, Notification.Kind.REPLY],
    ).delete()
    Poll.objects.filter(message=message, closed_at__isnull=True).update(closed_at=timezone.now())


# --- Reactions ---------------------------------------------------------------------


def reaction_clean(emoji: Any) -> str:
    """One of REACTIONS (with or without variation selectors).

    Raises ApplicationError "reaction_not_allowed".
    """
    canonical = _REACTION_BY_BARE.get(emoji.strip().replace("\ufe0f", "")) if isinstance(emoji, str) else None
    if canonical is None:
        raise ApplicationError(
            _("This reaction is not available."), code="reaction_not_allowed", extra={"field": "emoji"}
        )
    return canonical


def reaction_toggle(*, user: User, chat_id: int, seq: int, emoji: Any) -> tuple[bool, dict[str, int]]:
    """Add the person's reaction to a message, or take it back if it is
    there. Returns (added, counts per emoji).

    Raises NotFound, ApplicationError "reaction_not_allowed" /
    "message_deleted", PermissionDenied "muted" / "contact_not_allowed".
    Publishes {"type": "message.reactions", "chat", "seq", "reactions"}
    after commit.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    emoji = reaction_clean(emoji)
    if member.muted_until and member.muted_until > timezone.now():
        raise PermissionDenied(_("You are muted in this chat."), code="muted")
    _contact_check(member)
    with transaction.atomic():
        message = _message_for_update(chat_id=chat_id, seq=seq)
        _refuse_deleted(message)
        removed, _details = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
        added = not removed
        if added:
            try:
                with transaction.atomic():
                    Reaction.objects.create(message=message, user=user, emoji=emoji)
            except IntegrityError:
                pass  # the same click arrived twice at once: one reaction
        counts = reaction_counts(message_ids=[message.pk]).get(message.pk, {})
        events.event_publish(
            chat=chat_id,
            event={"type": "message.reactions", "chat": chat_id, "seq": message.seq, "reactions": counts},
        )
    return added, counts


def reaction_counts(*, message_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """{message_id: {emoji: count}} with emoji in REACTIONS order; messages
    without reactions are left out. One query."""
    rows = (
        Reaction.objects.filter(message_id__in=list(message_ids))
        .values("message_id", "emoji")
        .annotate(count=Count("id"))
        .order_by()
    )
    found: dict[int, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["message_id"], {})[row["emoji"]] = row["count"]
    return {
        message_id: {emoji: counts[emoji] for emoji in REACTIONS if emoji in counts}
        for message_id, counts in found.items()
    }


def reactions_of_user(*, user: User, message_ids: Iterable[int]) -> dict[int, list[str]]:
    """{message_id: [emoji the person put]}; one query."""
    mine: dict[int, list[str]] = {}
    for message_id, emoji in Reaction.objects.filter(user=user, message_id__in=list(message_ids)).values_list(
        "message_id", "emoji"
    ):
        mine.setdefault(message_id, []).append(emoji)
    return {message_id: sorted(emojis, key=_reaction_order) for message_id, emojis in mine.items()}


def _reaction_order(emoji: str) -> int:
    return REACTIONS.index(emoji) if emoji in REACTIONS else len(REACTIONS)


# --- Pins ----------------------------------------------------------------------------


def _pin_check(member: ChatMember) -> None:
    # Moderators pin; in a channel its editors, who run it, do too.
    if selectors.member_may_moderate(member) or (
        member.chat.kind == ChatKind.CHANNEL and selectors.member_is_staff(member)
    ):
        return
    raise PermissionDenied(_("Only the chat's moderators pin messages."), code="not_moderator")


def pin_add(*, user: User, chat_id: int, seq: int) -> tuple[Pin, bool]:
    """Pin a message; returns (pin, created). Pinning it again changes nothing.

    Raises NotFound, PermissionDenied "not_moderator", ApplicationError
    "message_deleted" / "too_many_pins". Publishes {"type": "pin.added",
    "chat", "seq", "message"} after commit.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    _pin_check(member)
    with transaction.atomic():
        message = _message_for_update(chat_id=chat_id, seq=seq)
        _refuse_deleted(message)
        existing = Pin.objects.filter(chat_id=chat_id, message=message).select_related("pinned_by").first()
        if existing is not None:
            return existing, False
        if Pin.objects.filter(chat_id=chat_id).count() >= PINS_MAX:
            raise ApplicationError(
                _("A chat may have at most %(limit)d pinned messages.") % {"limit": PINS_MAX}, code="too_many_pins"
            )
        pin = Pin.objects.create(chat_id=chat_id, message=message, pinned_by=user)
        events.event_publish(
            chat=chat_id,
            event={"type": "pin.added", "chat": chat_id, "seq": message.seq, "message": message_payload_full(message)},
        )
    return pin, True


def pin_remove(*, user: User, chat_id: int, seq: int) -> None:
    """Unpin a message.

    Raises NotFound (also when it is not pinned), PermissionDenied
    "not_moderator". Publishes {"type": "pin.removed", "chat", "seq"} after
    commit.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    _pin_check(member)
    with transaction.atomic():
        removed, _details = Pin.objects.filter(chat_id=chat_id, message__seq=seq).delete()
        if not removed:
            raise _not_found()
        events.event_publish(chat=chat_id, event={"type": "pin.removed", "chat": chat_id, "seq": seq})


def pin_list(*, user: User, chat_id: int) -> QuerySet[Pin]:
    """The chat's pins, newest first, with their messages (for any member).

    Raises NotFound.
    """
    selectors.chat_member_get(user=user, chat_id=chat_id)
    return (
        Pin.objects.filter(chat_id=chat_id, message__deleted_at__isnull=True)
        .select_related("message", "message__author", "message__reply_to", "pinned_by")
        .order_by("-pinned_at", "-id")
    )


# --- Polls --------------------------------------------------------------------------


def _poll_text(value: Any, *, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApplicationError(_("This field must be non-empty text."), code="invalid", extra={"field": field})
    text = " ".join(value.split())
    if len(text) > limit:
        raise ApplicationError(
            _("At most %(limit)d characters.") % {"limit": limit}, code="invalid", extra={"field": field}
        )
    return text


def _poll_options_clean(options: Any) -> list[str]:
    if not isinstance(options, list | tuple) or not POLL_OPTIONS_MIN <= len(options) <= POLL_OPTIONS_MAX:
        raise ApplicationError(
            _("A poll has from %(minimum)d to %(maximum)d options.")
            % {"minimum": POLL_OPTIONS_MIN, "maximum": POLL_OPTIONS_MAX},
            code="poll_options_invalid",
            extra={"field": "options"},
        )
    cleaned = [_poll_text(option, field="options", limit=POLL_OPTION_MAX_LENGTH) for option in options]
    if len({option.casefold() for option in cleaned}) != len(cleaned):
        raise ApplicationError(
            _("The options of a poll must differ."), code="poll_options_invalid", extra={"field": "options"}
        )
    return cleaned


def poll_create(
    *,
    user: User,
    chat_id: int,
    question: Any,
    options: Any,
    allows_multiple: Any = False,
    is_anonymous: Any = False,
    client_id: Any = "",
) -> tuple[Poll, bool]:
    """A teacher (the chat's staff) posts a poll: a message of kind "poll"
    whose text is the question, with 2–10 options. Returns (poll, created):
    a resend with the same client_id returns the first poll.

    Raises NotFound, PermissionDenied "poll_staff_only" or a posting rule,
    ApplicationError (invalid question or options, "client_id_conflict").
    Publishes the message (as `messages.message_send` does) and then
    {"type": "poll.updated", "chat", "seq", "poll"} after commit.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    if not selectors.member_is_staff(member):
        raise PermissionDenied(_("Only teachers create polls."), code="poll_staff_only")
    question_text = _poll_text(question, field="question", limit=POLL_QUESTION_MAX_LENGTH)
    option_texts = _poll_options_clean(options)
    for name, flag in (("allows_multiple", allows_multiple), ("is_anonymous", is_anonymous)):
        if not isinstance(flag, bool):
            raise ApplicationError(_("Must be true or false."), code="invalid", extra={"field": name})
    with transaction.atomic():
        message, created = messages.message_send(
            user=user, chat_id=chat_id, body=question_text, client_id=client_id, kind=MessageKind.POLL
        )
        if not isinstance(message, Message):
            # Held for office hours: a poll is not something to deliver later.
            raise ApplicationError(_("A poll cannot be sent here."), code="poll_not_possible")
        if not created:
            existing = Poll.objects.filter(message=message).first()
            if existing is None:
                raise ApplicationError(
                    _("This client_id was already used for a different message."), code="client_id_conflict"
                )
            return existing, False
        poll = Poll.objects.create(
            message=message, question=question_text, allows_multiple=allows_multiple, is_anonymous=is_anonymous
        )
        PollOption.objects.bulk_create(
            [PollOption(poll=poll, text=text, position=position) for position, text in enumerate(option_texts)]
        )
        _poll_publish(poll)
    return poll, True


def _poll_for_member(*, user: User, chat_id: int, poll_id: int, for_update: bool = False) -> tuple[ChatMember, Poll]:
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    polls = Poll.objects.select_related("message")
    if for_update:
        polls = polls.select_for_update(of=("self",))
    poll = polls.filter(pk=poll_id, message__chat_id=chat_id, message__deleted_at__isnull=True).first()
    if poll is None:
        raise _not_found()
    return member, poll


def poll_vote(*, user: User, chat_id: int, poll_id: int, option_ids: Any) -> dict[str, Any]:
    """The person's choice in a poll, replacing their earlier one; an empty
    list takes their vote back. Returns the poll as they see it.

    Raises NotFound, ApplicationError "poll_closed" / "poll_single_choice" /
    "poll_option_invalid" / "invalid". Publishes "poll.updated" (counts
    only) after commit when the choice changed.
    """
    ids = _id_list(option_ids, field="option_ids", maximum=POLL_OPTIONS_MAX)
    with transaction.atomic():
        member, poll = _poll_for_member(user=user, chat_id=chat_id, poll_id=poll_id, for_update=True)
        if poll.closed_at is not None:
            raise ApplicationError(_("The poll is closed."), code="poll_closed")
        if len(ids) > 1 and not poll.allows_multiple:
            raise ApplicationError(_("Choose one option."), code="poll_single_choice", extra={"field": "option_ids"})
        if PollOption.objects.filter(poll=poll, pk__in=ids).count() != len(ids):
            raise ApplicationError(
                _("No such option in this poll."), code="poll_option_invalid", extra={"field": "option_ids"}
            )
        current = set(PollVote.objects.filter(poll=poll, user=user).values_list("option_id", flat=True))
        if current != set(ids):
            PollVote.objects.filter(poll=poll, user=user).exclude(option_id__in=ids).delete()
            PollVote.objects.bulk_create(
                [PollVote(poll=poll, option_id=option_id, user=user) for option_id in ids if option_id not in current]
            )
            _poll_publish(poll)
    return poll_view(member=member, poll=poll)


def poll_close(*, user: User, chat_id: int, poll_id: int) -> dict[str, Any]:
    """The poll's author closes it: no more votes. Closing it again changes
    nothing. Returns the poll as the author sees it.

    Raises NotFound, PermissionDenied "not_author". Publishes "poll.updated"
    after commit.
    """
    with transaction.atomic():
        member, poll = _poll_for_member(user=user, chat_id=chat_id, poll_id=poll_id, for_update=True)
        if poll.message.author_id != user.pk:
            raise PermissionDenied(_("Only the poll's author may close it."), code="not_author")
        if poll.closed_at is None:
            poll.closed_at = timezone.now()
            poll.save(update_fields=["closed_at"])
            _poll_publish(poll)
    return poll_view(member=member, poll=poll)


def poll_get(*, user: User, chat_id: int, poll_id: int) -> dict[str, Any]:
    """A poll with its results as this member sees it (`poll_view`).

    Raises NotFound.
    """
    member, poll = _poll_for_member(user=user, chat_id=chat_id, poll_id=poll_id)
    return poll_view(member=member, poll=poll)


def _poll_publish(poll: Poll) -> None:
    events.event_publish(
        chat=poll.message.chat_id,
        event={
            "type": "poll.updated",
            "chat": poll.message.chat_id,
            "seq": poll.message.seq,
            "poll": polls_payload(polls=[poll])[poll.pk],
        },
    )


def polls_payload(*, polls: Sequence[Poll], user: User | None = None) -> dict[int, dict[str, Any]]:
    """{poll_id: payload} with the counts everyone may see; with `user`,
    also "my_votes" (their option ids). Two or three queries for any number
    of polls."""
    poll_ids = [poll.pk for poll in polls]
    options: dict[int, list[PollOption]] = {}
    for option in PollOption.objects.filter(poll_id__in=poll_ids).order_by("poll_id", "position", "id"):
        options.setdefault(option.poll_id, []).append(option)
    votes: dict[int, int] = {}
    voters: dict[int, set[int]] = {}
    for poll_id, option_id, user_id in PollVote.objects.filter(poll_id__in=poll_ids).values_list(
        "poll_id", "option_id", "user_id"
    ):
        votes[option_id] = votes.get(option_id, 0) + 1
        voters.setdefault(poll_id, set()).add(user_id)
    mine: dict[int, list[int]] = {}
    if user is not None:
        for poll_id, option_id in PollVote.objects.filter(poll_id__in=poll_ids, user=user).values_list(
            "poll_id", "option_id"
        ):
            mine.setdefault(poll_id, []).append(option_id)
    payloads = {}
    for poll in polls:
        payload: dict[str, Any] = {
            "id": poll.pk,
            "question": poll.question,
            "allows_multiple": poll.allows_multiple,
            "is_anonymous": poll.is_anonymous,
            "is_closed": poll.closed_at is not None,
            "closed_at": poll.closed_at.isoformat() if poll.closed_at else None,
            "voters_count": len(voters.get(poll.pk, ())),
            "options": [
                {"id": option.pk, "text": option.text, "votes": votes.get(option.pk, 0)}
                for option in options.get(poll.pk, [])
            ],
        }
        if user is not None:
            payload["my_votes"] = sorted(mine.get(poll.pk, []))
        payloads[poll.pk] = payload
    return payloads


def poll_view(*, member: ChatMember, poll: Poll) -> dict[str, Any]:
    """The poll as one member sees it: counts, their own votes, the message's
    chat and seq, and — for the chat's staff, when the poll is not anonymous
    — who chose each option."""
    payload = polls_payload(polls=[poll], user=member.user)[poll.pk]
    payload["chat"] = poll.message.chat_id
    payload["seq"] = poll.message.seq
    payload["author"] = poll.message.author_id
    if selectors.member_is_staff(member) and not poll.is_anonymous:
        voters: dict[int, list[dict[str, Any]]] = {}
        for vote in PollVote.objects.filter(poll=poll).select_related("user").order_by("created_at", "id"):
            voters.setdefault(vote.option_id, []).append(events.author_payload(vote.user) or {})
        for option in payload["options"]:
            option["voters"] = voters.get(option["id"], [])
    return payload


# --- Attachments --------------------------------------------------------------------


def attachment_max_bytes() -> int:
    return int(getattr(settings, "CHAT_ATTACHMENT_MAX_BYTES", ATTACHMENT_MAX_BYTES_DEFAULT))


def _too_large(limit: int) -> ApplicationError:
    return ApplicationError(
        _("The file is too large: at most %(megabytes)s MB.") % {"megabytes": round(limit / 1024 / 1024, 1)},
        code="file_too_large",
        status_code=413,
        extra={"max_bytes": limit},
    )


def attachment_upload(*, user: User, chat_id: int, upload: UploadedFile) -> Attachment:
    """Store a file for a message the person is about to send in the chat.
    Its type is decided by its content (`files.file_inspect`); images are
    re-encoded without metadata and get a thumbnail. The attachment belongs
    to no message until `message_send_with_attachments` binds it; until
    then only its uploader may download it.

    Raises NotFound, PermissionDenied (a posting rule), RateLimited,
    ApplicationError "file_too_large" (413), "file_type_not_allowed" (415),
    "image_too_large" (413), "file_empty".
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    messages.posting_check(member=member, now=timezone.now())
    limit = attachment_max_bytes()
    if upload.size is not None and upload.size > limit:
        raise _too_large(limit)
    rate_limit_hit(
        scope="chat-attachment",
        key=str(user.pk),
        rate=getattr(settings, "CHAT_ATTACHMENT_UPLOAD_RATE", ATTACHMENT_UPLOAD_RATE_DEFAULT),
    )
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    inspected = files.file_inspect(data=data, name=upload.name or "")
    if len(inspected.content) > limit:
        raise _too_large(limit)
    attachment = Attachment(
        chat_id=chat_id,
        uploaded_by=user,
        original_name=inspected.name,
        content_type=inspected.content_type,
        size=len(inspected.content),
        width=inspected.width,
        height=inspected.height,
    )
    stem = uuid.uuid4().hex
    attachment.file.save(stem + files.EXTENSIONS[inspected.content_type], ContentFile(inspected.content), save=False)
    if inspected.thumbnail is not None:
        attachment.thumbnail.save(stem + ".jpg", ContentFile(inspected.thumbnail), save=False)
    try:
        with transaction.atomic():
            attachment.save()
    except Exception:
        _attachment_files_delete(attachment)
        raise
    return attachment


def _attachment_files_delete(attachment: Attachment) -> None:
    for stored in (attachment.file, attachment.thumbnail):
        if stored:
            stored.storage.delete(stored.name)


def message_send_with_attachments(
    *,
    user: User,
    chat_id: int,
    body: Any,
    attachment_ids: Any,
    client_id: Any = "",
    reply_to_seq: Any = None,
    mention_ids: Sequence[Any] = (),
) -> tuple[Message | ScheduledMessage, bool]:
    """`messages.message_send` with files uploaded by the same person to the
    same chat (`attachment_upload`), bound to the new message in the same
    transaction. A resend with the same client_id and the same files
    returns the first message.

    Raises what message_send raises, and ApplicationError
    "attachment_invalid" (not one's own unsent upload in this chat),
    "attachments_held" (a message held for office hours cannot carry files
    yet), "client_id_conflict". Publishes the message and then
    {"type": "message.updated", "message"} with its attachments after commit.
    """
    ids = _id_list(attachment_ids, field="attachments", maximum=ATTACHMENTS_PER_MESSAGE_MAX)
    if not ids:
        return messages.message_send(
            user=user,
            chat_id=chat_id,
            body=body,
            client_id=client_id,
            reply_to_seq=reply_to_seq,
            mention_ids=mention_ids,
        )
    with transaction.atomic():
        message, created = messages.message_send(
            user=user,
            chat_id=chat_id,
            body=body,
            client_id=client_id,
            reply_to_seq=reply_to_seq,
            mention_ids=mention_ids,
        )
        if not isinstance(message, Message):
            raise ApplicationError(
                _("Files cannot be sent outside the teacher's office hours. Send them later."),
                code="attachments_held",
            )
        if not created:
            if set(Attachment.objects.filter(message=message).values_list("pk", flat=True)) != set(ids):
                raise ApplicationError(
                    _("This client_id was already used for a different message."), code="client_id_conflict"
                )
            return message, False
        # One UPDATE: of two messages racing for the same upload, one binds it
        # and the other sees a short count and rolls back.
        bound = Attachment.objects.filter(pk__in=ids, chat_id=chat_id, uploaded_by=user, message__isnull=True).update(
            message=message
        )
        if bound != len(ids):
            raise ApplicationError(
                _("Attach only files you uploaded to this chat and have not sent yet."),
                code="attachment_invalid",
                extra={"field": "attachments"},
            )
        events.event_publish(chat=chat_id, event={"type": "message.updated", "message": message_payload_full(message)})
    return message, True


def attachment_stored_add(
    *, message: Message, file_name: str, original_name: str, content_type: str, size: int, uploaded_by: User | None
) -> Attachment:
    """Bind a file the portal made itself (already in storage as
    `file_name`, e.g. a lesson's recording) to a message, inside the
    caller's transaction; after commit the chat hears "message.updated".
    No inspection: only server-made files come this way, never uploads."""
    attachment = Attachment.objects.create(
        chat_id=message.chat_id,
        message=message,
        uploaded_by=uploaded_by,
        file=file_name,
        original_name=original_name,
        content_type=content_type,
        size=size,
    )
    events.event_publish(
        chat=message.chat_id, event={"type": "message.updated", "message": message_payload_full(message)}
    )
    return attachment


def attachment_for_download(*, user: User, attachment_id: int) -> Attachment:
    """An attachment the person may download: one of a message (not
    deleted) in a chat they are in, or their own not yet sent.

    Raises NotFound for everything else, exactly as for a missing file.
    """
    attachment = Attachment.objects.select_related("message").filter(pk=attachment_id).first()
    if attachment is None:
        raise _not_found()
    selectors.chat_member_get(user=user, chat_id=attachment.chat_id)
    if attachment.message is None:
        if attachment.uploaded_by_id != user.pk:
            raise _not_found()
    elif attachment.message.deleted_at is not None:
        raise _not_found()
    return attachment


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "name": attachment.original_name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": reverse("chats:attachment_file", args=[attachment.pk]),
        "thumbnail_url": (
            reverse("chats:attachment_thumbnail", args=[attachment.pk]) if attachment.thumbnail else None
        ),
    }


def attachments_payload(*, message_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """{message_id: [attachment payloads]} in one query."""
    found: dict[int, list[dict[str, Any]]] = {}
    for attachment in Attachment.objects.filter(message_id__in=list(message_ids)).order_by("id"):
        found.setdefault(attachment.message_id or 0, []).append(attachment_payload(attachment))
    return found


def attachments_unbound_purge(*, now: datetime.datetime | None = None) -> int:
    """Delete uploads never sent within UNBOUND_ATTACHMENT_LIFETIME, with
    their files (for Celery beat). Returns how many went. Idempotent."""
    cutoff = (now or timezone.now()) - UNBOUND_ATTACHMENT_LIFETIME
    purged = 0
    for attachment in Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff).order_by("id")[:1000]:
        if Attachment.objects.filter(pk=attachment.pk, message__isnull=True).delete()[0]:
            _attachment_files_delete(attachment)
            purged += 1
    return purged


# --- Everything at once, for message lists -----------------------------------------


def messages_content(*, user: User, messages_shown: Sequence[Message]) -> dict[int, dict[str, Any]]:
    """For a page of messages: {message_id: {"attachments", "reactions",
    "my_reactions", "poll"}} in a fixed number of queries (at most seven),
    for REST lists, pages and catch-up. Deleted messages get empty content."""
    shown = [message.pk for message in messages_shown if message.deleted_at is None]
    attachments = attachments_payload(message_ids=shown)
    counts = reaction_counts(message_ids=shown)
    mine = reactions_of_user(user=user, message_ids=shown)
    poll_message_ids = [m.pk for m in messages_shown if m.deleted_at is None and m.kind == MessageKind.POLL]
    polls = list(Poll.objects.filter(message_id__in=poll_message_ids)) if poll_message_ids else []
    poll_payloads = polls_payload(polls=polls, user=user) if polls else {}
    poll_by_message = {poll.message_id: poll_payloads[poll.pk] for poll in polls}
    return {
        message.pk: {
            "attachments": attachments.get(message.pk, []),
            "reactions": counts.get(message.pk, {}),
            "my_reactions": mine.get(message.pk, []),
            "poll": poll_by_message.get(message.pk),
        }
        for message in messages_shown
    }
