"""Reads and access rules of chats. `chat_member_get` is the one door to a
chat: every interface (REST, WebSocket, HTML) goes through it, so a chat a
person is not in answers exactly like a chat that does not exist."""

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Case, IntegerField, Model, OuterRef, QuerySet, Subquery, Value, When
from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message, OfficeHours, Pin
from common import rows
from common.errors import NotFound
from organisations.models import STAFF_ROLES, Membership, Organisation

POSTING_STAFF_ROLES = (MemberRole.OWNER, MemberRole.MODERATOR, MemberRole.EDITOR)
MODERATOR_ROLES = (MemberRole.OWNER, MemberRole.MODERATOR)
HISTORY_PAGE_MAX = 100
HISTORY_PAGE_DEFAULT = 50
# A chat's page lists this many members; channels may have thousands.
DETAIL_MEMBERS_SHOWN = 200
PREVIEW_LENGTH = 120


def chat_not_found() -> NotFound:
    """The one answer for a chat that does not exist and a chat one may not
    see, so that the two cannot be told apart."""
    return NotFound(_("Not found."))


@functools.cache
def _member_query() -> tuple[list[rows.Columns], str]:
    """chat_member_get's statement: the active membership with its chat,
    written once. It runs for every frame of every chat socket; compiling it
    with the ORM each time cost more than running it. The chat's
    organisation is left to its foreign key: only a page's time zone and a
    chat's opening hours read it, and making its model instance (and its
    region's) on every frame cost as much as the query."""
    parts = [rows.columns(ChatMember, "m"), rows.columns(Chat, "c")]
    quote = connection.ops.quote_name

    def table(model: type[Model]) -> str:
        return quote(model._meta.db_table)

    sql = (
        f"SELECT {', '.join(part.sql for part in parts)}"  # noqa: S608 - names from the models' meta
        f" FROM {table(ChatMember)} m JOIN {table(Chat)} c ON c.id = m.chat_id"
        " WHERE m.user_id = %s AND m.chat_id = %s AND m.left_at IS NULL AND c.is_archived = %s"
    )
    return parts, sql


def chat_member_get(*, user: User, chat_id: int) -> ChatMember:
    """The person's active membership of the chat, with the chat.

    Raises NotFound when the chat does not exist or the person is not (or no
    longer) in it.
    """
    if not user.is_authenticated or not user.is_active:
        raise chat_not_found()
    parts, sql = _member_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, chat_id, False])
        row = cursor.fetchone()
    if row is None:
        raise chat_not_found()
    member, chat = rows.split(row, parts)
    assert isinstance(member, ChatMember) and isinstance(chat, Chat)
    member.chat = chat
    # The person is at hand: no need to read them again.
    member.user = user
    return member


def chat_organisation(chat: Chat) -> Organisation | None:
    """The chat's organisation with its region (for its time zone): one
    query, the first time it is asked of this chat instance."""
    if chat.organisation_id is None:
        return None
    if not Chat.organisation.is_cached(chat):
        chat.organisation = Organisation.objects.select_related("region").filter(pk=chat.organisation_id).first()
    return chat.organisation


def chat_time_zone(*, user: User, chat: Chat | None = None) -> str:
    """The time zone a page shows a chat's times in: the person's own, else
    the chat's organisation's, else the portal's."""
    if user.time_zone:
        return user.time_zone
    organisation = chat_organisation(chat) if chat is not None else None
    if organisation is not None:
        return organisation.effective_time_zone
    return settings.TIME_ZONE


def member_may_moderate(member: ChatMember) -> bool:
    return member.role in MODERATOR_ROLES


def member_is_staff(member: ChatMember) -> bool:
    """Staff of a chat post in announcement mode, in channels (editors) and
    outside opening hours."""
    return member.role in POSTING_STAFF_ROLES


def member_may_see_receipts(member: ChatMember) -> bool:
    """ "Seen by N of M" is for the chat's staff (teachers); in a direct chat
    both people see whether the other has read."""
    return member_is_staff(member) or member.chat.kind == ChatKind.DIRECT


def receipt_viewer_ids(*, chat: Chat, reader_id: int) -> list[int]:
    """Who sees "seen by N of M" in the chat (member_may_see_receipts), but
    the reader: one query."""
    members = ChatMember.objects.active().filter(chat=chat).exclude(user_id=reader_id)
    if chat.kind != ChatKind.DIRECT:
        members = members.filter(role__in=POSTING_STAFF_ROLES)
    return list(members.values_list("user_id", flat=True))


def chat_ids_of_user(*, user: User) -> list[int]:
    return list(
        ChatMember.objects.active()
        .filter(user=user, chat__is_archived=False)
        .order_by("chat_id")
        .values_list("chat_id", flat=True)
    )


def users_share_chat(*, user: User, other: User) -> bool:
    """Whether both are active members of one chat (which makes a profile
    visible, like a shared organisation)."""
    return (
        ChatMember.objects.active()
        .filter(user=other, chat__is_archived=False)
        .filter(chat_id__in=ChatMember.objects.active().filter(user=user).values("chat_id"))
        .exists()
    )


def direct_chat_other_user(*, chat: Chat, user: User) -> User | None:
    if chat.kind != ChatKind.DIRECT:
        return None
    other = (
        ChatMember.objects.filter(chat=chat)
        .exclude(user=user)
        .select_related("user")
        .order_by("-joined_at", "-id")
        .first()
    )
    return other.user if other else None


def chat_title(*, chat: Chat, other_user: User | None = None) -> str:
    """What a chat is called for one person: a direct chat is named after
    the other person."""
    if chat.kind == ChatKind.DIRECT and other_user is not None:
        return str(other_user.display_name)
    return chat.title or _("Chat")


def body_preview(message: Message) -> str:
    if message.deleted_at is not None:
        return ""
    text = " ".join(message.body.split())
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


# --- The chat list -------------------------------------------------------------


@dataclass
class ChatListItem:
    chat: Chat
    member: ChatMember
    title: str
    last_message: Message | None
    unread_count: int
    other_user: User | None = None


def chat_memberships_of_user(*, user: User) -> QuerySet[ChatMember]:
    """The person's chats (as memberships), most recently active first, each
    with the id of its last message: one query however many chats."""
    last_message_id = Message.objects.filter(chat_id=OuterRef("chat_id"), seq=OuterRef("chat__last_seq")).values("pk")[
        :1
    ]
    return (
        ChatMember.objects.active()
        .filter(user=user, chat__is_archived=False)
        .select_related("chat")
        .annotate(last_message_id=Subquery(last_message_id))
        .order_by("-chat__updated_at", "-chat_id")
    )


def chat_list_items(*, user: User, members: Iterable[ChatMember]) -> list[ChatListItem]:
    """Title, last message and unread count of each of `members` (from
    `chat_memberships_of_user`), in two more queries whatever their number."""
    members = list(members)
    message_ids = [getattr(member, "last_message_id", None) for member in members]
    last_messages = {
        message.chat_id: message
        for message in Message.objects.filter(pk__in=[pk for pk in message_ids if pk is not None]).select_related(
            "author"
        )
    }
    direct_chat_ids = [member.chat_id for member in members if member.chat.kind == ChatKind.DIRECT]
    others: dict[int, User] = {}
    if direct_chat_ids:
        # The latest row of the other person, whether or not they are still in.
        for other in (
            ChatMember.objects.filter(chat_id__in=direct_chat_ids)
            .exclude(user=user)
            .select_related("user")
            .order_by("chat_id", "joined_at", "id")
        ):
            others[other.chat_id] = other.user
    items = []
    for member in members:
        other_user = others.get(member.chat_id)
        items.append(
            ChatListItem(
                chat=member.chat,
                member=member,
                title=chat_title(chat=member.chat, other_user=other_user),
                last_message=last_messages.get(member.chat_id),
                unread_count=max(0, member.chat.last_seq - member.last_read_seq),
                other_user=other_user,
            )
        )
    return items


def chat_list(*, user: User, offset: int = 0, limit: int | None = None) -> list[ChatListItem]:
    """The person's chats, most recently active first, with title, kind,
    last message and unread count; three queries whatever their number."""
    members = chat_memberships_of_user(user=user)
    page = members[offset : offset + limit] if limit is not None else members[offset:]
    return chat_list_items(user=user, members=page)


# --- One chat ------------------------------------------------------------------


@dataclass
class ChatDetail:
    chat: Chat
    member: ChatMember
    title: str
    members: list[ChatMember]
    members_count: int
    pins: list[Pin]
    organisation_roles: dict[int, list[str]] = field(default_factory=dict)
    other_user: User | None = None


ROLE_ORDER = Case(
    When(role=MemberRole.OWNER, then=Value(0)),
    When(role=MemberRole.MODERATOR, then=Value(1)),
    When(role=MemberRole.EDITOR, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def chat_detail_get(*, user: User, chat_id: int) -> ChatDetail:
    """A chat as its member sees it: members (staff first) with their
    badges and roles in the chat's organisation, pins, settings and the
    person's own role.

    Raises NotFound when the person is not in the chat.
    """
    member = chat_member_get(user=user, chat_id=chat_id)
    chat = member.chat
    active = ChatMember.objects.active().filter(chat=chat)
    members = list(
        active.select_related("user")
        .annotate(role_order=ROLE_ORDER)
        .order_by("role_order", "user__last_name", "user__first_name", "user_id")[:DETAIL_MEMBERS_SHOWN]
    )
    members_count = len(members) if len(members) < DETAIL_MEMBERS_SHOWN else active.count()
    organisation_roles: dict[int, list[str]] = {}
    if chat.organisation_id:
        for user_id, role in (
            Membership.objects.active()
            .filter(organisation_id=chat.organisation_id, user_id__in=[m.user_id for m in members])
            .order_by("user_id", "role")
            .values_list("user_id", "role")
        ):
            organisation_roles.setdefault(user_id, []).append(role)
    pins = list(Pin.objects.filter(chat=chat).select_related("message", "message__author").order_by("-pinned_at"))
    other_user = None
    if chat.kind == ChatKind.DIRECT:
        other_user = next((m.user for m in members if m.user_id != user.pk), None) or direct_chat_other_user(
            chat=chat, user=user
        )
    return ChatDetail(
        chat=chat,
        member=member,
        title=chat_title(chat=chat, other_user=other_user),
        members=members,
        members_count=members_count,
        pins=pins,
        organisation_roles=organisation_roles,
        other_user=other_user,
    )


# --- History -------------------------------------------------------------------


def messages_after(*, chat_id: int, after_seq: int, limit: int) -> QuerySet[Message]:
    """Messages with seq > after_seq, oldest first (catch-up and paging)."""
    return (
        Message.objects.filter(chat_id=chat_id, seq__gt=after_seq)
        .select_related("author", "reply_to")
        .order_by("seq")[:limit]
    )


def messages_before(*, chat_id: int, before_seq: int | None, limit: int) -> list[Message]:
    """The page of history before `before_seq` (newest page when None), oldest first."""
    messages = Message.objects.filter(chat_id=chat_id).select_related("author", "reply_to")
    if before_seq is not None:
        messages = messages.filter(seq__lt=before_seq)
    return list(reversed(messages.order_by("-seq")[:limit]))


def message_history(
    *, chat_id: int, before: int | None = None, after: int | None = None, limit: int = HISTORY_PAGE_DEFAULT
) -> tuple[list[Message], bool]:
    """A page of a chat's messages, oldest first, and whether there are more
    beyond it: after `after` (going forward) or else before `before` (going
    back; the newest page when both are None). `limit` is capped at 100."""
    limit = max(1, min(limit, HISTORY_PAGE_MAX))
    if after is not None:
        forward = list(messages_after(chat_id=chat_id, after_seq=after, limit=limit + 1))
        return forward[:limit], len(forward) > limit
    backward = messages_before(chat_id=chat_id, before_seq=before, limit=limit + 1)
    return backward[-limit:], len(backward) > limit


def message_get(*, chat_id: int, seq: int) -> Message:
    """Raises NotFound when the chat has no message with this seq."""
    message = Message.objects.select_related("author", "reply_to").filter(chat_id=chat_id, seq=seq).first()
    if message is None:
        raise NotFound(_("Not found."))
    return message


# --- Read receipts -------------------------------------------------------------


def message_seen_counts(*, chat: Chat, seqs: Iterable[int]) -> dict[int, tuple[int, int]]:
    """{seq: (seen_by, of_members)} for the chat's messages with these seqs:
    how many of the other active members have read up to it. Two queries
    whatever the number of messages and members; callers check that the
    person may see receipts (`member_may_see_receipts`)."""
    wanted = sorted({seq for seq in seqs if isinstance(seq, int)})
    if not wanted:
        return {}
    authors = dict(Message.objects.filter(chat=chat, seq__in=wanted).values_list("seq", "author_id"))
    read_positions = dict(ChatMember.objects.active().filter(chat=chat).values_list("user_id", "last_read_seq"))
    ordered = sorted(read_positions.values())
    total = len(ordered)
    counts: dict[int, tuple[int, int]] = {}
    for seq, author_id in authors.items():
        seen = total - bisect.bisect_left(ordered, seq)
        members = total
        author_position = read_positions.get(author_id) if author_id is not None else None
        if author_position is not None:
            members -= 1
            if author_position >= seq:
                seen -= 1
        counts[seq] = (seen, members)
    return counts


# --- Office hours --------------------------------------------------------------


def office_hours_get(*, user: User) -> OfficeHours | None:
    return OfficeHours.objects.filter(user=user).first()


def user_is_educator(*, user: User) -> bool:
    """Staff of some organisation: they may have office hours, and write to
    each other outside them."""
    return Membership.objects.active().filter(user=user, role__in=STAFF_ROLES).exists()
