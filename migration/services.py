"""Importing an organisation's chats from the old messenger (SPEC §9, §9.1).

The export is parsed and checked as a whole first (migration.export); then
each eligible conversation becomes a group chat of the organisation in its
own transaction, so that the progress is visible while a long import runs
and an interrupted import simply continues when run again (chats already
migrated are "unchanged"). The legacy-chat row, keyed by the old peer_id, is
what makes a re-run change nothing and the notice go out exactly once.

The messages of a conversation are inserted in one bulk insert with their
sequence numbers assigned in one go (the original order: date, then id), and
their original dates written to `created_at` in one more statement: the
history reads as it was written, and importing a thousand chats costs a few
statements per chat rather than one service call per message.

Chats' own services add people one by one with the checks of a person acting
in the UI; the import writes chats' rows directly, with the same rules
applied in bulk: a child in safe mode (a student of another organisation,
say) is added only when the owner is their contact
(organisations.selectors.contacts_filter, the one contact rule that
contact_is_allowed also applies). Adults are added wherever their
memberships are: they were in the old chat, and a parent's link to this
school is often not in the directory yet. Refused members are listed in the
report and never added."""

import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import User
from chats import events as chat_events
from chats.models import MESSAGE_MAX_LENGTH, Chat, ChatKind, ChatMember, MemberRole, Message
from chats.services.messages import body_hash, message_system_post
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.services import audit_record
from migration.export import STAFF_PROFILE_ROLES, Conversation, Export, ExportInvalid, Profile
from migration.models import Invitation, LegacyChat, LegacyExport, LegacyNotice, NoticeStatus
from migration.selectors import invitation_by_token_hash, organisation_by_inn
from organisations.models import Membership, Organisation
from organisations.selectors import SCHOOL_STAFF_ROLES, contact_is_allowed, contacts_filter, current_academic_year

logger = logging.getLogger(__name__)

# Reasons in the report: stable English sentences (documented in
# docs/migration.md); admin shows them translated.
REASON_OWNER_NOT_STAFF = gettext_noop("the owner is not a confirmed administrator, teacher or staff member")
REASON_OWNER_NO_ACCOUNT = gettext_noop("the owner has no staff account in the organisation")
REASON_INACTIVE = gettext_noop("no message in the current academic year")
REASON_NO_MEMBERS = gettext_noop("no members besides the owner and administrators")
REASON_OTHER_ORGANISATION = gettext_noop("already migrated by another organisation")

REFUSED_NO_PHONE = gettext_noop("no phone number to match or invite")
REFUSED_BLOCKED = gettext_noop("the account is blocked")
REFUSED_CONTACT = gettext_noop("a child in safe mode who does not count the owner as a contact")

QUERY_CHUNK = 900
INVITATION_TOKEN_BYTES = 24


class Status:
    MIGRATED = "migrated"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"


@dataclasses.dataclass
class ChatResult:
    """One conversation's line of the report (SPEC §9.1), with the members
    refused and the number invited by SMS as extra keys."""

    peer_id: int
    status: str
    reason: str | None = None
    chat_id: int | None = None
    members: int = 0
    invited: int = 0
    refused: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_report(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "status": self.status,
            "reason": self.reason,
            "chat_id": self.chat_id,
            "members": self.members,
            "invited": self.invited,
            "refused": self.refused,
        }


@dataclasses.dataclass
class _Plan:
    """What importing one eligible conversation will do."""

    owner: User
    moderators: list[User]
    members: list[User]
    invite: list[tuple[Profile, str]]  # (profile, chat role)
    refused: list[dict[str, Any]]
    authors: dict[int, User]


class _People:
    """The accounts of the export's profiles, looked up once for the whole
    export: by phone number, and which of them are staff of the
    organisation (who may own a migrated chat)."""

    def __init__(self, *, export: Export, organisation: Organisation) -> None:
        self.organisation = organisation
        by_phone = {profile.phone: profile.id for profile in export.profiles.values() if profile.phone}
        self.users: dict[int, User] = {}
        phones = list(by_phone)
        for start in range(0, len(phones), QUERY_CHUNK):
            for user in User.objects.filter(phone__in=phones[start : start + QUERY_CHUNK]):
                self.users[by_phone[str(user.phone)]] = user
        self.staff_here: set[int] = set()
        user_ids = [user.pk for user in self.users.values()]
        for start in range(0, len(user_ids), QUERY_CHUNK):
            self.staff_here |= set(
                Membership.objects.active()
                .filter(
                    user_id__in=user_ids[start : start + QUERY_CHUNK],
                    organisation=organisation,
                    role__in=SCHOOL_STAFF_ROLES,
                )
                .values_list("user_id", flat=True)
            )

    @staticmethod
    def contacts_among(*, owner: User, children: list[User]) -> set[int]:
        """Which of these children in safe mode accept `owner`: one query
        per chat that has any, through the one contact rule."""
        if not children:
            return set()
        return set(
            User.objects.filter(pk__in=[child.pk for child in children], is_active=True)
            .filter(contacts_filter(actor=owner))
            .values_list("pk", flat=True)
        )


def academic_year_bounds(*, organisation: Organisation) -> tuple[int, int]:
    """[start, end) of the current academic year in Unix seconds, in the
    organisation's time zone: 1 September 00:00 to the next 1 September."""
    zone = _zone(organisation)
    year = current_academic_year(timezone.localdate(timezone=zone))
    start = datetime.datetime(year, 9, 1, tzinfo=zone)
    end = datetime.datetime(year + 1, 9, 1, tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def _zone(organisation: Organisation) -> datetime.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(organisation.effective_time_zone)


def conversation_skip_reason(
    *, conversation: Conversation, export: Export, bounds: tuple[int, int], staff_owner: User | None
) -> str | None:
    """Why this conversation is not migrated (SPEC §9.1), or None."""
    owner = export.profiles[conversation.owner_id]
    if owner.role not in STAFF_PROFILE_ROLES or not owner.is_confirmed:
        return REASON_OWNER_NOT_STAFF
    newest = conversation.newest_message_date
    if newest is None or not bounds[0] <= newest < bounds[1]:
        return REASON_INACTIVE
    leaders = conversation.moderator_ids | {conversation.owner_id}
    if not any(member.member_id not in leaders for member in conversation.members):
        return REASON_NO_MEMBERS
    if staff_owner is None:
        return REASON_OWNER_NO_ACCOUNT
    return None


def _plan(*, conversation: Conversation, export: Export, people: _People, owner: User) -> _Plan:
    moderator_ids = conversation.moderator_ids
    plan = _Plan(owner=owner, moderators=[], members=[], invite=[], refused=[], authors={conversation.owner_id: owner})
    children = [
        user
        for member in conversation.members
        if (user := people.users.get(member.member_id)) is not None and user.is_safe_mode
    ]
    contacts = people.contacts_among(owner=owner, children=children)
    for member in conversation.members:
        if member.member_id == conversation.owner_id:
            continue
        profile = export.profiles[member.member_id]
        role = MemberRole.MODERATOR if member.member_id in moderator_ids else MemberRole.MEMBER
        user = people.users.get(profile.id)
        reason = None
        if user is None:
            if profile.phone is None:
                reason = REFUSED_NO_PHONE
            else:
                plan.invite.append((profile, role))
                continue
        elif not user.is_active or user.deleted_at is not None:
            reason = REFUSED_BLOCKED
        elif user.is_safe_mode and user.pk not in contacts:
            reason = REFUSED_CONTACT
        if reason is not None:
            plan.refused.append({"member_id": profile.id, "reason": reason})
            continue
        assert user is not None
        (plan.moderators if role == MemberRole.MODERATOR else plan.members).append(user)
        plan.authors[profile.id] = user
    return plan


class _FollowUps:
    """The follow-up tasks of one import run. Once the broker has not
    answered, the rest of the run does not wait for it chat after chat (each
    try costs the broker's connection timeout): the periodic resend queues
    the pending notices and invitations when it is back."""

    def __init__(self) -> None:
        self.is_broker_down = False

    def queue(self, legacy_chat_id: int) -> None:
        if not self.is_broker_down and not _follow_up_queue(legacy_chat_id):
            self.is_broker_down = True


def export_import(
    *,
    export: Export,
    dry_run: bool = False,
    actor: User | None = None,
    organisation: Organisation | None = None,
    record_eligible: bool = False,
    peer_ids: Collection[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ChatResult]:
    """Import every conversation of a checked export; returns the report,
    one ChatResult per conversation in the order of the export.

    `organisation`, when given, must be the one the export's INN names (the
    admin upload checks the administrator's scope with it). A dry run
    changes nothing, except that with `record_eligible` (the admin's dry
    run) the eligible conversations are recorded as due for the adoption
    figures. A whole export (no `peer_ids`) that is imported or recorded is
    kept as the organisation's LegacyExport for the migration bot. `peer_ids`, when given, limits the import to those
    conversations (e.g. one teacher's own chats). `progress(n)` is called
    after each conversation.

    Raises ExportInvalid when no organisation has the export's INN.

    Side effects per migrated chat: a group chat with its members and
    history, SMS invitations and the notice to the old chat (both by Celery
    after commit), "chat.joined" to every member, an audit entry.
    """
    found = organisation_by_inn(inn=export.inn)
    if found is None or (organisation is not None and found.pk != organisation.pk):
        raise ExportInvalid([(None, "organisation.inn", _("no organisation with INN %(inn)s") % {"inn": export.inn})])
    organisation = found
    if peer_ids is None and (record_eligible or not dry_run):
        # The migration bot offers each teacher their chats of this export.
        legacy_export_keep(export=export, organisation=organisation)
    if peer_ids is not None:
        wanted = set(peer_ids)
        export = dataclasses.replace(
            export, conversations=[item for item in export.conversations if item.peer_id in wanted]
        )
    people = _People(export=export, organisation=organisation)
    bounds = academic_year_bounds(organisation=organisation)
    conversation_ids = [conversation.peer_id for conversation in export.conversations]
    existing: dict[int, LegacyChat] = {}
    for start in range(0, len(conversation_ids), QUERY_CHUNK):
        for legacy in LegacyChat.objects.filter(peer_id__in=conversation_ids[start : start + QUERY_CHUNK]):
            existing[legacy.peer_id] = legacy
    results: list[ChatResult] = []
    follow_ups = _FollowUps()
    for conversation in export.conversations:
        results.append(
            _conversation_import(
                conversation=conversation,
                export=export,
                organisation=organisation,
                people=people,
                bounds=bounds,
                legacy=existing.get(conversation.peer_id),
                dry_run=dry_run,
                record_eligible=record_eligible,
                actor=actor,
                follow_ups=follow_ups,
            )
        )
        if progress is not None:
            progress(1)
    return results


def _conversation_import(
    *,
    conversation: Conversation,
    export: Export,
    organisation: Organisation,
    people: _People,
    bounds: tuple[int, int],
    legacy: LegacyChat | None,
    dry_run: bool,
    record_eligible: bool,
    actor: User | None,
    follow_ups: _FollowUps,
) -> ChatResult:
    peer_id = conversation.peer_id
    if legacy is not None and legacy.organisation_id != organisation.pk:
        return ChatResult(peer_id=peer_id, status=Status.SKIPPED, reason=REASON_OTHER_ORGANISATION)
    if legacy is not None and legacy.migrated_at is not None:
        # Migrated before (its chat may since have been deleted by a
        # moderator: that is not undone either).
        return ChatResult(peer_id=peer_id, status=Status.UNCHANGED, chat_id=legacy.chat_id)
    owner_profile = export.profiles[conversation.owner_id]
    owner = people.users.get(owner_profile.id)
    staff_owner = owner if owner is not None and owner.is_active and owner.pk in people.staff_here else None
    reason = conversation_skip_reason(conversation=conversation, export=export, bounds=bounds, staff_owner=staff_owner)
    if reason is not None:
        if legacy is not None and (record_eligible or not dry_run):
            # Recorded as due by an earlier dry run, no longer eligible: it
            # must not count against the organisation's share migrated.
            LegacyChat.objects.filter(pk=legacy.pk, migrated_at__isnull=True).delete()
        return ChatResult(peer_id=peer_id, status=Status.SKIPPED, reason=reason)
    assert staff_owner is not None
    plan = _plan(conversation=conversation, export=export, people=people, owner=staff_owner)
    result = ChatResult(
        peer_id=peer_id,
        status=Status.MIGRATED,
        members=1 + len(plan.moderators) + len(plan.members),
        invited=len(plan.invite),
        refused=plan.refused,
    )
    if dry_run:
        if record_eligible and legacy is None:
            LegacyChat.objects.get_or_create(
                peer_id=peer_id, defaults={"organisation": organisation, "title": conversation.title}
            )
        return result
    try:
        chat_id = _migrate(
            conversation=conversation,
            organisation=organisation,
            plan=plan,
            export=export,
            actor=actor,
            follow_ups=follow_ups,
        )
    except _AlreadyMigrated as already:
        return ChatResult(peer_id=peer_id, status=already.status, reason=already.reason, chat_id=already.chat_id)
    result.chat_id = chat_id
    return result


class _AlreadyMigrated(Exception):
    """Another import took this conversation between the look-up and the lock."""

    def __init__(self, *, status: str, reason: str | None, chat_id: int | None) -> None:
        super().__init__(status)
        self.status, self.reason, self.chat_id = status, reason, chat_id


def _migrate(
    *,
    conversation: Conversation,
    organisation: Organisation,
    plan: _Plan,
    export: Export,
    actor: User | None,
    follow_ups: _FollowUps,
) -> int:
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                legacy, _created = LegacyChat.objects.select_for_update().get_or_create(
                    peer_id=conversation.peer_id, defaults={"organisation": organisation, "title": conversation.title}
                )
        except IntegrityError:
            legacy = LegacyChat.objects.select_for_update().get(peer_id=conversation.peer_id)
        if legacy.organisation_id != organisation.pk:
            raise _AlreadyMigrated(status=Status.SKIPPED, reason=REASON_OTHER_ORGANISATION, chat_id=None)
        if legacy.migrated_at is not None:
            raise _AlreadyMigrated(status=Status.UNCHANGED, reason=None, chat_id=legacy.chat_id)
        messages = _messages_build(conversation=conversation, export=export, plan=plan)
        chat = Chat.objects.create(
            kind=ChatKind.GROUP,
            title=conversation.title,
            organisation=organisation,
            created_by=plan.owner,
            last_seq=len(messages),
        )
        # The history is the past: it starts read, and the system message
        # below is the one unread line that tells people what happened.
        members = [ChatMember(chat=chat, user=plan.owner, role=MemberRole.OWNER, last_read_seq=len(messages))]
        members += [
            ChatMember(chat=chat, user=user, role=MemberRole.MODERATOR, last_read_seq=len(messages))
            for user in plan.moderators
        ]
        members += [
            ChatMember(chat=chat, user=user, role=MemberRole.MEMBER, last_read_seq=len(messages))
            for user in plan.members
        ]
        ChatMember.objects.bulk_create(members)
        if messages:
            for message in messages:
                message.chat = chat
            dates = [message.created_at for message in messages]
            created = Message.objects.bulk_create(messages, batch_size=500)
            if not all(message.pk for message in created):
                # Backends that return no ids from a bulk insert (MySQL) are
                # not supported; SQLite and PostgreSQL both return them.
                created = list(Message.objects.filter(chat=chat).order_by("seq"))
            _original_dates_restore(messages=created, dates=dates)
        invitations = _invitations_create(legacy=legacy, chat=chat, plan=plan)
        legacy.chat = chat
        legacy.title = conversation.title
        legacy.owner = plan.owner
        legacy.migrated_at = now
        legacy.is_read_only = True
        legacy.members_added = len(members)
        legacy.members_invited = len(invitations)
        legacy.members_refused = plan.refused
        legacy.messages_imported = len(messages)
        legacy.save()
        LegacyNotice.objects.create(
            legacy_chat=legacy,
            random_id=secrets.randbelow(2**31 - 1) + 1,
            text=notice_text(chat=chat),
        )
        with translation.override(settings.LANGUAGE_CODE):
            message_system_post(chat=chat, text=_("This chat was moved here from the old messenger."))
        audit_record(
            actor=actor,
            action="migration.chat_migrate",
            target=chat,
            organisation_id=organisation.pk,
            changes={
                "peer_id": conversation.peer_id,
                "members": len(members),
                "invited": len(invitations),
                "refused": len(plan.refused),
                "messages": len(messages),
            },
        )
        chat_events.user_events_publish(
            [(member.user_id, {"type": "chat.joined", "chat": chat.pk}) for member in members], what="chat.joined"
        )
        legacy_id = legacy.pk
        transaction.on_commit(lambda: follow_ups.queue(legacy_id))
    return chat.pk


def _original_dates_restore(*, messages: Sequence[Message], dates: Sequence[datetime.datetime]) -> None:
    """created_at is auto_now_add, which a bulk insert overwrites with now:
    put the original dates back. One prepared UPDATE run for all rows
    (executemany) costs a fraction of bulk_update's CASE expression, which
    Django builds and resolves row by row."""
    field = Message._meta.get_field("created_at")
    table = connection.ops.quote_name(Message._meta.db_table)
    column = connection.ops.quote_name(field.column)
    primary_key = connection.ops.quote_name(Message._meta.pk.column)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE {primary_key} = %s",  # noqa: S608 - names from the model
            [
                (connection.ops.adapt_datetimefield_value(date), message.pk)
                for message, date in zip(messages, dates, strict=True)
            ],
        )


def _messages_build(*, conversation: Conversation, export: Export, plan: _Plan) -> list[Message]:
    """The history in its original order (date, then id), numbered 1..n.
    Messages of people who are not in the new chat keep their name in the
    text, with no author; messages with no text (attachments only) are
    left out."""
    ordered = sorted(conversation.messages, key=lambda message: (message.date, message.id))
    messages: list[Message] = []
    for legacy_message in ordered:
        text = legacy_message.text.strip()
        if not text:
            continue
        author = plan.authors.get(legacy_message.from_id)
        if author is None:
            text = export.profiles[legacy_message.from_id].name + ": " + text
        text = text[:MESSAGE_MAX_LENGTH]
        messages.append(
            Message(
                seq=len(messages) + 1,
                author=author,
                client_id=f"legacy:{legacy_message.id}" if author is not None else "",
                body=text,
                body_hash=body_hash(text),
                created_at=datetime.datetime.fromtimestamp(legacy_message.date, tz=datetime.UTC),
            )
        )
    return messages


def invitation_token(*, salt: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), b"migration-invitation:" + salt.encode(), hashlib.sha256
    ).hexdigest()
    return digest[: INVITATION_TOKEN_BYTES * 2]


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invitations_create(*, legacy: LegacyChat, chat: Chat, plan: _Plan) -> list[Invitation]:
    invitations = []
    for profile, role in plan.invite:
        salt = secrets.token_hex(16)
        invitations.append(
            Invitation(
                legacy_chat=legacy,
                chat=chat,
                phone=str(profile.phone),
                first_name=profile.first_name,
                last_name=profile.last_name,
                chat_role=role,
                token_salt=salt,
                token_hash=invitation_token_hash(invitation_token(salt=salt)),
            )
        )
    return Invitation.objects.bulk_create(invitations)


def public_url(path: str) -> str:
    return settings.PUBLIC_URL.rstrip("/") + path


def notice_text(*, chat: Chat) -> str:
    """The notice for the old chat: where the chat went and how to get in."""
    with translation.override(settings.LANGUAGE_CODE):
        return _(
            "This chat has moved to Parta: «%(title)s». Open %(url)s and sign in with your phone number: "
            "you are already a member. If you have no account yet, you will get an SMS with an invitation."
        ) % {"title": chat.title, "url": public_url(reverse("chats:detail", args=[chat.pk]))}


def _follow_up_queue(legacy_chat_id: int) -> bool:
    """After commit: the notice and the SMS invitations, by Celery. A broker
    that is down loses nothing: the periodic resend picks up what is
    pending. Returns whether the tasks were queued."""
    from migration import tasks

    try:
        tasks.legacy_notice_send.delay(legacy_chat_id)
        tasks.invitations_sms_send.delay(legacy_chat_id)
    except Exception:
        logger.exception("old chat %s: follow-up tasks not queued; the periodic resend will", legacy_chat_id)
        return False
    return True


# --- Invitations -------------------------------------------------------------


def invitations_sms_send(*, legacy_chat_id: int) -> int:
    """Send the SMS of every invitation of this old chat not sent yet;
    returns how many were sent. Safe to run twice: each invitation is
    claimed by a conditional update before its SMS goes out."""
    from accounts.sms import SmsDeliveryError, sms_send

    sent = 0
    pending = Invitation.objects.filter(legacy_chat_id=legacy_chat_id, sms_sent_at__isnull=True).select_related(
        "chat", "chat__organisation"
    )
    for invitation in pending:
        claimed = Invitation.objects.filter(pk=invitation.pk, sms_sent_at__isnull=True).update(
            sms_sent_at=timezone.now()
        )
        if not claimed:
            continue
        try:
            sms_send(to=invitation.phone, text=invitation_sms_text(invitation=invitation))
        except SmsDeliveryError:
            Invitation.objects.filter(pk=invitation.pk).update(sms_sent_at=None)
            logger.warning("invitation %s: SMS not delivered, will retry", invitation.pk)
            continue
        sent += 1
    return sent


def invitation_sms_text(*, invitation: Invitation) -> str:
    token = invitation_token(salt=invitation.token_salt)
    url = public_url(reverse("migration:invitation", args=[token]))
    organisation = invitation.chat.organisation
    with translation.override(settings.LANGUAGE_CODE):
        return _("%(organisation)s invites you to the chat «%(title)s» in Parta: %(url)s") % {
            "organisation": organisation.short_name if organisation else "Parta",
            "title": invitation.chat.title,
            "url": url,
        }


def invitation_get(*, token: str) -> Invitation:
    """The invitation of this link. Raises NotFound for an unknown token."""
    invitation = invitation_by_token_hash(token_hash=invitation_token_hash(token)) if token else None
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."), code="invitation_not_found")
    return invitation


class InvitationUsed(ApplicationError):
    status_code = 410


def invitation_accept(*, user: User, token: str) -> Chat:
    """`user`, signed in, follows the SMS link: they join the chat, once.

    Raises NotFound (unknown link), InvitationUsed (410: used by someone
    else, or the chat is gone), PermissionDenied "wrong_phone" (the link was
    sent to another number) and "contact_not_allowed" (a child in safe mode
    who does not count the chat's owner as a contact). A refusal changes
    nothing.

    Side effects: the membership, "chat.joined" after commit, an audit entry.
    """
    invitation = invitation_get(token=token)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().select_related("chat").get(pk=invitation.pk)
        chat = invitation.chat
        if invitation.accepted_at is not None:
            if invitation.accepted_by_id == user.pk and _is_member(chat=chat, user=user):
                return chat
            raise InvitationUsed(_("This invitation has already been used."), code="invitation_used")
        if chat.is_archived:
            raise InvitationUsed(_("This chat no longer exists."), code="invitation_used")
        if str(user.phone) != invitation.phone:
            raise PermissionDenied(
                _("This invitation was sent to another phone number. Sign in with that number."),
                code="wrong_phone",
            )
        owner = chat.created_by
        if user.is_safe_mode and (owner is None or not contact_is_allowed(actor=owner, child=user)):
            raise PermissionDenied(_("This person accepts messages only from contacts."), code="contact_not_allowed")
        if not _is_member(chat=chat, user=user):
            ChatMember.objects.create(chat=chat, user=user, role=invitation.chat_role, last_read_seq=0)
            chat_events.user_event_publish(user_id=user.pk, event={"type": "chat.joined", "chat": chat.pk})
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
        audit_record(
            actor=user,
            action="migration.invitation_accept",
            target=chat,
            organisation_id=chat.organisation_id,
            changes={"invitation": invitation.pk},
        )
    return chat


def _is_member(*, chat: Chat, user: User) -> bool:
    return ChatMember.objects.active().filter(chat=chat, user=user).exists()


# --- Notices to the old chats -----------------------------------------------


class NoticeOutcome:
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    NOTHING = "nothing"


def legacy_notice_attempt(*, legacy_chat_id: int, final: bool = False) -> str:
    """One attempt to post the notice of this old chat (SPEC §9.1 adapter).

    Returns NoticeOutcome: SENT, RETRY (a temporary error: codes 6, 9, 10,
    HTTP 5xx, a timeout or no connection; the caller retries with backoff),
    FAILED (a permanent error, recorded and shown in admin; also a temporary
    one when `final`), or NOTHING (already sent or failed, or no notice).
    The same random_id goes with every attempt, so a retry after a lost
    answer is dropped by the old messenger as a duplicate."""
    from migration import legacy_api

    notice = LegacyNotice.objects.filter(legacy_chat_id=legacy_chat_id).select_related("legacy_chat").first()
    if notice is None or notice.status != NoticeStatus.PENDING:
        return NoticeOutcome.NOTHING
    LegacyNotice.objects.filter(pk=notice.pk).update(attempts=notice.attempts + 1, updated_at=timezone.now())
    answer = legacy_api.message_send(
        peer_id=notice.legacy_chat.peer_id, message=notice.text, random_id=notice.random_id
    )
    now = timezone.now()
    if answer.message_id is not None:
        LegacyNotice.objects.filter(pk=notice.pk, status=NoticeStatus.PENDING).update(
            status=NoticeStatus.SENT,
            legacy_message_id=answer.message_id,
            sent_at=now,
            error_code=None,
            last_error="",
            next_attempt_at=None,
            updated_at=now,
        )
        return NoticeOutcome.SENT
    permanent = not answer.is_temporary or final
    LegacyNotice.objects.filter(pk=notice.pk, status=NoticeStatus.PENDING).update(
        status=NoticeStatus.FAILED if permanent else NoticeStatus.PENDING,
        error_code=answer.error_code,
        last_error=answer.error[:500],
        updated_at=now,
    )
    return NoticeOutcome.FAILED if permanent else NoticeOutcome.RETRY


def legacy_notice_retry(*, notice_id: int, actor: User | None) -> None:
    """An administrator sends a failed notice again (same random_id)."""
    with transaction.atomic():
        updated = LegacyNotice.objects.filter(pk=notice_id, status=NoticeStatus.FAILED).update(
            status=NoticeStatus.PENDING, updated_at=timezone.now()
        )
        if updated:
            notice = LegacyNotice.objects.select_related("legacy_chat").get(pk=notice_id)
            audit_record(
                actor=actor,
                action="migration.notice_retry",
                target=notice.legacy_chat,
                organisation_id=notice.legacy_chat.organisation_id,
            )
            legacy_chat_id = notice.legacy_chat_id
            transaction.on_commit(lambda: _follow_up_queue(legacy_chat_id))


def legacy_follow_ups_pending(*, older_than: datetime.timedelta) -> tuple[list[int], list[int]]:
    """Old chats whose notice is still pending, and those with unsent SMS
    invitations, untouched for `older_than` (their task was lost)."""
    cutoff = timezone.now() - older_than
    notices = list(
        LegacyNotice.objects.filter(status=NoticeStatus.PENDING, updated_at__lt=cutoff).values_list(
            "legacy_chat_id", flat=True
        )[:1000]
    )
    invitations = list(
        Invitation.objects.filter(sms_sent_at__isnull=True, accepted_at__isnull=True, created_at__lt=cutoff)
        .values_list("legacy_chat_id", flat=True)
        .distinct()[:1000]
    )
    return notices, invitations


def import_runs_stalled(*, older_than: datetime.timedelta) -> list[int]:
    """Uploads still queued after `older_than`: their task was lost."""
    from migration.models import ImportRun, ImportStatus

    cutoff = timezone.now() - older_than
    return list(
        ImportRun.objects.filter(status=ImportStatus.QUEUED, created_at__lt=cutoff).values_list("pk", flat=True)[:100]
    )


# --- Admin uploads -----------------------------------------------------------


def import_run_create(
    *, actor: User, organisation: Organisation, file_name: str, content: str, is_dry_run: bool, total: int
) -> Any:
    """Record an upload checked by the admin form and queue its import
    after commit."""
    from migration.models import ImportRun

    with transaction.atomic():
        run = ImportRun.objects.create(
            organisation=organisation,
            uploaded_by=actor,
            file_name=file_name[:255],
            content=content,
            is_dry_run=is_dry_run,
            total=total,
        )
        audit_record(
            actor=actor,
            action="migration.import_upload",
            target=run,
            organisation_id=organisation.pk,
            changes={"dry_run": is_dry_run, "conversations": total},
        )
        run_id = run.pk
        transaction.on_commit(lambda: _import_run_queue(run_id))
    return run


def _import_run_queue(run_id: int) -> None:
    from migration import tasks

    try:
        tasks.import_run_execute.delay(run_id)
    except Exception:
        logger.exception("import %s not queued; the periodic resend will", run_id)


def import_run_execute(*, run_id: int) -> None:
    """Run an uploaded import: claims it (a second worker returns at once),
    counts the progress as it goes and stores the report. An import that
    fails is marked failed with the error; what was migrated stays, and
    uploading the same export again continues from there."""
    from migration.export import export_parse
    from migration.models import ImportRun, ImportStatus

    claimed = ImportRun.objects.filter(pk=run_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now(), done=0
    )
    if not claimed:
        return
    run = ImportRun.objects.select_related("organisation", "uploaded_by").get(pk=run_id)
    done = 0

    def progress(step: int) -> None:
        nonlocal done
        done += step
        ImportRun.objects.filter(pk=run_id).update(done=done, updated_at=timezone.now())

    try:
        export = export_parse(run.content)
        results = export_import(
            export=export,
            dry_run=run.is_dry_run,
            record_eligible=run.is_dry_run,
            actor=run.uploaded_by,
            organisation=run.organisation,
            progress=progress,
        )
    except ExportInvalid as error:
        ImportRun.objects.filter(pk=run_id).update(
            status=ImportStatus.FAILED, error=str(error), finished_at=timezone.now(), content=""
        )
        return
    except Exception as error:
        logger.exception("import %s failed", run_id)
        # What was migrated stays; uploading the export again continues.
        ImportRun.objects.filter(pk=run_id).update(
            status=ImportStatus.FAILED, error=type(error).__name__, finished_at=timezone.now(), content=""
        )
        raise
    ImportRun.objects.filter(pk=run_id).update(
        status=ImportStatus.DONE,
        report=[result.as_report() for result in results],
        finished_at=timezone.now(),
        content="",
        total=len(results),
        done=len(results),
    )


def report_summary(results: Sequence[ChatResult] | Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {Status.MIGRATED: 0, Status.SKIPPED: 0, Status.UNCHANGED: 0}
    for result in results:
        status = result.status if isinstance(result, ChatResult) else result["status"]
        counts[status] = counts.get(status, 0) + 1
    return counts


# --- The kept export (for the migration bot) ---------------------------------


def export_dump(export: Export) -> str:
    """The checked export back in the format of SPEC §9.1 (export_parse
    reads it again unchanged)."""
    data = {
        "organisation": {"inn": export.inn},
        "exported_at": export.exported_at,
        "profiles": [
            {
                "id": profile.id,
                "first_name": profile.first_name,
                "last_name": profile.last_name,
                "role": profile.role,
                "confirmed": profile.is_confirmed,
                **({"phone": profile.phone} if profile.phone else {}),
            }
            for profile in export.profiles.values()
        ],
        "conversations": [
            {
                "peer_id": conversation.peer_id,
                "chat_settings": {
                    "title": conversation.title,
                    "owner_id": conversation.owner_id,
                    "admin_ids": conversation.admin_ids,
                },
                "members": [
                    {"member_id": member.member_id, "is_owner": member.is_owner, "is_admin": member.is_admin}
                    for member in conversation.members
                ],
                "messages": [
                    {"id": message.id, "date": message.date, "from_id": message.from_id, "text": message.text}
                    for message in conversation.messages
                ],
            }
            for conversation in export.conversations
        ],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def legacy_export_keep(*, export: Export, organisation: Organisation) -> LegacyExport:
    """Keep this checked export as the organisation's latest (the one the
    migration bot reads); it replaces the previous one."""
    kept, _created = LegacyExport.objects.update_or_create(
        organisation=organisation,
        defaults={
            "content": export_dump(export),
            "conversations": len(export.conversations),
            "uploaded_at": timezone.now(),
        },
    )
    return kept
