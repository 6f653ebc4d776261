"""Broadcast channels (SPEC §6): channels of an organisation, an authority or
the ministry; automatic subscription of the organisation's members (of the
whole subtree for an authority); editors-only posting; posts that ask for an
acknowledgement ("Ознакомлен") with statistics for the editors; a private
reply to a post's author; SMS escalation of unacknowledged posts to parents.

Fan-out: a post is one message row and one group_send to the chat's group
(chats.events), whatever the number of subscribers. Nothing is written per
subscriber when posting: "who has not acknowledged yet" is computed when
asked, as the subscribers minus the Acknowledgement rows.

The reads of channels live here too (section "Reads") beside the writes they
belong to.
"""

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.sms import SmsDeliveryError, sms_send
from chats import events, selectors
from chats.models import (
    MESSAGE_MAX_LENGTH,
    Acknowledgement,
    Chat,
    ChatKind,
    ChatMember,
    MemberRole,
    Message,
    Notification,
    ScheduledMessage,
)
from chats.services.chats import direct_chat_get_or_create
from chats.services.messages import body_clean, client_id_clean, message_send
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.services import audit_record
from organisations.extensions import OrganisationChannel
from organisations.models import (
    AUTHORITY_KINDS,
    EDUCATIONAL_KINDS,
    STAFF_ROLES,
    Guardianship,
    Membership,
    Organisation,
    Role,
    StudyGroup,
    StudyGroupStudent,
)
from organisations.selectors import (
    contact_is_allowed,
    current_academic_year,
    organisations_visible_to,
    user_administers,
)

logger = logging.getLogger(__name__)

CHANNEL_TITLE_MAX_LENGTH = 200
CHANNEL_DESCRIPTION_MAX_LENGTH = 2000
ESCALATE_AFTER_HOURS_MAX = 24 * 7
# How much of a post a private reply quotes.
QUOTE_EXCERPT_LENGTH = 80
# How much of a channel's title an escalation SMS names.
SMS_TITLE_LENGTH = 60
ESCALATION_BATCH = 50
SUBSCRIPTION_INSERT_BATCH = 1000
# A new channel whose audience is bigger than this (an authority's region)
# is not subscribed within the request that creates it: a Celery task does
# it after the commit, a batch at a time (`channel_subscriptions_fill`). A
# school's channel is complete at once, as its creator expects.
SUBSCRIPTION_INLINE_MAX = 1000
SYNC_EVENTS_MAX = 1000
STATISTICS_PAGE_MAX = 200
STATISTICS_ORGANISATIONS_SHOWN = 200
# An organisation's page lists at most this many of its channels.
ORGANISATION_PAGE_CHANNELS_MAX = 50
EDITOR_ROLES = (MemberRole.OWNER, MemberRole.MODERATOR, MemberRole.EDITOR)


# --- Access ---------------------------------------------------------------------


def channel_not_found() -> NotFound:
    """One answer for a channel that does not exist and one the person may
    not see."""
    return NotFound(_("Not found."))


def _channels() -> QuerySet[Chat]:
    return Chat.objects.filter(kind=ChatKind.CHANNEL, is_archived=False)


def channel_visibility_filter(*, user: User) -> Q:
    """A filter on Chat: the channels a person may see: the ones they are
    subscribed to, and the public channels of organisations the directory
    shows them (so a student or a guest sees only their own organisations')."""
    return Q(pk__in=ChatMember.objects.active().filter(user=user).values("chat_id")) | Q(
        is_public=True, organisation_id__in=organisations_visible_to(user=user).values("pk")
    )


def channel_member_get(*, user: User, chat_id: int) -> ChatMember:
    """The person's subscription of a channel (any role), with the channel.

    Raises NotFound when it is not a channel or the person is not in it.
    """
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    if member.chat.kind != ChatKind.CHANNEL:
        raise channel_not_found()
    return member


def channel_editor_member_get(*, user: User, chat_id: int) -> ChatMember:
    """The person's membership of a channel where they are an editor.

    Raises NotFound (not a subscriber) or PermissionDenied "not_channel_editor".
    """
    member = channel_member_get(user=user, chat_id=chat_id)
    if member.role not in EDITOR_ROLES:
        raise PermissionDenied(_("Only the channel's editors may do this."), code="not_channel_editor")
    return member


def channel_may_manage(*, user: User, chat: Chat) -> bool:
    """The channel's owner and the administrators of its organisation (and
    platform superusers) add editors."""
    if not user.is_authenticated or not user.is_active:
        return False
    if ChatMember.objects.active().filter(chat=chat, user=user, role=MemberRole.OWNER).exists():
        return True
    return chat.organisation is not None and user_administers(user=user, organisation=chat.organisation)


def channel_is_verified(chat: Chat) -> bool:
    """The official badge: set by the server when the channel was created by
    an administrator of a verified organisation, and shown only while the
    organisation stays verified."""
    return bool(chat.is_verified and chat.organisation is not None and chat.organisation.is_verified)


# --- Reads ----------------------------------------------------------------------


def _annotated(queryset: QuerySet[Chat], *, user: User) -> QuerySet[Chat]:
    """Each channel with the person's subscription (role, automatic or not)
    and the number of its posts waiting for the person's acknowledgement."""
    mine = ChatMember.objects.active().filter(chat=OuterRef("pk"), user=user)
    awaiting = (
        Message.objects.filter(chat=OuterRef("pk"), requires_acknowledgement=True, deleted_at__isnull=True)
        .filter(~Exists(Acknowledgement.objects.filter(message=OuterRef("pk"), user=user)))
        .order_by()
        .values("chat")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return queryset.select_related("organisation").annotate(
        is_subscribed=Exists(mine),
        my_role=Subquery(mine.values("role")[:1]),
        is_automatic=Coalesce(Subquery(mine.values("is_synced")[:1]), Value(False), output_field=BooleanField()),
        awaiting_count=Coalesce(Subquery(awaiting), Value(0), output_field=IntegerField()),
    )


def channel_list(*, user: User, organisation_id: int | None = None, subscribed: bool | None = None) -> QuerySet[Chat]:
    """The channels a person subscribes to and the public ones they may
    subscribe to, subscriptions first, then the most recently active. One
    query for a page whatever its size."""
    if not user.is_authenticated or not user.is_active:
        return Chat.objects.none()
    channels = _annotated(_channels().filter(channel_visibility_filter(user=user)), user=user)
    if organisation_id is not None:
        channels = channels.filter(organisation_id=organisation_id)
    if subscribed is not None:
        mine = Exists(ChatMember.objects.active().filter(chat=OuterRef("pk"), user=user))
        channels = channels.filter(mine if subscribed else ~mine)
    return channels.order_by("-is_subscribed", "-updated_at", "-id")


def channel_get(*, user: User, chat_id: int) -> Chat:
    """A channel the person may see, annotated like `channel_list`.

    Raises NotFound otherwise (a private channel of another organisation
    answers exactly like one that does not exist).
    """
    if not user.is_authenticated or not user.is_active:
        raise channel_not_found()
    chat = channel_list(user=user).filter(pk=chat_id).first()
    if chat is None:
        raise channel_not_found()
    return chat


def awaiting_acknowledgement_count(chat: Chat) -> int:
    """Of an annotated channel: posts the person still has to acknowledge
    (none for its editors and for people not subscribed)."""
    if getattr(chat, "my_role", None) != MemberRole.MEMBER:
        return 0
    return int(getattr(chat, "awaiting_count", 0) or 0)


def organisation_channels_list(*, user: User, organisation: Organisation) -> list[OrganisationChannel]:
    """The organisation's channels for its directory page (the provider of
    organisations.extensions): its official (verified) channels, and the
    others the person may see (subscribed, or public); each with its number
    of subscribers and, when the person may open it, its page. Official
    first. One query."""
    if not user.is_authenticated or not user.is_active:
        return []
    visible = channel_visibility_filter(user=user)
    subscribers = (
        ChatMember.objects.active()
        .filter(chat=OuterRef("pk"))
        .order_by()
        .values("chat")
        .annotate(total=Count("pk"))
        .values("total")
    )
    official = Q(is_verified=True, organisation__is_verified=True)
    chats = (
        _channels()
        .filter(organisation=organisation)
        .filter(official | visible)
        .annotate(
            is_official=Case(When(official, then=Value(True)), default=Value(False), output_field=BooleanField()),
            may_open=Case(When(visible, then=Value(True)), default=Value(False), output_field=BooleanField()),
            subscribers=Coalesce(Subquery(subscribers), Value(0), output_field=IntegerField()),
        )
        .order_by("-is_official", "title", "pk")[:ORGANISATION_PAGE_CHANNELS_MAX]
    )
    return [
        OrganisationChannel(
            title=chat.title,
            is_verified=chat.is_official,
            subscribers=chat.subscribers,
            url=reverse("chats:channel_detail", args=[chat.pk]) if chat.may_open else None,
        )
        for chat in chats
    ]


def channel_editors(*, chat_id: int, limit: int) -> list[User]:
    """The people who post in a channel (its owner, moderators and editors),
    at most `limit`, by id. One query."""
    editors = ChatMember.objects.active().filter(chat_id=chat_id, role__in=EDITOR_ROLES).values("user_id")
    return list(User.objects.filter(pk__in=editors, is_active=True).order_by("pk")[:limit])


def channel_posts_page(*, member: ChatMember, before_seq: int | None, limit: int) -> tuple[list[Message], bool]:
    """A page of the channel's posts, oldest first, before `before_seq` (the
    newest page when None), and whether older ones exist."""
    posts = Message.objects.filter(chat_id=member.chat_id).select_related("author", "reply_to")
    if before_seq is not None:
        posts = posts.filter(seq__lt=before_seq)
    page = list(posts.order_by("-seq")[: limit + 1])
    has_older = len(page) > limit
    return list(reversed(page[:limit])), has_older


@dataclass
class PostSummary:
    read: int
    acknowledged: int


@dataclass
class PostsState:
    """What the reader of a page of posts sees beside them: which they have
    acknowledged and, for editors, how many subscribers read and
    acknowledged each."""

    acknowledged_ids: set[int]
    subscribers: int | None = None
    summaries: dict[int, PostSummary] = field(default_factory=dict)


def channel_posts_state(*, member: ChatMember, posts: Sequence[Message]) -> PostsState:
    """Acknowledgements of the reader on `posts`, and for editors the read
    and acknowledgement counts of each: three queries whatever the number of
    posts and subscribers."""
    ids = [post.pk for post in posts]
    acknowledged_ids = set(
        Acknowledgement.objects.filter(user_id=member.user_id, message_id__in=ids).values_list("message_id", flat=True)
    )
    state = PostsState(acknowledged_ids=acknowledged_ids)
    if member.role not in EDITOR_ROLES:
        return state
    subscribers = _subscribers(member.chat_id)
    if not posts:
        # The audience still counts: posts that arrive live say "read by 0 of N".
        state.subscribers = subscribers.count()
        return state
    aggregates: dict[str, Any] = {"subscribers": Count("pk")}
    for post in posts:
        aggregates[f"read_{post.seq}"] = Count("pk", filter=Q(last_read_seq__gte=post.seq))
    counts = subscribers.aggregate(**aggregates)
    acknowledged = dict(
        Acknowledgement.objects.filter(
            message_id__in=[post.pk for post in posts if post.requires_acknowledgement],
            user_id__in=subscribers.values("user_id"),
        )
        .values("message_id")
        .annotate(total=Count("pk"))
        .values_list("message_id", "total")
    )
    state.subscribers = counts["subscribers"]
    state.summaries = {
        post.pk: PostSummary(read=counts[f"read_{post.seq}"], acknowledged=acknowledged.get(post.pk, 0))
        for post in posts
    }
    return state


def _subscribers(chat_id: int) -> QuerySet[ChatMember]:
    """The audience of a channel's posts: active subscribers, not its editors."""
    return ChatMember.objects.active().filter(chat_id=chat_id, role=MemberRole.MEMBER)


def _post_get(*, chat_id: int, seq: int) -> Message:
    post = Message.objects.select_related("author", "chat").filter(chat_id=chat_id, seq=seq).first()
    if post is None or post.deleted_at is not None:
        raise NotFound(_("Not found."))
    return post


@dataclass
class GroupStatistics:
    id: int
    name: str
    subscribers: int = 0
    read: int = 0
    acknowledged: int = 0


@dataclass
class ClassStatistics:
    id: int
    name: str
    students: int = 0
    students_acknowledged: int = 0
    parents: int = 0
    parents_acknowledged: int = 0


@dataclass
class PostStatistics:
    post: Message
    subscribers: int
    read: int
    acknowledged: int
    not_acknowledged_count: int
    # Names are shown only in the channels of a school, kindergarten or
    # college, whose editors are its staff and know these people anyway; an
    # authority's editors see counts per organisation, never a region's
    # children by name.
    names_shown: bool
    not_acknowledged: list[User] = field(default_factory=list)
    by_organisation: list[GroupStatistics] = field(default_factory=list)
    by_class: list[ClassStatistics] = field(default_factory=list)


def post_statistics_get(*, user: User, chat_id: int, seq: int, offset: int = 0, limit: int = 50) -> PostStatistics:
    """Read and acknowledgement statistics of a post for the channel's
    editors: subscribers, how many read it (read position at or past it),
    how many acknowledged it, a page of those who did not (by name, in an
    organisation's own channels), and counts per organisation and per class.
    A constant number of queries whatever the number of subscribers.

    Raises NotFound (not a subscriber, no such post) and PermissionDenied
    "not_channel_editor".
    """
    member = channel_editor_member_get(user=user, chat_id=chat_id)
    chat = member.chat
    post = _post_get(chat_id=chat_id, seq=seq)
    post.chat = chat
    offset = max(0, offset)
    limit = max(1, min(limit, STATISTICS_PAGE_MAX))
    subscribers = _subscribers(chat_id)
    acknowledged_users = Acknowledgement.objects.filter(message=post).values("user_id")
    counts = subscribers.aggregate(
        subscribers=Count("pk"),
        read=Count("pk", filter=Q(last_read_seq__gte=seq)),
        acknowledged=Count("pk", filter=Q(user_id__in=acknowledged_users)),
    )
    organisation = selectors.chat_organisation(chat)
    names_shown = bool(post.requires_acknowledgement and organisation and organisation.kind in EDUCATIONAL_KINDS)
    statistics = PostStatistics(
        post=post,
        subscribers=counts["subscribers"],
        read=counts["read"],
        acknowledged=counts["acknowledged"] if post.requires_acknowledgement else 0,
        not_acknowledged_count=(counts["subscribers"] - counts["acknowledged"]) if post.requires_acknowledgement else 0,
        names_shown=names_shown,
    )
    if names_shown:
        statistics.not_acknowledged = list(
            User.objects.filter(pk__in=subscribers.exclude(user_id__in=acknowledged_users).values("user_id")).order_by(
                "last_name", "first_name", "id"
            )[offset : offset + limit]
        )
    if organisation is None:
        return statistics
    subscriber_ids = subscribers.values("user_id")
    read_ids = subscribers.filter(last_read_seq__gte=seq).values("user_id")
    memberships = Membership.objects.active().filter(user_id__in=subscriber_ids)
    if organisation.kind in AUTHORITY_KINDS:
        memberships = memberships.filter(organisation__path__startswith=organisation.path)
    else:
        memberships = memberships.filter(organisation=organisation)
    statistics.by_organisation = [
        GroupStatistics(
            id=row["organisation_id"],
            name=row["organisation__short_name"],
            subscribers=row["subscribers"],
            read=row["read"],
            acknowledged=row["acknowledged"] if post.requires_acknowledgement else 0,
        )
        for row in memberships.values("organisation_id", "organisation__short_name")
        .annotate(
            subscribers=Count("user_id", distinct=True),
            read=Count("user_id", distinct=True, filter=Q(user_id__in=read_ids)),
            acknowledged=Count("user_id", distinct=True, filter=Q(user_id__in=acknowledged_users)),
        )
        .order_by("organisation__short_name", "organisation_id")[:STATISTICS_ORGANISATIONS_SHOWN]
    ]
    if organisation.kind in EDUCATIONAL_KINDS:
        statistics.by_class = _class_statistics(
            organisation=organisation, subscriber_ids=subscriber_ids, acknowledged_users=acknowledged_users
        )
    return statistics


def _class_statistics(
    *, organisation: Organisation, subscriber_ids: QuerySet[Any], acknowledged_users: QuerySet[Any]
) -> list[ClassStatistics]:
    """Per class of the current academic year: its students and their
    guardians among the subscribers, and how many of each acknowledged.
    Three queries."""
    year = current_academic_year()
    classes = {
        group["id"]: ClassStatistics(id=group["id"], name=group["name"])
        for group in StudyGroup.objects.filter(organisation=organisation, academic_year=year)
        .order_by("grade", "name", "id")
        .values("id", "name")
    }
    if not classes:
        return []
    for row in (
        StudyGroupStudent.objects.filter(group_id__in=classes.keys(), student_id__in=subscriber_ids)
        .values("group_id")
        .annotate(
            total=Count("student_id", distinct=True),
            acknowledged=Count("student_id", distinct=True, filter=Q(student_id__in=acknowledged_users)),
        )
    ):
        classes[row["group_id"]].students = row["total"]
        classes[row["group_id"]].students_acknowledged = row["acknowledged"]
    for row in (
        Guardianship.objects.filter(
            ended_at__isnull=True,
            parent_id__in=subscriber_ids,
            student__studygroupstudent__group_id__in=classes.keys(),
        )
        .values("student__studygroupstudent__group_id")
        .annotate(
            total=Count("parent_id", distinct=True),
            acknowledged=Count("parent_id", distinct=True, filter=Q(parent_id__in=acknowledged_users)),
        )
    ):
        group_id = row["student__studygroupstudent__group_id"]
        classes[group_id].parents = row["total"]
        classes[group_id].parents_acknowledged = row["acknowledged"]
    return list(classes.values())


# --- Subscriptions kept in step with the directory ------------------------------


def _audience_user_ids(organisation: Organisation) -> QuerySet[Any]:
    """Who is subscribed automatically: the organisation's members, and for
    an authority the members of every organisation under it."""
    memberships = Membership.objects.active()
    if organisation.kind in AUTHORITY_KINDS:
        memberships = memberships.filter(organisation__path__startswith=organisation.path)
    else:
        memberships = memberships.filter(organisation=organisation)
    return memberships.values("user_id")


@dataclass
class SyncResult:
    added: int = 0
    ended: int = 0


def channel_subscriptions_sync(*, chat: Chat, organisation_ids: Iterable[int] | None = None) -> SyncResult:
    """Bring a channel's automatic subscriptions in step with the directory:
    subscribe the audience (see `_audience_user_ids`), end the automatic
    subscriptions of people who left it, and mark the subscriptions of
    people in it as automatic ("membership wins": they cannot unsubscribe
    while they are members). Someone a moderator removed is not brought back.

    With `organisation_ids`, only people who have (or had) a membership in
    those organisations are looked at, so a change in one school does not
    walk a region's subscribers. A few set-based queries plus one insert per
    thousand new subscribers.
    """
    organisation = selectors.chat_organisation(chat)
    if organisation is None:
        return SyncResult()
    audience = _audience_user_ids(organisation)
    candidates = None
    if organisation_ids is not None:
        candidates = Membership.objects.filter(organisation_id__in=list(organisation_ids)).values("user_id")
    result = SyncResult()
    with transaction.atomic():
        active = ChatMember.objects.active().filter(chat=chat)
        if candidates is not None:
            active = active.filter(user_id__in=candidates)
        leaving = active.filter(is_synced=True).exclude(user_id__in=audience)
        left_ids = list(leaving.values_list("user_id", flat=True)[: SYNC_EVENTS_MAX + 1])
        result.ended = leaving.update(left_at=timezone.now())
        active.filter(is_synced=False, user_id__in=audience).update(is_synced=True)
        newcomers = (
            User.objects.filter(is_active=True, pk__in=audience)
            .exclude(pk__in=ChatMember.objects.active().filter(chat=chat).values("user_id"))
            .exclude(pk__in=ChatMember.objects.filter(chat=chat, is_removed=True).values("user_id"))
        )
        if candidates is not None:
            newcomers = newcomers.filter(pk__in=candidates)
        # Joining now: the channel's history counts as read, so a new pupil
        # does not start with a year of unread posts.
        last_seq = Chat.objects.filter(pk=chat.pk).values_list("last_seq", flat=True).get()
        joined_ids: list[int] = []
        batch: list[ChatMember] = []
        for user_id in newcomers.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=2000):
            if len(joined_ids) <= SYNC_EVENTS_MAX:
                joined_ids.append(user_id)
            batch.append(
                ChatMember(chat=chat, user_id=user_id, role=MemberRole.MEMBER, is_synced=True, last_read_seq=last_seq)
            )
            if len(batch) >= SUBSCRIPTION_INSERT_BATCH:
                result.added += _members_insert(batch)
                batch = []
        if batch:
            result.added += _members_insert(batch)
        # Open sockets follow the change ("chat.joined"/"chat.left" make them
        # listen to the channel or stop). When a whole region is subscribed
        # at once, telling each person would cost one message per person,
        # online or not: the sockets then pick the channel up on their next
        # "sync" or reconnect instead.
        if len(joined_ids) <= SYNC_EVENTS_MAX:
            for user_id in joined_ids:
                events.user_event_publish(user_id=user_id, event={"type": "chat.joined", "chat": chat.pk})
        if len(left_ids) <= SYNC_EVENTS_MAX:
            for user_id in left_ids:
                events.user_event_publish(user_id=user_id, event={"type": "chat.left", "chat": chat.pk})
    return result


def channel_subscriptions_fill(*, chat_id: int, after_user_id: int = 0, batch: int | None = None) -> int | None:
    """Subscribe the next batch of a channel's audience: the people (by id,
    after `after_user_id`) who are not subscribed yet. Returns the last id of
    the batch to continue after, or None when the audience is done or the
    channel is gone (archived).

    Idempotent, so a task may run a batch twice (a retry, a lost worker):
    people already subscribed keep their one subscription (marked automatic,
    "membership wins"), and people a moderator removed are not brought back.
    One short transaction per batch; no per-person events (the sockets pick
    the channel up on their next connect, as for the resync).
    """
    batch = batch or SUBSCRIPTION_INSERT_BATCH
    chat = _channels().select_related("organisation").filter(pk=chat_id).first()
    if chat is None or chat.organisation is None:
        return None
    user_ids = list(
        User.objects.filter(is_active=True, pk__gt=after_user_id, pk__in=_audience_user_ids(chat.organisation))
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    if not user_ids:
        return None
    with transaction.atomic():
        subscribed_or_removed = set(
            ChatMember.objects.filter(chat=chat, user_id__in=user_ids)
            .filter(Q(left_at__isnull=True) | Q(is_removed=True))
            .values_list("user_id", flat=True)
        )
        ChatMember.objects.active().filter(chat=chat, user_id__in=user_ids, is_synced=False).update(is_synced=True)
        last_seq = Chat.objects.filter(pk=chat.pk).values_list("last_seq", flat=True).get()
        _members_insert(
            [
                ChatMember(chat=chat, user_id=user_id, role=MemberRole.MEMBER, is_synced=True, last_read_seq=last_seq)
                for user_id in user_ids
                if user_id not in subscribed_or_removed
            ]
        )
    return user_ids[-1] if len(user_ids) == batch else None


def _subscriptions_fill_queue(chat_id: int) -> None:
    """After the channel's commit: the task that subscribes its audience.
    A broker that is down loses nothing for good: the nightly resync
    (`channels_resync_all`) subscribes everyone the task did not."""
    from chats.tasks_channels import channel_subscriptions_fill as fill_task

    try:
        fill_task.delay(chat_id)
    except Exception:
        logger.exception("channel %s: subscription task not queued; the nightly resync subscribes them", chat_id)


def _members_insert(batch: list[ChatMember]) -> int:
    # ignore_conflicts: a person who subscribed by hand a moment ago keeps
    # that subscription (the partial unique index on active rows refuses the
    # second one).
    ChatMember.objects.bulk_create(batch, ignore_conflicts=True)
    return len(batch)


def channels_directory_hook(organisation_ids: set[int]) -> None:
    """The directory hook (organisations.extensions): after memberships,
    classes or guardianships of these organisations changed, resync the
    channels whose audience they belong to: the organisations' own channels
    and the channels of the authorities above them."""
    if not organisation_ids:
        return
    ancestor_ids: set[int] = set()
    for path in Organisation.objects.filter(pk__in=organisation_ids).values_list("path", flat=True):
        ancestor_ids.update(int(part) for part in path.strip("/").split("/") if part.isdigit())
    channels = (
        _channels()
        .filter(
            Q(organisation_id__in=organisation_ids)
            | Q(organisation_id__in=ancestor_ids, organisation__kind__in=AUTHORITY_KINDS)
        )
        .select_related("organisation")
        .order_by("pk")
    )
    for chat in channels:
        # Runs after the directory's commit: a failure must neither hide
        # that change nor stop the other channels and hooks. The nightly
        # resync (tasks_channels.channel_subscriptions_resync) repairs.
        try:
            channel_subscriptions_sync(chat=chat, organisation_ids=organisation_ids)
        except Exception:
            logger.exception("channel %s: subscriptions not synced; the nightly resync repairs them", chat.pk)


def channels_resync_all() -> int:
    """Full resync of every channel (a nightly safety net for changes the
    hook cannot see, e.g. a school moved to another authority); returns how
    many subscriptions changed."""
    changed = 0
    for chat in _channels().select_related("organisation").order_by("pk"):
        result = channel_subscriptions_sync(chat=chat)
        changed += result.added + result.ended
    return changed


# --- Channels, editors, subscriptions ------------------------------------------


def _text_clean(value: Any, *, field_name: str, max_length: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApplicationError(_("Enter text."), code="invalid", extra={"field": field_name})
    value = value.strip()
    if required and not value:
        raise ApplicationError(_("This field is required."), code="invalid", extra={"field": field_name})
    if len(value) > max_length:
        raise ApplicationError(
            _("At most %(limit)d characters.") % {"limit": max_length}, code="invalid", extra={"field": field_name}
        )
    return value


def channel_create(
    *, actor: User, organisation: Organisation, title: Any, description: Any = "", is_public: bool = False
) -> Chat:
    """Create a broadcast channel of an organisation; its administrators
    (and platform superusers) may. The creator becomes its owner and the
    organisation's members (the subtree's, for an authority) are subscribed:
    at once when they are at most SUBSCRIPTION_INLINE_MAX, else by a Celery
    task queued after the commit (tasks_channels.channel_subscriptions_fill),
    so that creating a region's channel does not hold the request. The
    channel is official (verified) when the organisation is verified: the
    badge is never taken from input.

    Raises PermissionDenied "not_organisation_administrator" and
    ApplicationError (invalid title or description). Audited.
    """
    if not user_administers(user=actor, organisation=organisation):
        raise PermissionDenied(
            _("Only the organisation's administrators create its channels."), code="not_organisation_administrator"
        )
    title = _text_clean(title, field_name="title", max_length=CHANNEL_TITLE_MAX_LENGTH, required=True)
    description = _text_clean(
        description, field_name="description", max_length=CHANNEL_DESCRIPTION_MAX_LENGTH, required=False
    )
    with transaction.atomic():
        chat = Chat.objects.create(
            kind=ChatKind.CHANNEL,
            title=title,
            description=description,
            organisation=organisation,
            created_by=actor,
            is_public=bool(is_public),
            is_verified=organisation.is_verified,
        )
        ChatMember.objects.create(chat=chat, user=actor, role=MemberRole.OWNER)
        # Counting stops past the limit: a region's memberships are not counted.
        audience_size = _audience_user_ids(organisation)[: SUBSCRIPTION_INLINE_MAX + 1].count()
        if audience_size > SUBSCRIPTION_INLINE_MAX:
            transaction.on_commit(partial(_subscriptions_fill_queue, chat.pk))
        else:
            channel_subscriptions_sync(chat=chat)
        audit_record(
            actor=actor,
            action="channel.create",
            target=chat,
            organisation_id=organisation.pk,
            changes={"title": title, "is_public": chat.is_public, "is_verified": chat.is_verified},
        )
    return chat


def channel_editor_add(*, actor: User, chat_id: int, user_id: Any) -> tuple[ChatMember, bool]:
    """Make a staff member of the channel's organisation one of its editors;
    returns (membership, changed). Idempotent.

    Raises NotFound (a channel the actor may not see), PermissionDenied
    "not_channel_manager" (neither its owner nor an administrator of its
    organisation) and ApplicationError "editor_not_staff". Audited.
    """
    chat = channel_get(user=actor, chat_id=chat_id)
    if not channel_may_manage(user=actor, chat=chat):
        raise PermissionDenied(
            _("Only the channel's owner and the organisation's administrators add editors."),
            code="not_channel_manager",
        )
    editor = None
    if isinstance(user_id, int) and not isinstance(user_id, bool) and chat.organisation_id is not None:
        editor = (
            User.objects.filter(
                pk=user_id,
                is_active=True,
                memberships__organisation_id=chat.organisation_id,
                memberships__role__in=STAFF_ROLES,
                memberships__ended_at__isnull=True,
            )
            .distinct()
            .first()
        )
    if editor is None:
        raise ApplicationError(
            _("An editor must be on the staff of the channel's organisation."),
            code="editor_not_staff",
            extra={"field": "user_id"},
        )
    with transaction.atomic():
        member = ChatMember.objects.active().select_for_update().filter(chat=chat, user=editor).first()
        if member is not None and member.role in EDITOR_ROLES:
            return member, False
        if member is not None:
            member.role = MemberRole.EDITOR
            member.save(update_fields=["role"])
        else:
            # Staff of the organisation are in its audience: the directory
            # sync keeps the row and ends it when they leave.
            member = ChatMember.objects.create(
                chat=chat, user=editor, role=MemberRole.EDITOR, is_synced=True, last_read_seq=chat.last_seq
            )
            events.user_event_publish(user_id=editor.pk, event={"type": "chat.joined", "chat": chat.pk})
        audit_record(
            actor=actor,
            action="channel.editor_add",
            target=chat,
            organisation_id=chat.organisation_id,
            changes={"user": editor.pk},
        )
    return member, True


def channel_subscribe(*, user: User, chat_id: int) -> tuple[ChatMember, bool]:
    """Subscribe to a channel from the directory; returns (subscription,
    created). Idempotent: a subscriber gets their subscription back.

    Raises NotFound when the channel is neither public in an organisation the
    person may see nor already theirs.
    """
    chat = channel_get(user=user, chat_id=chat_id)
    existing = ChatMember.objects.active().filter(chat=chat, user=user).first()
    if existing is not None:
        return existing, False
    if ChatMember.objects.filter(chat=chat, user=user, is_removed=True).exists():
        raise PermissionDenied(_("A moderator removed you from this channel."), code="removed_from_chat")
    try:
        with transaction.atomic():
            member = ChatMember.objects.create(
                chat=chat, user=user, role=MemberRole.MEMBER, is_synced=False, last_read_seq=chat.last_seq
            )
            events.user_event_publish(user_id=user.pk, event={"type": "chat.joined", "chat": chat.pk})
    except IntegrityError:
        # A parallel request (or the directory sync) subscribed them first.
        return ChatMember.objects.active().get(chat=chat, user=user), False
    return member, True


def channel_unsubscribe(*, user: User, chat_id: int) -> None:
    """Leave a channel one subscribed to from the directory.

    A member of the channel's organisation is subscribed automatically and
    stays subscribed while a member: the organisation's announcements reach
    everyone in it. Such a subscriber may only mute the channel.

    Raises NotFound (not subscribed) and ApplicationError
    "subscription_automatic" (409).
    """
    member = channel_member_get(user=user, chat_id=chat_id)
    if member.is_synced:
        raise ApplicationError(
            _("Members of the organisation stay subscribed to its channel while they are members."),
            code="subscription_automatic",
            status_code=409,
        )
    with transaction.atomic():
        if ChatMember.objects.filter(pk=member.pk, left_at__isnull=True).update(left_at=timezone.now()):
            events.user_event_publish(user_id=user.pk, event={"type": "chat.left", "chat": member.chat_id})


# --- Posts and acknowledgements -------------------------------------------------


def _escalate_after_hours_clean(value: Any, *, requires_acknowledgement: bool) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ESCALATE_AFTER_HOURS_MAX:
        raise ApplicationError(
            _("Escalate after 1 to %(limit)d hours.") % {"limit": ESCALATE_AFTER_HOURS_MAX},
            code="invalid",
            extra={"field": "escalate_after_hours"},
        )
    if not requires_acknowledgement:
        raise ApplicationError(
            _("Only a post that asks for an acknowledgement can be escalated."),
            code="invalid",
            extra={"field": "escalate_after_hours"},
        )
    return value


def channel_post(
    *,
    user: User,
    chat_id: int,
    body: Any,
    client_id: Any = "",
    requires_acknowledgement: bool = False,
    escalate_after_hours: Any = None,
) -> tuple[Message, bool]:
    """Post to a channel as one of its editors; returns (post, created).

    The post is one message (chats.services.messages.message_send: committed
    with the next seq, then one event to the chat's group); nothing is
    written per subscriber. With `escalate_after_hours`, the guardians of
    students who have not acknowledged it by then get an SMS
    (`escalations_run`). A resend with the same client_id returns the first
    post unchanged.

    Raises NotFound (not a subscriber), PermissionDenied "channel_read_only"
    (not an editor) and ApplicationError (invalid input).
    """
    requires_acknowledgement = bool(requires_acknowledgement)
    hours = _escalate_after_hours_clean(escalate_after_hours, requires_acknowledgement=requires_acknowledgement)
    channel_member_get(user=user, chat_id=chat_id)
    with transaction.atomic():
        message, created = message_send(
            user=user,
            chat_id=chat_id,
            body=body,
            client_id=client_id,
            requires_acknowledgement=requires_acknowledgement,
        )
        if not isinstance(message, Message):
            # Office hours apply to direct chats only; a channel post is never held.
            raise ApplicationError(_("The post could not be sent."), code="invalid")
        if created and hours is not None:
            message.escalate_at = message.created_at + datetime.timedelta(hours=hours)
            Message.objects.filter(pk=message.pk).update(escalate_at=message.escalate_at)
    return message, created


def acknowledgement_create(*, user: User, chat_id: int, seq: int) -> tuple[Acknowledgement, bool]:
    """Acknowledge ("Ознакомлен") a channel post; returns (acknowledgement,
    created). Idempotent. Acknowledging also marks the post read.

    Raises NotFound (not a subscriber, no such post) and ApplicationError
    "acknowledgement_not_required".
    """
    member = channel_member_get(user=user, chat_id=chat_id)
    post = _post_get(chat_id=chat_id, seq=seq)
    if not post.requires_acknowledgement:
        raise ApplicationError(_("This post does not ask for an acknowledgement."), code="acknowledgement_not_required")
    try:
        with transaction.atomic():
            acknowledgement, created = Acknowledgement.objects.get_or_create(message=post, user=user)
    except IntegrityError:
        acknowledgement, created = Acknowledgement.objects.get(message=post, user=user), False
    ChatMember.objects.filter(pk=member.pk, last_read_seq__lt=seq).update(last_read_seq=seq)
    return acknowledgement, created


# --- Private reply to a post's author ------------------------------------------


def _quote_line(*, chat: Chat, post: Message) -> str:
    text = " ".join(post.body.split())
    if len(text) > QUOTE_EXCERPT_LENGTH:
        text = text[: QUOTE_EXCERPT_LENGTH - 1] + "…"
    return _("In reply to the post in «%(channel)s»: «%(excerpt)s»") % {"channel": chat.title, "excerpt": text}


@dataclass
class PrivateReply:
    chat: Chat
    message: Message | ScheduledMessage
    created: bool


def private_reply_send(*, user: User, chat_id: int, seq: int, body: Any, client_id: Any = "") -> PrivateReply:
    """Reply privately to the author of a channel post: a message, opening
    with a line quoting the post, in the direct chat of the two (created on
    the first reply). The author is told (a "reply" notification).

    Safe mode: a child may reply only to an author who is one of the
    child's contacts (organisations.selectors.contact_is_allowed), e.g. a
    teacher of the child's school but not an official of the ministry,
    because the reply opens a conversation the author could continue.

    Raises NotFound (not a subscriber, no such post), PermissionDenied
    "contact_not_allowed", ApplicationError "private_reply_unavailable"
    (one's own post, or an author no longer here) and the errors of
    message_send.
    """
    text = body_clean(body)
    client_id = client_id_clean(client_id)
    member = channel_member_get(user=user, chat_id=chat_id)
    post = _post_get(chat_id=chat_id, seq=seq)
    author = post.author
    if author is None or not author.is_active or author.pk == user.pk:
        raise ApplicationError(_("This post cannot be answered privately."), code="private_reply_unavailable")
    if user.is_safe_mode and not contact_is_allowed(actor=author, child=user):
        raise PermissionDenied(
            _("You can reply privately only to your teachers and school staff."), code="contact_not_allowed"
        )
    quote = _quote_line(chat=member.chat, post=post)
    limit = MESSAGE_MAX_LENGTH - len(quote) - 2
    if len(text) > limit:
        raise ApplicationError(
            _("A reply may have at most %(limit)d characters.") % {"limit": limit},
            code="message_too_long",
            extra={"field": "body"},
        )
    with transaction.atomic():
        direct, _created = direct_chat_get_or_create(user=user, other=author)
        message, created = message_send(user=user, chat_id=direct.pk, body=quote + "\n\n" + text, client_id=client_id)
        if created and isinstance(message, Message):
            Notification.objects.get_or_create(
                user=author, kind=Notification.Kind.REPLY, message=message, defaults={"chat": direct}
            )
    return PrivateReply(chat=direct, message=message, created=created)


# --- SMS escalation -----------------------------------------------------------------


@dataclass(frozen=True)
class EscalationRecipient:
    user_id: int
    phone: str
    language: str


def escalation_recipients(*, post: Message) -> tuple[int, list[EscalationRecipient]]:
    """Who gets an SMS about an unacknowledged post: (the number of student
    subscribers who have not acknowledged it, their guardians). Each
    guardian once, however many of their children are in the list, and not
    a guardian who acknowledged the post themselves. Ordered by id, so the
    same data gives the same list. Two queries."""
    acknowledged = Acknowledgement.objects.filter(message=post).values("user_id")
    students = (
        _subscribers(post.chat_id)
        .filter(
            user__memberships__role=Role.STUDENT,
            user__memberships__ended_at__isnull=True,
        )
        .exclude(user_id__in=acknowledged)
        .values("user_id")
    )
    student_count = User.objects.filter(pk__in=students).count()
    guardians = (
        User.objects.filter(
            is_active=True,
            pk__in=Guardianship.objects.filter(ended_at__isnull=True, student_id__in=students).values("parent_id"),
        )
        .exclude(pk__in=acknowledged)
        .order_by("pk")
    )
    return student_count, [
        EscalationRecipient(user_id=guardian.pk, phone=guardian.phone.as_e164, language=guardian.language)
        for guardian in guardians.only("pk", "phone", "language")
    ]


def escalation_sms_text(*, chat: Chat, language: str) -> str:
    title = chat.title if len(chat.title) <= SMS_TITLE_LENGTH else chat.title[: SMS_TITLE_LENGTH - 1] + "…"
    with translation.override(language or "ru"):
        return _(
            "Parta: your child has not yet acknowledged a post in the channel «%(channel)s». "
            "Please open Parta to read it."
        ) % {"channel": title}


def escalations_run(*, now: datetime.datetime | None = None, batch: int = ESCALATION_BATCH) -> int:
    """Escalate posts whose escalation time has come (Celery beat, every
    minute): each guardian of a student subscriber who has not acknowledged
    gets one SMS. Returns how many posts were escalated.

    Exactly once per post even with several workers: the post is claimed
    (escalated_at set by a conditional update, under SELECT … FOR UPDATE
    SKIP LOCKED where the database has it) in the transaction that computes
    its recipients, and the SMS go out after that commits. An SMS the
    gateway refused is counted in the log, not retried, so no guardian gets
    one twice. The audit log keeps the counts; no log line names a person.
    """
    now = now or timezone.now()
    outbox: list[tuple[str, str]] = []
    escalated = 0
    with transaction.atomic():
        due = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(escalate_at__lte=now, escalated_at__isnull=True)
            .order_by("escalate_at", "pk")[:batch]
        )
        for post in due:
            if not Message.objects.filter(pk=post.pk, escalated_at__isnull=True).update(escalated_at=now):
                continue  # another worker claimed it
            chat = Chat.objects.select_related("organisation").get(pk=post.chat_id)
            if (
                post.deleted_at is not None
                or not post.requires_acknowledgement
                or chat.kind != ChatKind.CHANNEL
                or chat.is_archived
            ):
                continue
            students, recipients = escalation_recipients(post=post)
            texts: dict[str, str] = {}
            for recipient in recipients:
                if recipient.language not in texts:
                    texts[recipient.language] = escalation_sms_text(chat=chat, language=recipient.language)
                outbox.append((recipient.phone, texts[recipient.language]))
            audit_record(
                actor=None,
                action="channel.post_escalated",
                target=post,
                organisation_id=chat.organisation_id,
                changes={"students_not_acknowledged": students, "guardians_sent": len(recipients)},
            )
            escalated += 1
        if outbox:
            transaction.on_commit(partial(_escalation_sms_send, outbox))
    return escalated


def _escalation_sms_send(outbox: Sequence[tuple[str, str]]) -> None:
    failed = 0
    for phone, text in outbox:
        try:
            sms_send(to=phone, text=text)
        except SmsDeliveryError:
            failed += 1
    logger.info("channel escalation: %d SMS sent, %d failed", len(outbox) - failed, failed)
