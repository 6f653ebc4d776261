"""Moderation: announcement mode, mute and remove, delete any message,
reports, opening hours, and teachers' office hours.

Every moderator's action is checked here (not in the interfaces), written in
the audit log and published to the chat after commit."""

import datetime
import zoneinfo
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chats import events, selectors
from chats.models import (
    Chat,
    ChatKind,
    ChatMember,
    MemberRole,
    Message,
    MessageReport,
    MessageRevision,
    Notification,
    OfficeHours,
    Pin,
)
from chats.services import content
from chats.services.chats import chat_rename, not_moderator
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.services import audit_record

MUTE_MINUTES_MAX = 7 * 24 * 60
REPORT_REASON_MAX_LENGTH = 500


def _moderator_get(*, actor: User, chat_id: int) -> ChatMember:
    """The actor's membership when they moderate the chat.

    Raises NotFound (not in the chat) and PermissionDenied "not_moderator".
    """
    member = selectors.chat_member_get(user=actor, chat_id=chat_id)
    if not selectors.member_may_moderate(member):
        raise not_moderator()
    return member


def _audit(*, actor: User, action: str, chat: Chat, changes: dict[str, Any] | None = None) -> None:
    audit_record(actor=actor, action=action, target=chat, organisation_id=chat.organisation_id, changes=changes)


def _target_member_get(*, moderator: ChatMember, user_id: Any) -> ChatMember:
    """The member a moderator acts on. Only the owner acts on other
    moderators; no one on the owner or on themselves.

    Raises NotFound "member_not_found" and PermissionDenied "target_is_moderator".
    """
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ApplicationError(_("A person's id is required."), code="invalid", extra={"field": "user_id"})
    target = (
        ChatMember.objects.active().select_related("user").filter(chat_id=moderator.chat_id, user_id=user_id).first()
    )
    if target is None:
        raise NotFound(_("This person is not in the chat."), code="member_not_found")
    if target.pk == moderator.pk:
        raise ApplicationError(_("You cannot do this to yourself."), code="invalid")
    if target.role == MemberRole.OWNER or (
        selectors.member_may_moderate(target) and moderator.role != MemberRole.OWNER
    ):
        raise PermissionDenied(
            _("Moderators cannot be muted or removed by other moderators."), code="target_is_moderator"
        )
    return target


# --- Chat settings -------------------------------------------------------------


def chat_announcement_mode_set(*, actor: User, chat_id: int, is_on: bool) -> Chat:
    """Announcement mode: only the chat's staff post while it is on.

    Raises NotFound and PermissionDenied "not_moderator".
    Side effects: audited; "chat.updated" to the chat.
    """
    member = _moderator_get(actor=actor, chat_id=chat_id)
    chat = member.chat
    if chat.is_announcement_only == bool(is_on):
        return chat
    with transaction.atomic():
        chat.is_announcement_only = bool(is_on)
        chat.save(update_fields=["is_announcement_only", "updated_at"])
        _audit(actor=actor, action="chat.announcement_mode", chat=chat, changes={"is_on": chat.is_announcement_only})
        events.event_publish(
            chat=chat,
            event={"type": "chat.updated", "chat": chat.pk, "is_announcement_only": chat.is_announcement_only},
        )
    return chat


def chat_opening_hours_set(
    *, actor: User, chat_id: int, opens_at: datetime.time | None, closes_at: datetime.time | None
) -> Chat:
    """When students may post (the organisation's local time); both None
    clears the hours. The window may pass midnight (21:00–07:00 is a night).

    Raises NotFound, PermissionDenied "not_moderator", ApplicationError
    "invalid_hours" (one end only, or both equal).
    Side effects: audited; "chat.updated" to the chat.
    """
    if (opens_at is None) != (closes_at is None) or (opens_at is not None and opens_at == closes_at):
        raise ApplicationError(
            _("Give both the opening and the closing time, and make them differ."), code="invalid_hours"
        )
    member = _moderator_get(actor=actor, chat_id=chat_id)
    chat = member.chat
    if chat.opens_at == opens_at and chat.closes_at == closes_at:
        return chat
    with transaction.atomic():
        chat.opens_at = opens_at
        chat.closes_at = closes_at
        chat.save(update_fields=["opens_at", "closes_at", "updated_at"])
        hours = {
            "opens_at": opens_at.strftime("%H:%M") if opens_at else None,
            "closes_at": closes_at.strftime("%H:%M") if closes_at else None,
        }
        _audit(actor=actor, action="chat.opening_hours", chat=chat, changes=hours)
        events.event_publish(chat=chat, event={"type": "chat.updated", "chat": chat.pk, **hours})
    return chat


SETTINGS_FIELDS = ("is_announcement_only", "opens_at", "closes_at", "title")


def chat_settings_update(*, actor: User, chat_id: int, changes: dict[str, Any]) -> Chat:
    """Apply several settings at once (all or none): announcement mode,
    opening hours (opens_at and closes_at go together), title.

    Raises what the single services raise.
    """
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ApplicationError(_("Unknown settings."), code="invalid", extra={"fields": sorted(unknown)})
    with transaction.atomic():
        if "title" in changes:
            chat_rename(actor=actor, chat_id=chat_id, title=changes["title"])
        if "is_announcement_only" in changes:
            chat_announcement_mode_set(actor=actor, chat_id=chat_id, is_on=bool(changes["is_announcement_only"]))
        if "opens_at" in changes or "closes_at" in changes:
            chat = selectors.chat_member_get(user=actor, chat_id=chat_id).chat
            chat_opening_hours_set(
                actor=actor,
                chat_id=chat_id,
                opens_at=changes.get("opens_at", chat.opens_at),
                closes_at=changes.get("closes_at", chat.closes_at),
            )
        return selectors.chat_member_get(user=actor, chat_id=chat_id).chat


# --- Members -------------------------------------------------------------------


def chat_member_mute(*, actor: User, chat_id: int, user_id: Any, minutes: Any) -> ChatMember:
    """Mute a member for `minutes` (up to a week); 0 unmutes.

    Raises NotFound, PermissionDenied "not_moderator" / "target_is_moderator",
    ApplicationError for a bad number of minutes.
    Side effects: audited; "member.muted" to the chat.
    """
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 <= minutes <= MUTE_MINUTES_MAX:
        raise ApplicationError(
            _("minutes must be a whole number from 0 to %(limit)d.") % {"limit": MUTE_MINUTES_MAX},
            code="invalid",
            extra={"field": "minutes"},
        )
    moderator = _moderator_get(actor=actor, chat_id=chat_id)
    target = _target_member_get(moderator=moderator, user_id=user_id)
    muted_until = timezone.now() + datetime.timedelta(minutes=minutes) if minutes else None
    with transaction.atomic():
        target.muted_until = muted_until
        target.save(update_fields=["muted_until"])
        _audit(
            actor=actor,
            action="chat.member_mute" if minutes else "chat.member_unmute",
            chat=moderator.chat,
            changes={"user": target.user_id, "minutes": minutes},
        )
        events.event_publish(
            chat=moderator.chat_id,
            event={
                "type": "member.muted",
                "chat": moderator.chat_id,
                "user": target.user_id,
                "muted_until": muted_until.isoformat() if muted_until else None,
            },
        )
    return target


def chat_member_remove(*, actor: User, chat_id: int, user_id: Any) -> None:
    """Remove a member. In a class or staff chat the directory sync does not
    bring them back until a moderator lets them in again (chat_member_add).

    Raises NotFound, PermissionDenied "not_moderator" / "target_is_moderator".
    Side effects: audited; "member.removed" to the chat, "chat.left" to the person.
    """
    moderator = _moderator_get(actor=actor, chat_id=chat_id)
    if moderator.chat.kind == ChatKind.DIRECT:
        raise PermissionDenied(_("No one is removed from a direct chat."), code="not_allowed")
    target = _target_member_get(moderator=moderator, user_id=user_id)
    with transaction.atomic():
        if not ChatMember.objects.filter(pk=target.pk, left_at__isnull=True).update(
            left_at=timezone.now(), is_removed=True
        ):
            return
        _audit(actor=actor, action="chat.member_remove", chat=moderator.chat, changes={"user": target.user_id})
        events.event_publish(
            chat=moderator.chat_id,
            event={"type": "member.removed", "chat": moderator.chat_id, "user": target.user_id},
        )
        events.user_event_publish(user_id=target.user_id, event={"type": "chat.left", "chat": moderator.chat_id})


# --- Messages ------------------------------------------------------------------


def message_delete(*, actor: User, chat_id: int, seq: Any) -> Message:
    """Delete a message (soft: it keeps its seq and shows as deleted): the
    author their own, a moderator anyone's. An author's deletion erases the
    text and its earlier versions; a moderator's keeps them for the reports.
    Deleting again changes nothing.

    Raises NotFound (no chat, no message) and PermissionDenied "not_author".
    Side effects: pins of the message go; a moderator's deletion is audited;
    {"type": "message.deleted", "chat", "seq"} to the chat.
    """
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ApplicationError(_("seq must be a message's number."), code="invalid", extra={"field": "seq"})
    member = selectors.chat_member_get(user=actor, chat_id=chat_id)
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(chat_id=chat_id, seq=seq).first()
        if message is None:
            raise NotFound(_("Not found."))
        is_author = message.author_id == actor.pk
        if not is_author and not selectors.member_may_moderate(member):
            raise PermissionDenied(_("Only the author or a moderator may delete a message."), code="not_author")
        if message.deleted_at is not None:
            return message
        message.deleted_at = timezone.now()
        message.deleted_by = actor
        fields = ["deleted_at", "deleted_by"]
        if is_author:
            message.body = ""
            fields.append("body")
            MessageRevision.objects.filter(message=message).delete()
        message.save(update_fields=fields)
        Pin.objects.filter(message=message).delete()
        content.message_content_retract(message=message)
        if not is_author:
            _audit(
                actor=actor,
                action="chat.message_delete",
                chat=member.chat,
                changes={"seq": message.seq, "author": message.author_id},
            )
        events.event_publish(chat=chat_id, event={"type": "message.deleted", "chat": chat_id, "seq": message.seq})
    return message


def message_report(*, user: User, chat_id: int, seq: Any, reason: Any = "") -> tuple[MessageReport, bool]:
    """A member reports a message to the chat's moderators; returns (report,
    created). Reporting the same message again changes nothing.

    Raises NotFound (no chat, no message) and ApplicationError
    "report_own_message" / for a reason too long.
    Side effects: a "report" notification for each moderator, audited, and
    {"type": "message.reported", "chat", "seq"} to the moderators' own sockets.
    """
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ApplicationError(_("seq must be a message's number."), code="invalid", extra={"field": "seq"})
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > REPORT_REASON_MAX_LENGTH:
        raise ApplicationError(
            _("The reason may have at most %(limit)d characters.") % {"limit": REPORT_REASON_MAX_LENGTH},
            code="invalid",
            extra={"field": "reason"},
        )
    member = selectors.chat_member_get(user=user, chat_id=chat_id)
    message = selectors.message_get(chat_id=chat_id, seq=seq)
    if message.author_id == user.pk:
        raise ApplicationError(_("You cannot report your own message."), code="report_own_message")
    existing = MessageReport.objects.filter(message=message, reporter=user).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            report = MessageReport.objects.create(message=message, reporter=user, reason=reason.strip())
            moderator_ids = list(
                ChatMember.objects.active()
                .filter(chat_id=chat_id, role__in=selectors.MODERATOR_ROLES)
                .exclude(user_id__in=[user.pk, message.author_id or 0])
                .values_list("user_id", flat=True)
            )
            Notification.objects.bulk_create(
                [
                    Notification(user_id=pk, kind=Notification.Kind.REPORT, chat_id=chat_id, message=message)
                    for pk in moderator_ids
                ],
                ignore_conflicts=True,
            )
            _audit(
                actor=user,
                action="chat.message_report",
                chat=member.chat,
                changes={"seq": message.seq, "author": message.author_id},
            )
            for pk in moderator_ids:
                events.user_event_publish(
                    user_id=pk, event={"type": "message.reported", "chat": chat_id, "seq": message.seq}
                )
    except IntegrityError:
        # The same person's second report, sent at the same moment.
        return MessageReport.objects.get(message=message, reporter=user), False
    return report, True


# --- Office hours --------------------------------------------------------------


def _weekdays_clean(weekdays: Any) -> str:
    if isinstance(weekdays, list | tuple):
        days = weekdays
    elif isinstance(weekdays, str):
        days = [int(day) for day in weekdays if day.isdigit()] if weekdays.isdigit() else []
    else:
        days = []
    if not days or not all(isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7 for day in days):
        raise ApplicationError(
            _("Weekdays are numbers from 1 (Monday) to 7 (Sunday)."), code="invalid", extra={"field": "weekdays"}
        )
    return "".join(str(day) for day in sorted(set(days)))


def office_hours_set(
    *,
    user: User,
    starts_at: datetime.time,
    ends_at: datetime.time,
    weekdays: Any = "12345",
    time_zone: str | None = None,
) -> OfficeHours:
    """A teacher's office hours: direct messages from parents and students
    written outside them wait until the next opening.

    Raises PermissionDenied "not_an_educator" (only staff of an
    organisation have office hours) and ApplicationError for invalid hours,
    weekdays or time zone.
    """
    if not selectors.user_is_educator(user=user):
        raise PermissionDenied(_("Only teachers and staff have office hours."), code="not_an_educator")
    if starts_at == ends_at:
        raise ApplicationError(_("The hours must not start and end at the same time."), code="invalid_hours")
    days = _weekdays_clean(weekdays)
    zone = time_zone or user.time_zone or "Europe/Moscow"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ApplicationError(_("Unknown time zone."), code="invalid", extra={"field": "time_zone"}) from None
    with transaction.atomic():
        hours, _created = OfficeHours.objects.update_or_create(
            user=user, defaults={"starts_at": starts_at, "ends_at": ends_at, "weekdays": days, "time_zone": zone}
        )
        audit_record(
            actor=user,
            action="chat.office_hours_set",
            target=hours,
            changes={"starts_at": starts_at.strftime("%H:%M"), "ends_at": ends_at.strftime("%H:%M"), "weekdays": days},
        )
    return hours


def office_hours_clear(*, user: User) -> None:
    """No office hours: messages reach the teacher at once."""
    with transaction.atomic():
        hours = OfficeHours.objects.filter(user=user).first()
        if hours is None:
            return
        audit_record(actor=user, action="chat.office_hours_clear", target=hours)
        hours.delete()


def message_reports_resolve(*, actor: User, report_ids: list[int]) -> int:
    """Mark reports as dealt with (the platform's staff, from the admin);
    returns how many were open. Audited per report."""
    with transaction.atomic():
        reports = list(
            MessageReport.objects.select_for_update(of=("self",))
            .select_related("message__chat")
            .filter(pk__in=report_ids, resolved_at__isnull=True)
        )
        now = timezone.now()
        for report in reports:
            report.resolved_at = now
            report.resolved_by = actor
            report.save(update_fields=["resolved_at", "resolved_by"])
            audit_record(
                actor=actor,
                action="chat.report_resolve",
                target=report,
                organisation_id=report.message.chat.organisation_id,
            )
    return len(reports)
