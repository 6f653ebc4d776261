"""The chats part of merging two accounts (accounts.merge): where both
accounts hold the same thing under a unique constraint (a membership of one
chat, a reaction, a vote…), the absorbed account's row is folded into the
kept one's; everything else (authorship of messages, attachments, pins) is
re-pointed by the generic pass."""

from typing import Any

from django.db.models import Exists, OuterRef

from accounts.models import User
from chats.models import (
    Acknowledgement,
    Chat,
    ChatKind,
    ChatMember,
    MemberRole,
    Mention,
    Message,
    MessageReport,
    Notification,
    OfficeHours,
    PollVote,
    Reaction,
    ScheduledMessage,
)

# Who may do more in a chat: the better role is kept.
_ROLE_RANK: dict[str, int] = {MemberRole.OWNER: 3, MemberRole.MODERATOR: 2, MemberRole.EDITOR: 1, MemberRole.MEMBER: 0}


def chats_merge_move(*, kept: User, absorbed: User) -> dict[str, int]:
    """Fold duplicates of the absorbed account into the kept one's:

    - both active in one chat: one membership with the better role, the
      furthest read position, the earlier join, synced if either was, muted
      only as long as both were;
    - the same reaction, mention, report, acknowledgement (the earlier
      time kept) or notification: one row;
    - votes in a single-choice poll both voted in: the kept account's vote;
      the same option in a multiple-choice poll: one vote;
    - a client id both used in one chat (messages, scheduled messages): the
      absorbed one's is cleared, it only made resends idempotent;
    - office hours: the kept account's;
    - direct chats: re-keyed to the kept account unless it already has a
      direct chat with that person (then both stay, each with its history)."""
    folded: dict[str, int] = {}

    def note(name: str, count: int) -> None:
        if count:
            folded["chats." + name] = folded.get("chats." + name, 0) + count

    kept_members = {member.chat_id: member for member in ChatMember.objects.active().filter(user=kept)}
    count = 0
    for member in ChatMember.objects.active().filter(user=absorbed, chat_id__in=list(kept_members)):
        twin = kept_members[member.chat_id]
        role = member.role if _ROLE_RANK.get(member.role, 0) > _ROLE_RANK.get(twin.role, 0) else twin.role
        muted_until = None
        if twin.muted_until and member.muted_until:
            muted_until = min(twin.muted_until, member.muted_until)
        ChatMember.objects.filter(pk=twin.pk).update(
            role=role,
            last_read_seq=max(twin.last_read_seq, member.last_read_seq),
            joined_at=min(twin.joined_at, member.joined_at),
            is_synced=twin.is_synced or member.is_synced,
            muted_until=muted_until,
        )
        member.delete()
        count += 1
    note("chatmember_duplicate", count)

    for label, twin_model, keys in (
        ("reaction", Reaction, ("message_id", "emoji")),
        ("mention", Mention, ("message_id",)),
        ("notification", Notification, ("kind", "message_id")),
    ):
        note(label + "_duplicate", _drop_twins(twin_model, "user_id", keys, kept, absorbed))
    note("messagereport_duplicate", _drop_twins(MessageReport, "reporter_id", ("message_id",), kept, absorbed))

    kept_acks = {ack.message_id: ack for ack in Acknowledgement.objects.filter(user=kept)}
    count = 0
    for ack in Acknowledgement.objects.filter(user=absorbed, message_id__in=list(kept_acks)):
        kept_ack = kept_acks[ack.message_id]
        if ack.created_at < kept_ack.created_at:
            Acknowledgement.objects.filter(pk=kept_ack.pk).update(created_at=ack.created_at)
        ack.delete()
        count += 1
    note("acknowledgement_duplicate", count)

    kept_single_polls = set(
        PollVote.objects.filter(user=kept, poll__allows_multiple=False).values_list("poll_id", flat=True)
    )
    note(
        "pollvote_duplicate",
        PollVote.objects.filter(user=absorbed, poll_id__in=kept_single_polls).delete()[0]
        + _drop_twins(PollVote, "user_id", ("option_id",), kept, absorbed),
    )

    note("message_client_id_cleared", _client_ids_clear(Message, kept, absorbed))
    note("scheduledmessage_client_id_cleared", _client_ids_clear(ScheduledMessage, kept, absorbed))

    if OfficeHours.objects.filter(user=kept).exists():
        note("officehours_duplicate", OfficeHours.objects.filter(user=absorbed).delete()[0])

    count = 0
    for chat in Chat.objects.filter(kind=ChatKind.DIRECT, members__user=absorbed).exclude(direct_key=None).distinct():
        low, high = (int(part) for part in (chat.direct_key or "0:0").split(":"))
        other = high if low == absorbed.pk else low
        if other == kept.pk:
            continue
        new_low, new_high = sorted((kept.pk, other))
        new_key = f"{new_low}:{new_high}"
        if not Chat.objects.filter(direct_key=new_key).exists():
            count += Chat.objects.filter(pk=chat.pk).update(direct_key=new_key)
    note("direct_chat_rekeyed", count)
    return folded


def _client_ids_clear(model: Any, kept: User, absorbed: User) -> int:
    """Clear the client ids of the absorbed account's rows that the kept
    account used in the same chat (they only made resends idempotent)."""
    same_client_id = model.objects.filter(author=kept, chat_id=OuterRef("chat_id"), client_id=OuterRef("client_id"))
    rows = model.objects.filter(author=absorbed).exclude(client_id="").filter(Exists(same_client_id))
    return int(rows.update(client_id=""))


def _drop_twins(model: type, user_field: str, keys: tuple[str, ...], kept: User, absorbed: User) -> int:
    """Delete the absorbed account's rows of `model` that the kept account
    already has with the same `keys`."""
    kept_keys = set(model.objects.filter(**{user_field: kept.pk}).values_list(*keys))  # type: ignore[attr-defined]
    twins = [
        pk
        for pk, *values in model.objects.filter(**{user_field: absorbed.pk}).values_list("pk", *keys)  # type: ignore[attr-defined]
        if tuple(values) in kept_keys
    ]
    if not twins:
        return 0
    return model.objects.filter(pk__in=twins).delete()[0]  # type: ignore[attr-defined,no-any-return]
