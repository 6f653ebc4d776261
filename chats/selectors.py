"""Reads and access rules of chats. `chat_member_get` is the one door to a
chat: every interface (REST, WebSocket, HTML) goes through it, so a chat a
person is not in answers exactly like a chat that does not exist."""

from django.db.models import QuerySet

from accounts.models import User
from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message
from common.errors import NotFound

POSTING_STAFF_ROLES = (MemberRole.OWNER, MemberRole.MODERATOR, MemberRole.EDITOR)
MODERATOR_ROLES = (MemberRole.OWNER, MemberRole.MODERATOR)


def chat_member_get(*, user: User, chat_id: int) -> ChatMember:
    """The person's active membership of the chat, with the chat.

    Raises NotFound when the chat does not exist or the person is not (or no
    longer) in it.
    """
    if not user.is_authenticated or not user.is_active:
        raise NotFound()
    member = (
        ChatMember.objects.active()
        .select_related("chat", "chat__organisation")
        .filter(user=user, chat_id=chat_id, chat__is_archived=False)
        .first()
    )
    if member is None:
        raise NotFound()
    return member


def member_may_moderate(member: ChatMember) -> bool:
    return member.role in MODERATOR_ROLES


def member_is_staff(member: ChatMember) -> bool:
    """Staff of a chat post in announcement mode, in channels (editors) and
    outside opening hours."""
    return member.role in POSTING_STAFF_ROLES


def chat_ids_of_user(*, user: User) -> list[int]:
    return list(
        ChatMember.objects.active()
        .filter(user=user, chat__is_archived=False)
        .order_by("chat_id")
        .values_list("chat_id", flat=True)
    )


def direct_chat_other_user(*, chat: Chat, user: User) -> User | None:
    if chat.kind != ChatKind.DIRECT:
        return None
    other = ChatMember.objects.filter(chat=chat).exclude(user=user).select_related("user").first()
    return other.user if other else None


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
