"""Direct and group chats: creating them, adding and leaving members, reading
position. Class and staff chats are the sync's (chats.services.sync); no one
adds or removes their members by hand, except a moderator removing someone.

Safe mode (SPEC §3): a child in safe mode is reached only by contacts
(organisations.selectors.contact_is_allowed), in new chats and existing ones;
a refusal stores nothing and tells no one."""

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chats import events, extensions, selectors
from chats.models import AUTO_KINDS, Chat, ChatKind, ChatMember, MemberRole
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.services import audit_record
from organisations.selectors import contact_is_allowed, profile_is_visible

TITLE_MAX_LENGTH = 200
GROUP_MEMBERS_MAX = 200


def contact_not_allowed() -> PermissionDenied:
    return PermissionDenied(_("This person accepts messages only from contacts."), code="contact_not_allowed")


def managed_by_directory() -> PermissionDenied:
    return PermissionDenied(
        _("The members of this chat follow the school's directory."), code="chat_managed_by_directory"
    )


def not_moderator() -> PermissionDenied:
    return PermissionDenied(_("Only the chat's moderators may do this."), code="not_moderator")


def user_may_reach(*, user: User, other: User) -> bool:
    """May `user` start a chat with, or add, `other`? Only a person whose
    profile they may see (a shared organisation or chat), and a child in safe
    mode only if they are a contact."""
    if not other.is_active:
        return False
    if other.is_safe_mode and not contact_is_allowed(actor=user, child=other):
        return False
    return profile_is_visible(viewer=user, owner=other) or selectors.users_share_chat(user=user, other=other)


def _person_get(*, user: User, user_id: Any, field: str) -> User:
    """The person `user` wants to reach.

    Raises PermissionDenied "contact_not_allowed" for a child in safe mode
    who does not count `user` as a contact, and NotFound for anyone `user`
    may not see (or no one), so that the ids of strangers tell nothing.
    """
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ApplicationError(_("A person's id is required."), code="invalid", extra={"field": field})
    other = User.objects.filter(pk=user_id, is_active=True).first()
    if other is None:
        raise NotFound(_("Not found."), code="user_not_found")
    if other.is_safe_mode and not contact_is_allowed(actor=user, child=other):
        raise contact_not_allowed()
    if not user_may_reach(user=user, other=other):
        raise NotFound(_("Not found."), code="user_not_found")
    return other


def title_clean(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise ApplicationError(_("The chat needs a title."), code="invalid", extra={"field": "title"})
    title = " ".join(title.split())
    if len(title) > TITLE_MAX_LENGTH:
        raise ApplicationError(
            _("A title may have at most %(limit)d characters.") % {"limit": TITLE_MAX_LENGTH},
            code="invalid",
            extra={"field": "title"},
        )
    return title


def _joined_publish(*, chat: Chat, members: Sequence[ChatMember]) -> None:
    for member in members:
        events.user_event_publish(user_id=member.user_id, event={"type": "chat.joined", "chat": chat.pk})


def direct_chat_get_or_create(*, user: User, other: Any) -> tuple[Chat, bool]:
    """The one direct chat of `user` and `other`, created on first use;
    returns (chat, created). `other` is a User or an id from the input.
    Someone who had left it is brought back.

    Raises PermissionDenied "contact_not_allowed" when `other` is a child in
    safe mode and `user` is not their contact (nothing is stored, an
    existing chat included), NotFound when `user` may not see `other`, and
    ApplicationError for a chat with oneself.

    Side effects: "chat.joined" to each person (re)added, after commit.
    """
    other_id = other.pk if isinstance(other, User) else other
    if other_id == user.pk:
        raise ApplicationError(_("You cannot start a chat with yourself."), code="invalid", extra={"field": "user_id"})
    person = _person_get(user=user, user_id=other_id, field="user_id")
    low, high = sorted((user.pk, person.pk))
    key = f"{low}:{high}"
    created = False
    with transaction.atomic():
        chat = Chat.objects.filter(direct_key=key).first()
        if chat is None:
            try:
                with transaction.atomic():
                    chat = Chat.objects.create(kind=ChatKind.DIRECT, direct_key=key, created_by=user)
                    created = True
            except IntegrityError:
                # Both people opened the chat at the same moment.
                chat = Chat.objects.get(direct_key=key)
        present = set(ChatMember.objects.active().filter(chat=chat).values_list("user_id", flat=True))
        added = ChatMember.objects.bulk_create(
            [ChatMember(chat=chat, user_id=pk, last_read_seq=0) for pk in (user.pk, person.pk) if pk not in present],
            ignore_conflicts=True,
        )
        _joined_publish(chat=chat, members=added)
    return chat, created


def group_chat_create(*, user: User, title: Any, member_ids: Any) -> Chat:
    """A group chat owned by `user` with these people as members.

    Every person must be someone `user` may see, and every child in safe
    mode a contact of `user`; otherwise nothing is created.

    Raises ApplicationError (invalid title or list), NotFound "user_not_found"
    and PermissionDenied "contact_not_allowed".

    Side effects: "chat.joined" to every member after commit.
    """
    title = title_clean(title)
    if not isinstance(member_ids, list) or len(member_ids) > GROUP_MEMBERS_MAX:
        raise ApplicationError(
            _("member_ids must be a list of at most %(limit)d ids.") % {"limit": GROUP_MEMBERS_MAX},
            code="invalid",
            extra={"field": "member_ids"},
        )
    people: dict[int, User] = {}
    for user_id in member_ids:
        if user_id == user.pk or user_id in people:
            continue
        people[user_id] = _person_get(user=user, user_id=user_id, field="member_ids")
    with transaction.atomic():
        chat = Chat.objects.create(kind=ChatKind.GROUP, title=title, created_by=user)
        members = ChatMember.objects.bulk_create(
            [ChatMember(chat=chat, user=user, role=MemberRole.OWNER)]
            + [ChatMember(chat=chat, user=person) for person in people.values()]
        )
        _joined_publish(chat=chat, members=members)
    return chat


def chat_member_add(*, actor: User, chat_id: int, user_id: Any) -> tuple[ChatMember, bool]:
    """A moderator adds a person to a group chat; returns (member, created),
    and adding someone already there changes nothing. In a class or
    staff chat a moderator may only let back someone a moderator removed,
    and only if the directory still puts them there.

    Raises NotFound (not in the chat; or "user_not_found"), PermissionDenied
    "not_moderator", "contact_not_allowed", "chat_managed_by_directory".

    Side effects: audited; "member.added" to the chat and "chat.joined" to
    the person after commit.
    """
    member = selectors.chat_member_get(user=actor, chat_id=chat_id)
    chat = member.chat
    if not selectors.member_may_moderate(member):
        raise not_moderator()
    if chat.kind in AUTO_KINDS:
        return _removed_member_readmit(actor=actor, chat=chat, user_id=user_id)
    if chat.kind != ChatKind.GROUP:
        raise PermissionDenied(_("People cannot be added to this chat."), code="not_allowed")
    person = _person_get(user=actor, user_id=user_id, field="user_id")
    with transaction.atomic():
        existing = ChatMember.objects.active().filter(chat=chat, user=person).first()
        if existing is not None:
            return existing, False
        added = ChatMember.objects.create(chat=chat, user=person, last_read_seq=chat.last_seq)
        audit_record(
            actor=actor,
            action="chat.member_add",
            target=chat,
            organisation_id=chat.organisation_id,
            changes={"user": person.pk},
        )
        events.event_publish(
            chat=chat, event={"type": "member.added", "chat": chat.pk, "user": events.author_payload(person)}
        )
        _joined_publish(chat=chat, members=[added])
    return added, True


def _removed_member_readmit(*, actor: User, chat: Chat, user_id: Any) -> tuple[ChatMember, bool]:
    from chats.services.sync import chats_sync

    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ApplicationError(_("A person's id is required."), code="invalid", extra={"field": "user_id"})
    with transaction.atomic():
        existing = ChatMember.objects.active().filter(chat=chat, user_id=user_id).first()
        if existing is not None:
            return existing, False
        if not ChatMember.objects.filter(chat=chat, user_id=user_id, is_removed=True).update(is_removed=False):
            raise managed_by_directory()
        if chat.organisation_id:
            chats_sync(organisation_ids=[chat.organisation_id])
        readmitted = ChatMember.objects.active().filter(chat=chat, user_id=user_id).first()
        if readmitted is None:
            # The directory no longer puts them here.
            raise managed_by_directory()
        audit_record(
            actor=actor,
            action="chat.member_readmit",
            target=chat,
            organisation_id=chat.organisation_id,
            changes={"user": user_id},
        )
        events.event_publish(
            chat=chat,
            event={"type": "member.added", "chat": chat.pk, "user": events.author_payload(readmitted.user)},
        )
    return readmitted, True


def chat_leave(*, user: User, chat_id: int) -> None:
    """Leave a direct or group chat (or a channel one subscribed to by hand).
    The last moderator of a group hands ownership to the longest-standing
    member.

    Raises NotFound (not in the chat) and PermissionDenied
    "chat_managed_by_directory" for class and staff chats and automatic
    subscriptions.

    Side effects: "member.removed" to the chat and "chat.left" to the person.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    chat = member.chat
    if member.is_synced or chat.kind in AUTO_KINDS:
        raise managed_by_directory()
    with transaction.atomic():
        if not ChatMember.objects.filter(pk=member.pk, left_at__isnull=True).update(left_at=timezone.now()):
            return
        remaining = ChatMember.objects.active().filter(chat=chat)
        if (
            chat.kind == ChatKind.GROUP
            and selectors.member_may_moderate(member)
            and not remaining.filter(role__in=selectors.MODERATOR_ROLES).exists()
        ):
            heir = remaining.order_by("joined_at", "id").first()
            if heir is not None:
                ChatMember.objects.filter(pk=heir.pk).update(role=MemberRole.OWNER)
        events.event_publish(chat=chat, event={"type": "member.removed", "chat": chat.pk, "user": user.pk})
        events.user_event_publish(user_id=user.pk, event={"type": "chat.left", "chat": chat.pk})


def chat_rename(*, actor: User, chat_id: int, title: Any) -> Chat:
    """A moderator renames a group chat (class and staff chats are named
    after the directory, channels by their owner's editors).

    Raises NotFound, PermissionDenied "not_moderator" /
    "chat_managed_by_directory", ApplicationError for an invalid title.

    Side effects: audited; "chat.updated" to the chat.
    """
    member = selectors.chat_member_get(user=actor, chat_id=chat_id)
    chat = member.chat
    if chat.kind in AUTO_KINDS:
        raise managed_by_directory()
    if chat.kind == ChatKind.DIRECT:
        raise PermissionDenied(_("A direct chat has no title."), code="not_allowed")
    if not selectors.member_may_moderate(member):
        raise not_moderator()
    title = title_clean(title)
    if title == chat.title:
        return chat
    with transaction.atomic():
        old = chat.title
        chat.title = title
        chat.save(update_fields=["title", "updated_at"])
        audit_record(
            actor=actor,
            action="chat.rename",
            target=chat,
            organisation_id=chat.organisation_id,
            changes={"title": [old, title]},
        )
        events.event_publish(chat=chat, event={"type": "chat.updated", "chat": chat.pk, "title": title})
    return chat


def chat_read_mark(*, user: User, chat_id: int, seq: Any) -> tuple[int, int]:
    """Move the person's read position forward to `seq` (never back, never
    past the last message); returns (read position, the chat's last seq).

    Raises NotFound (not in the chat) and ApplicationError for a bad seq.

    Side effects: "chat.read" to the person's own sockets (other devices
    update their unread counters) and "chat.seen" to the people who see the
    chat's read receipts (its staff; the other person of a direct chat),
    whose "seen by N of M" changed.
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ApplicationError(_("seq must be a message's number."), code="invalid", extra={"field": "seq"})
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    position = min(seq, member.chat.last_seq)
    with transaction.atomic():
        moved = ChatMember.objects.filter(pk=member.pk, last_read_seq__lt=position).update(last_read_seq=position)
        if moved:
            events.user_event_publish(user_id=user.pk, event={"type": "chat.read", "chat": chat_id, "seq": position})
            seen = {"type": "chat.seen", "chat": chat_id, "seq": position}
            events.user_events_publish(
                [(viewer_id, seen) for viewer_id in selectors.receipt_viewer_ids(chat=member.chat, reader_id=user.pk)],
                what="read receipts",
            )
            extensions.read_moved(user_id=user.pk, chat_id=chat_id, seq=position)
            return position, member.chat.last_seq
    return max(position, member.last_read_seq), member.chat.last_seq
