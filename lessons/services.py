"""Writes and side effects of lessons and meetings: scheduling, changes and
cancellation with the invitees' notifications, join links, joining and the
lobby, attendance (reported by the call's signalling side) and reminders.

Every refusal is an ApplicationError raised before anything is stored;
notifications to sockets and SMS go out only after the commit."""

import datetime
import hashlib
import logging
import math
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.names import name_clean
from accounts.sms import SmsDeliveryError, sms_send
from common.errors import ApplicationError, NotFound, PermissionDenied, RateLimited
from common.ratelimit import rate_limit_hit
from common.services import audit_record, model_changes
from lessons import events, schedule, selectors
from lessons.models import (
    DESCRIPTION_MAX_LENGTH,
    DISPLAY_NAME_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AttendanceSession,
    AudienceKind,
    JoinLink,
    Meeting,
    MeetingAudience,
    MeetingKind,
    MeetingNotification,
    NotificationKind,
    Occurrence,
    Participant,
    ParticipantRole,
    ParticipantStatus,
    Reminder,
    ReminderKind,
    ReminderPreference,
    SmsStatus,
)
from organisations.models import Organisation, Role, StudyGroup
from organisations.selectors import contact_is_allowed, profile_is_visible, user_is_member

logger = logging.getLogger(__name__)

DURATION_MIN_MINUTES = 5
DURATION_MAX_MINUTES = 8 * 60
# A meeting may be scheduled to start a little in the past (a form filled
# in at 18:29 for 18:30 and sent at 18:31).
STARTS_IN_PAST_TOLERANCE = datetime.timedelta(minutes=10)
AUDIENCE_GROUPS_MAX = 30
AUDIENCE_USERS_MAX = 200
JOIN_LINKS_MAX = 300
# A link outlives the last occurrence by a day, then answers 410.
LINK_GRACE = datetime.timedelta(days=1)
LINK_TOKEN_BYTES = 32
REMINDER_WINDOWS = {
    # kind: (nearest, farthest) distance of the start from now
    ReminderKind.DAY_BEFORE: (datetime.timedelta(hours=2), datetime.timedelta(hours=24)),
    ReminderKind.SOON: (datetime.timedelta(0), datetime.timedelta(minutes=15)),
}
REMINDER_NOTIFICATION_KINDS = {
    ReminderKind.DAY_BEFORE: NotificationKind.REMINDER_DAY_BEFORE,
    ReminderKind.SOON: NotificationKind.REMINDER_SOON,
}
# An SMS still "being sent" after this long was lost with its worker: it is
# marked failed, never sent again (no one gets a reminder twice).
SMS_PENDING_TIMEOUT = datetime.timedelta(minutes=10)
REMINDER_BATCH = 200
SMS_TITLE_LENGTH = 60
UNSET: Any = object()


# --- Input -------------------------------------------------------------------------------------------------------


def _field_error(message: str, *, field: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, code=code, extra={"field": field})


def title_clean(value: Any) -> str:
    title = name_clean(value) if isinstance(value, str) else ""
    if not title:
        raise _field_error(_("Give the meeting a title."), field="title")
    if len(title) > TITLE_MAX_LENGTH:
        raise _field_error(
            _("The title may have at most %(count)d characters.") % {"count": TITLE_MAX_LENGTH}, field="title"
        )
    return title


def description_clean(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _field_error(_("The description must be text."), field="description")
    description = value.replace("\r\n", "\n").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise _field_error(
            _("The description may have at most %(count)d characters.") % {"count": DESCRIPTION_MAX_LENGTH},
            field="description",
        )
    return description


def duration_clean(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (DURATION_MIN_MINUTES <= value <= DURATION_MAX_MINUTES)
    ):
        raise _field_error(
            _("The duration is from %(min)d to %(max)d minutes.")
            % {"min": DURATION_MIN_MINUTES, "max": DURATION_MAX_MINUTES},
            field="duration_minutes",
        )
    return value


def kind_clean(value: Any) -> str:
    if value not in MeetingKind.values:
        raise _field_error(_("Choose what kind of meeting it is."), field="kind")
    return str(value)


def guest_name_clean(value: Any) -> str:
    name = name_clean(value) if isinstance(value, str) else ""
    if not name:
        raise _field_error(_("Enter your name so that the host knows who is asking."), field="display_name")
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise _field_error(
            _("The name may have at most %(count)d characters.") % {"count": DISPLAY_NAME_MAX_LENGTH},
            field="display_name",
        )
    return name


@dataclass(frozen=True)
class AudienceSpec:
    """Who is invited: the students of classes, the parents of classes, the
    organisation's staff, and single people."""

    student_group_ids: tuple[int, ...] = ()
    guardian_group_ids: tuple[int, ...] = ()
    invite_staff: bool = False
    user_ids: tuple[int, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.student_group_ids or self.guardian_group_ids or self.invite_staff or self.user_ids)


def _audience_rules(
    *, actor: User, organisation: Organisation, kind: str, audience: AudienceSpec
) -> list[MeetingAudience]:
    """The rules of `audience`, unsaved, after every check. Raises
    ApplicationError "no_invitees"; NotFound "group_not_found" /
    "user_not_found" (a class of another organisation, a person `actor`
    may not see); PermissionDenied "contact_not_allowed" for a child in
    safe mode who is not `actor`'s contact or not a student of the
    organisation."""
    if audience.is_empty:
        raise _field_error(
            _("Invite someone: a class, its parents, the staff or single people."), field="audience", code="no_invitees"
        )
    if kind == MeetingKind.CONSULTATION and not audience.user_ids:
        raise _field_error(
            _("A consultation is with single people: choose whom."), field="user_ids", code="no_invitees"
        )
    group_ids = set(audience.student_group_ids) | set(audience.guardian_group_ids)
    if len(group_ids) > AUDIENCE_GROUPS_MAX or len(set(audience.user_ids)) > AUDIENCE_USERS_MAX:
        raise _field_error(_("Too many invitees in one meeting."), field="audience", code="too_many_invitees")
    groups = {group.pk: group for group in StudyGroup.objects.filter(pk__in=group_ids, organisation=organisation)}
    if len(groups) != len(group_ids):
        raise NotFound(_("No such class in this organisation."), code="group_not_found")
    people = {
        person.pk: person
        for person in User.objects.filter(pk__in=set(audience.user_ids), is_active=True, deleted_at__isnull=True)
    }
    for user_id in set(audience.user_ids):
        person = people.get(user_id)
        if person is None or not profile_is_visible(viewer=actor, owner=person):
            raise NotFound(_("No such person."), code="user_not_found")
        if person.is_safe_mode and not (
            contact_is_allowed(actor=actor, child=person)
            and person.memberships.active().filter(organisation=organisation, role=Role.STUDENT).exists()
        ):
            raise PermissionDenied(
                _("%(name)s is in safe mode: only the staff of the child's school may invite them.")
                % {"name": person.display_name},
                code="contact_not_allowed",
            )
    rules = [
        MeetingAudience(kind=AudienceKind.GROUP_STUDENTS, study_group=groups[pk])
        for pk in sorted(set(audience.student_group_ids))
    ]
    rules += [
        MeetingAudience(kind=AudienceKind.GROUP_GUARDIANS, study_group=groups[pk])
        for pk in sorted(set(audience.guardian_group_ids))
    ]
    if audience.invite_staff:
        rules.append(MeetingAudience(kind=AudienceKind.STAFF))
    rules += [MeetingAudience(kind=AudienceKind.USER, user=people[pk]) for pk in sorted(set(audience.user_ids))]
    return rules


def _organisation_for_scheduling(*, actor: User, organisation_id: Any) -> Organisation:
    organisation = (
        Organisation.objects.select_related("region").filter(pk=organisation_id).first()
        if isinstance(organisation_id, int) and not isinstance(organisation_id, bool)
        else None
    )
    if organisation is None or not (
        actor.is_superuser
        or user_is_member(user=actor, organisation=organisation)
        or selectors.user_may_schedule(user=actor, organisation=organisation)
    ):
        raise NotFound(_("No such organisation."), code="organisation_not_found")
    if not selectors.user_may_schedule(user=actor, organisation=organisation):
        raise PermissionDenied(
            _("Only verified educators and administrators of the organisation may schedule meetings."),
            code="not_verified",
        )
    return organisation


def _starts_at_clean(value: Any, *, time_zone: str) -> datetime.datetime:
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime.datetime):
        raise _field_error(_("Give the date and time it starts."), field="starts_at")
    return schedule.local_to_utc(value, time_zone)


def _repeat_until_clean(value: Any) -> datetime.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value.strip())
        except ValueError:
            value = None
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        raise _field_error(_("Give the last date as YYYY-MM-DD."), field="repeat_until")
    return value


# --- Scheduling ----------------------------------------------------------------------------------------------------


def meeting_create(
    *,
    actor: User,
    organisation_id: int,
    kind: str,
    title: str,
    starts_at: datetime.datetime | str,
    duration_minutes: int,
    audience: AudienceSpec,
    description: str = "",
    repeats_weekly: bool = False,
    repeat_until: datetime.date | str | None = None,
    lobby_for_guests: bool = True,
    lobby_for_everyone: bool = False,
    is_recording_enabled: bool = False,
    now: datetime.datetime | None = None,
) -> Meeting:
    """Schedule a meeting in `organisation_id` hosted by `actor`.

    `starts_at` without a zone is the organisation's wall-clock time; a
    weekly series repeats that local time up to `repeat_until` (inclusive).
    Raises NotFound "organisation_not_found" / "group_not_found" /
    "user_not_found"; PermissionDenied "not_verified" (only verified
    educators and the organisation's administrators schedule) and
    "contact_not_allowed" (safe mode); ApplicationError with a `field`
    for bad input, "starts_in_past", "no_invitees", "series_too_long".
    Side effects: occurrences, an "invited" notification for every invitee
    (sockets told after commit), audit entry.
    """
    now = now or timezone.now()
    organisation = _organisation_for_scheduling(actor=actor, organisation_id=organisation_id)
    kind = kind_clean(kind)
    time_zone = organisation.effective_time_zone
    first_start = _starts_at_clean(starts_at, time_zone=time_zone)
    if first_start < now - STARTS_IN_PAST_TOLERANCE:
        raise _field_error(_("The meeting cannot start in the past."), field="starts_at", code="starts_in_past")
    meeting = Meeting(
        organisation=organisation,
        kind=kind,
        title=title_clean(title),
        description=description_clean(description),
        host=actor,
        created_by=actor,
        time_zone=time_zone,
        starts_at=first_start,
        duration_minutes=duration_clean(duration_minutes),
        repeats_weekly=bool(repeats_weekly),
        repeat_until=_repeat_until_clean(repeat_until) if repeats_weekly else None,
        lobby_for_guests=bool(lobby_for_guests),
        lobby_for_everyone=bool(lobby_for_everyone),
        is_recording_enabled=bool(is_recording_enabled),
    )
    starts = schedule.series_starts(
        starts_at=first_start,
        time_zone=time_zone,
        repeats_weekly=meeting.repeats_weekly,
        repeat_until=meeting.repeat_until,
    )
    rules = _audience_rules(actor=actor, organisation=organisation, kind=kind, audience=audience)
    with transaction.atomic():
        meeting.save()
        for rule in rules:
            rule.meeting = meeting
        MeetingAudience.objects.bulk_create(rules)
        duration = datetime.timedelta(minutes=meeting.duration_minutes)
        Occurrence.objects.bulk_create(
            [
                Occurrence(meeting=meeting, sequence=index, starts_at=start, ends_at=start + duration)
                for index, start in enumerate(starts)
            ]
        )
        audit_record(
            actor=actor,
            action="meeting.create",
            target=meeting,
            organisation_id=organisation.pk,
            changes={"kind": kind, "occurrences": len(starts), "starts_at": first_start.isoformat()},
        )
        invited = set(selectors.invitees(meeting=meeting).values_list("pk", flat=True)) - {actor.pk}
        _notify(meeting=meeting, user_ids=invited, kind=NotificationKind.INVITED, key="invited")
        _reminders_soon_enqueue(meeting=meeting, now=now)
    return meeting


def meeting_update(
    *,
    actor: User,
    meeting_id: int,
    title: Any = UNSET,
    description: Any = UNSET,
    starts_at: Any = UNSET,
    duration_minutes: Any = UNSET,
    repeats_weekly: Any = UNSET,
    repeat_until: Any = UNSET,
    audience: Any = UNSET,
    lobby_for_guests: Any = UNSET,
    lobby_for_everyone: Any = UNSET,
    is_recording_enabled: Any = UNSET,
    now: datetime.datetime | None = None,
) -> Meeting:
    """Change a meeting (the host or the organisation's administrators);
    the arguments not given stay. All or nothing.

    A new time or recurrence reschedules the occurrences that have not
    started (those already held keep their time and attendance); their
    reminders are sent again for the new time, and the guest links now
    expire a day after the new last occurrence. Raises what
    `meeting_create` raises, NotFound / PermissionDenied "not_host", and
    ApplicationError 409 "cancelled" for a cancelled meeting and
    "guests_not_allowed" when students would join a meeting with guest
    links. Side effects: invitees are told of a change of title,
    description, time or recording ("changed"), new invitees get
    "invited", people no longer invited get "cancelled"; audited.
    """
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        meeting = (
            Meeting.objects.select_for_update(of=("self",)).select_related("organisation", "host").get(pk=meeting.pk)
        )
        if meeting.cancelled_at is not None:
            raise ApplicationError(_("A cancelled meeting cannot be changed."), code="cancelled", status_code=409)
        tracked = [
            "title",
            "description",
            "starts_at",
            "duration_minutes",
            "repeats_weekly",
            "repeat_until",
            "lobby_for_guests",
            "lobby_for_everyone",
            "is_recording_enabled",
        ]
        old = {name: getattr(meeting, name) for name in tracked}
        if title is not UNSET:
            meeting.title = title_clean(title)
        if description is not UNSET:
            meeting.description = description_clean(description)
        if starts_at is not UNSET:
            meeting.starts_at = _starts_at_clean(starts_at, time_zone=meeting.time_zone)
        if duration_minutes is not UNSET:
            meeting.duration_minutes = duration_clean(duration_minutes)
        if repeats_weekly is not UNSET:
            meeting.repeats_weekly = bool(repeats_weekly)
        if repeat_until is not UNSET:
            meeting.repeat_until = _repeat_until_clean(repeat_until)
        if not meeting.repeats_weekly:
            meeting.repeat_until = None
        for name, value in (
            ("lobby_for_guests", lobby_for_guests),
            ("lobby_for_everyone", lobby_for_everyone),
            ("is_recording_enabled", is_recording_enabled),
        ):
            if value is not UNSET:
                setattr(meeting, name, bool(value))
        invited_before = set(selectors.invitees(meeting=meeting).values_list("pk", flat=True))
        if audience is not UNSET:
            rules = _audience_rules(
                actor=actor, organisation=meeting.organisation, kind=meeting.kind, audience=audience
            )
            has_children = any(rule.kind == AudienceKind.GROUP_STUDENTS for rule in rules) or any(
                rule.user is not None and rule.user.is_safe_mode for rule in rules
            )
            if has_children and _active_links(meeting=meeting, now=now).exists():
                raise ApplicationError(
                    _("Revoke the guest links first: guests cannot join a meeting with students."),
                    code="guests_not_allowed",
                )
            meeting.audience.all().delete()
            for rule in rules:
                rule.meeting = meeting
            MeetingAudience.objects.bulk_create(rules)
        schedule_changed = any(
            old[name] != getattr(meeting, name)
            for name in ("starts_at", "duration_minutes", "repeats_weekly", "repeat_until")
        )
        if schedule_changed:
            starts = schedule.series_starts(
                starts_at=meeting.starts_at,
                time_zone=meeting.time_zone,
                repeats_weekly=meeting.repeats_weekly,
                repeat_until=meeting.repeat_until,
            )
            if not any(start >= now - STARTS_IN_PAST_TOLERANCE for start in starts):
                raise _field_error(_("The meeting cannot start in the past."), field="starts_at", code="starts_in_past")
            _occurrences_reschedule(meeting=meeting, starts=starts, now=now)
            _join_links_expiry_update(meeting=meeting)
        changes = model_changes(meeting, tracked, old)
        announced = {"title", "description", "starts_at", "duration_minutes", "repeats_weekly", "repeat_until"}
        announced.add("is_recording_enabled")
        is_announced = bool(announced & set(changes))
        if is_announced:
            meeting.revision += 1
        meeting.save()
        invited_after = set(selectors.invitees(meeting=meeting).values_list("pk", flat=True))
        if audience is not UNSET:
            changes["audience"] = [len(invited_before), len(invited_after)]
            # People invited anew are reminded like the rest.
            meeting.occurrences.filter(starts_at__gt=now).update(day_before_reminded_at=None, soon_reminded_at=None)
        if changes:
            audit_record(
                actor=actor,
                action="meeting.update",
                target=meeting,
                organisation_id=meeting.organisation_id,
                changes=changes,
            )
        if is_announced:
            _notify(
                meeting=meeting,
                user_ids=(invited_after & invited_before) - {actor.pk},
                kind=NotificationKind.CHANGED,
                key="changed:r" + str(meeting.revision),
            )
        _notify(
            meeting=meeting,
            user_ids=invited_after - invited_before - {actor.pk},
            kind=NotificationKind.INVITED,
            key="invited",
        )
        _notify(
            meeting=meeting,
            user_ids=invited_before - invited_after - {actor.pk},
            kind=NotificationKind.CANCELLED,
            key="uninvited:r" + str(meeting.revision),
        )
        if schedule_changed or audience is not UNSET:
            _reminders_soon_enqueue(meeting=meeting, now=now)
    return meeting


def _occurrences_reschedule(*, meeting: Meeting, starts: list[datetime.datetime], now: datetime.datetime) -> None:
    """Fit the occurrences that have not started to the new `starts`, in
    order: a moved one keeps its row (and a cancellation of it) and loses
    its reminders, so they are sent again for the new time; one no longer
    needed is deleted, or cancelled if someone already asked to join it."""
    duration = datetime.timedelta(minutes=meeting.duration_minutes)
    existing = list(meeting.occurrences.order_by("starts_at", "id"))
    pending = [occurrence for occurrence in existing if occurrence.starts_at > now]
    future_starts = [start for start in starts if start > now]
    next_sequence = max((occurrence.sequence for occurrence in existing), default=-1) + 1
    for occurrence, start in zip(pending, future_starts, strict=False):
        if occurrence.starts_at != start or occurrence.ends_at != start + duration:
            occurrence.starts_at = start
            occurrence.ends_at = start + duration
            occurrence.day_before_reminded_at = None
            occurrence.soon_reminded_at = None
            occurrence.save(update_fields=["starts_at", "ends_at", "day_before_reminded_at", "soon_reminded_at"])
            Reminder.objects.filter(occurrence=occurrence).delete()
    for occurrence in pending[len(future_starts) :]:
        if occurrence.participants.exists():
            Occurrence.objects.filter(pk=occurrence.pk, cancelled_at__isnull=True).update(cancelled_at=now)
        else:
            occurrence.delete()
    extra = future_starts[len(pending) :]
    Occurrence.objects.bulk_create(
        [
            Occurrence(meeting=meeting, sequence=next_sequence + index, starts_at=start, ends_at=start + duration)
            for index, start in enumerate(extra)
        ]
    )


def _join_links_expiry_update(*, meeting: Meeting) -> None:
    """A link lives until a day after the meeting's last occurrence ends
    (see `join_link_create`): a rescheduled meeting takes its links along."""
    last = meeting.occurrences.order_by("-ends_at").values_list("ends_at", flat=True).first()
    if last is not None:
        meeting.join_links.filter(revoked_at__isnull=True).update(expires_at=last + LINK_GRACE)


def meeting_cancel(
    *,
    actor: User,
    meeting_id: int,
    occurrence_id: int | None = None,
    now: datetime.datetime | None = None,
) -> Meeting:
    """Cancel the whole meeting, or one occurrence of a series (the host or
    the organisation's administrators). Cancelling again changes nothing.

    Raises NotFound (also for an occurrence of another meeting),
    PermissionDenied "not_host", ApplicationError 409 "already_over" for an
    occurrence that has ended. Side effects: every invitee is told
    ("cancelled"), no reminder is sent for it any more, an open call is
    told (event "meeting.cancelled") and its lobby is closed; audited.
    """
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        meeting = (
            Meeting.objects.select_for_update(of=("self",)).select_related("organisation", "host").get(pk=meeting.pk)
        )
        if occurrence_id is not None:
            occurrence = meeting.occurrences.filter(pk=occurrence_id).first()
            if occurrence is None:
                raise NotFound(_("Not found."))
            if occurrence.cancelled_at is not None or meeting.cancelled_at is not None:
                return meeting
            if occurrence.ends_at <= now:
                raise ApplicationError(_("This meeting is already over."), code="already_over", status_code=409)
            Occurrence.objects.filter(pk=occurrence.pk).update(cancelled_at=now)
            cancelled = [occurrence.pk]
            key = "cancelled:o" + str(occurrence.pk)
        else:
            if meeting.cancelled_at is not None:
                return meeting
            meeting.cancelled_at = now
            meeting.cancelled_by = actor
            meeting.save(update_fields=["cancelled_at", "cancelled_by", "updated_at"])
            open_occurrences = meeting.occurrences.filter(ends_at__gt=now, cancelled_at__isnull=True)
            cancelled = list(open_occurrences.values_list("pk", flat=True))
            open_occurrences.update(cancelled_at=now)
            occurrence = None
            key = "cancelled"
        Participant.objects.filter(occurrence_id__in=cancelled, status=ParticipantStatus.WAITING).update(
            status=ParticipantStatus.DENIED, decided_at=now
        )
        audit_record(
            actor=actor,
            action="meeting.cancel",
            target=meeting,
            organisation_id=meeting.organisation_id,
            changes={"occurrence": occurrence_id} if occurrence_id is not None else {},
        )
        invited = set(selectors.invitees(meeting=meeting).values_list("pk", flat=True)) - {actor.pk}
        _notify(meeting=meeting, user_ids=invited, kind=NotificationKind.CANCELLED, key=key, occurrence=occurrence)
        for pk in cancelled:
            events.occurrence_event_publish(
                occurrence_id=pk, event={"type": events.MEETING_CANCELLED, "meeting": meeting.pk}
            )
    return meeting


def _notify(
    *,
    meeting: Meeting,
    user_ids: Iterable[int],
    kind: str,
    key: str,
    occurrence: Occurrence | None = None,
) -> list[int]:
    """Store one notification per person (a second one with the same key is
    not stored) and tell their sockets after commit; return who was told."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return []
    MeetingNotification.objects.bulk_create(
        [
            MeetingNotification(user_id=user_id, meeting=meeting, occurrence=occurrence, kind=kind, key=key)
            for user_id in user_ids
        ],
        ignore_conflicts=True,
    )
    events.notifications_publish(
        user_ids=user_ids,
        payload={
            "kind": kind,
            "meeting": {"id": meeting.pk, "title": meeting.title, "kind": meeting.kind},
            "occurrence": (
                {"id": occurrence.pk, "starts_at": occurrence.starts_at.isoformat()} if occurrence is not None else None
            ),
        },
    )
    return user_ids


# --- Join links ------------------------------------------------------------------------------------------------------


def _active_links(*, meeting: Meeting, now: datetime.datetime) -> Any:
    return meeting.join_links.filter(revoked_at__isnull=True, removed_at__isnull=True, expires_at__gt=now)


def join_link_create(
    *, actor: User, meeting_id: int, label: str = "", now: datetime.datetime | None = None
) -> tuple[JoinLink, str]:
    """A personal join link for one guest without an account; returns the
    link and its token, which is shown only now (its SHA-256 is stored).

    Raises NotFound, PermissionDenied "not_host", ApplicationError 409
    "cancelled", 403 "guests_not_allowed" (students are invited: no
    guests), 400 "too_many_links" and 409 "already_over". Audited.
    """
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        if meeting.cancelled_at is not None:
            raise ApplicationError(_("This meeting has been cancelled."), code="cancelled", status_code=409)
        if selectors.meeting_has_children(meeting=meeting):
            raise PermissionDenied(
                _("Students are invited to this meeting: guests cannot join it by a link."), code="guests_not_allowed"
            )
        last = meeting.occurrences.order_by("-ends_at").values_list("ends_at", flat=True).first()
        if last is None or last + selectors.OVERRUN <= now:
            raise ApplicationError(_("This meeting is already over."), code="already_over", status_code=409)
        if meeting.join_links.count() >= JOIN_LINKS_MAX:
            raise ApplicationError(
                _("A meeting may have at most %(count)d links.") % {"count": JOIN_LINKS_MAX}, code="too_many_links"
            )
        label = name_clean(label)[:DISPLAY_NAME_MAX_LENGTH] if isinstance(label, str) else ""
        token = secrets.token_urlsafe(LINK_TOKEN_BYTES)
        link = JoinLink.objects.create(
            meeting=meeting,
            token_hash=selectors.join_token_hash(token),
            label=label,
            created_by=actor,
            expires_at=last + LINK_GRACE,
        )
        audit_record(
            actor=actor,
            action="meeting.link_create",
            target=meeting,
            organisation_id=meeting.organisation_id,
            changes={"link": link.pk},
        )
    return link, token


def join_link_revoke(*, actor: User, meeting_id: int, link_id: int, now: datetime.datetime | None = None) -> JoinLink:
    """Revoke a link: it answers 410 from now on and its guest leaves the
    call. Revoking again changes nothing. Raises NotFound, PermissionDenied
    "not_host". Audited."""
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        link = meeting.join_links.select_for_update(of=("self",)).filter(pk=link_id).first()
        if link is None:
            raise NotFound(_("Not found."))
        if link.revoked_at is not None:
            return link
        link.revoked_at = now
        link.revoked_by = actor
        link.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
        for participant in link.participants.exclude(status=ParticipantStatus.REMOVED):
            _participant_leave_call(participant=participant, status=ParticipantStatus.REMOVED, actor=actor, now=now)
        audit_record(
            actor=actor,
            action="meeting.link_revoke",
            target=meeting,
            organisation_id=meeting.organisation_id,
            changes={"link": link.pk},
        )
    return link


def _link_guessing_key(ip: str | None) -> str:
    return "lessons:link-guessing:" + hashlib.sha256((ip or "unknown").encode()).hexdigest()[:32]


def join_link_find(*, token: str, ip: str | None) -> JoinLink:
    """The link of `token`. Raises NotFound "link_not_found" for an unknown
    token, and RateLimited once the client's IP address has guessed wrong
    LESSON_LINK_GUESS_RATE times: from then on every token it sends is
    refused until the window ends, so that guessing cannot go on."""
    blocked_until = cache.get(_link_guessing_key(ip))
    if blocked_until is not None and blocked_until > time.time():
        wait = math.ceil(blocked_until - time.time())
        raise RateLimited(_("Too many requests. Try again in %(seconds)s s.") % {"seconds": wait}, retry_after=wait)
    link = selectors.join_link_by_token(token=token)
    if link is None:
        try:
            rate_limit_hit(scope="lesson_link_guess", key=ip or "unknown", rate=settings.LESSON_LINK_GUESS_RATE)
        except RateLimited as refusal:
            retry_after = refusal.retry_after or 60
            cache.set(_link_guessing_key(ip), time.time() + retry_after, timeout=retry_after)
            raise
        raise NotFound(_("This link is not valid. Check it or ask the host for a new one."), code="link_not_found")
    return link


# --- Joining and the lobby -------------------------------------------------------------------------------------


def meeting_join(*, user: User, meeting_id: int, now: datetime.datetime | None = None) -> Participant:
    """A signed-in person asks to join the meeting's current occurrence:
    admitted at once, or waiting in the lobby (see selectors.join_verdict,
    whose refusals are raised: 404 not_found, 403 removed / safe_mode, 409
    not_open, 410 cancelled). Asking again returns the same participant; one
    the host did not let in waits again. Side effects: the call's lobby or
    participants change (events after commit)."""
    now = now or timezone.now()
    meeting = Meeting.objects.select_related("organisation", "host").filter(pk=meeting_id).first()
    if meeting is None:
        raise selectors.meeting_not_found()
    with transaction.atomic():
        verdict = selectors.join_access(meeting=meeting, user=user, now=now)
        return _participant_enter(verdict=verdict, user=user, link=None, display_name=user.display_name, now=now)


def guest_join(
    *,
    token: str,
    display_name: Any,
    ip: str | None,
    user: User | None = None,
    now: datetime.datetime | None = None,
) -> Participant:
    """A guest without an account comes in by a personal link with a name.

    The first name given stays with the link (the host lets that name in);
    coming again with the link (another device, a dropped call) is the same
    guest. Raises what `join_link_find` and selectors.join_verdict raise:
    404 link_not_found, 429, 410 link_revoked / link_expired / cancelled,
    403 removed / guests_not_allowed / safe_mode, 409 not_open; and a field
    error for the name. Nothing is stored on a refusal."""
    now = now or timezone.now()
    link = join_link_find(token=token, ip=ip)
    name = guest_name_clean(display_name)
    with transaction.atomic():
        link = (
            JoinLink.objects.select_for_update(of=("self",))
            .select_related("meeting", "meeting__organisation", "meeting__host")
            .get(pk=link.pk)
        )
        verdict = selectors.join_access(meeting=link.meeting, link=link, user=user, now=now)
        if not link.guest_name:
            link.guest_name = name
            link.save(update_fields=["guest_name", "updated_at"])
        return _participant_enter(verdict=verdict, user=None, link=link, display_name=link.guest_name, now=now)


def _participant_enter(
    *,
    verdict: selectors.JoinVerdict,
    user: User | None,
    link: JoinLink | None,
    display_name: str,
    now: datetime.datetime,
) -> Participant:
    occurrence = verdict.occurrence
    assert occurrence is not None and verdict.role is not None
    status = ParticipantStatus.WAITING if verdict.must_wait else ParticipantStatus.ADMITTED
    lookup: dict[str, Any] = {"occurrence": occurrence}
    if link is not None:
        lookup["join_link"] = link
    else:
        assert user is not None
        lookup["user"] = user
    participant, created = Participant.objects.get_or_create(
        **lookup,
        defaults={
            "display_name": display_name[:DISPLAY_NAME_MAX_LENGTH],
            "role": verdict.role,
            "status": status,
            "decided_at": None if verdict.must_wait else now,
        },
    )
    if not created:
        update: dict[str, Any] = {}
        if participant.status == ParticipantStatus.DENIED:
            update = {"status": status, "decided_at": None if verdict.must_wait else now, "decided_by": None}
        elif participant.status == ParticipantStatus.WAITING and not verdict.must_wait:
            update = {"status": ParticipantStatus.ADMITTED, "decided_at": now}
        if participant.role != verdict.role:
            update["role"] = verdict.role
        if update:
            Participant.objects.filter(pk=participant.pk).update(**update)
            for name, value in update.items():
                setattr(participant, name, value)
    _participant_announce(participant=participant)
    return participant


def _participant_announce(*, participant: Participant) -> None:
    event: dict[str, Any]
    if participant.status == ParticipantStatus.WAITING:
        event = {"type": events.LOBBY_CHANGED}
    elif participant.status == ParticipantStatus.ADMITTED:
        event = {
            "type": events.PARTICIPANT_ADMITTED,
            "participant": {"id": participant.pk, "display_name": participant.display_name, "role": participant.role},
        }
    else:
        return
    events.occurrence_event_publish(occurrence_id=participant.occurrence_id, event=event)


def _participant_of_meeting(*, meeting: Meeting, participant_id: Any) -> Participant:
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .filter(pk=participant_id, occurrence__meeting=meeting)
        .first()
        if isinstance(participant_id, int)
        else None
    )
    if participant is None:
        raise NotFound(_("Not found."))
    return participant


def lobby_decide(
    *, actor: User, meeting_id: int, participant_id: int, admit: bool, now: datetime.datetime | None = None
) -> Participant:
    """The host lets someone in from the lobby, or not. Deciding again the
    same way changes nothing. Raises NotFound, PermissionDenied
    "not_host", ApplicationError 409 "removed" for a removed participant."""
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        participant = _participant_of_meeting(meeting=meeting, participant_id=participant_id)
        if participant.status == ParticipantStatus.REMOVED:
            raise ApplicationError(
                _("This participant was removed and cannot come back."), code="removed", status_code=409
            )
        status = ParticipantStatus.ADMITTED if admit else ParticipantStatus.DENIED
        if participant.status == status:
            return participant
        participant.status = status
        participant.decided_at = now
        participant.decided_by = actor
        participant.save(update_fields=["status", "decided_at", "decided_by"])
        if not admit:
            _sessions_close(participant_ids=[participant.pk], now=now)
        events.occurrence_event_publish(occurrence_id=participant.occurrence_id, event={"type": events.LOBBY_CHANGED})
        _participant_announce(participant=participant)
    return participant


def lobby_admit_all(*, actor: User, meeting_id: int, now: datetime.datetime | None = None) -> int:
    """Let everyone waiting for the current occurrence in; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        occurrence = selectors.lobby_occurrence(meeting=meeting, now=now)
        if occurrence is None:
            return 0
        waiting = list(
            Participant.objects.select_for_update(of=("self",)).filter(
                occurrence=occurrence, status=ParticipantStatus.WAITING
            )
        )
        Participant.objects.filter(pk__in=[participant.pk for participant in waiting]).update(
            status=ParticipantStatus.ADMITTED, decided_at=now, decided_by=actor
        )
        for participant in waiting:
            participant.status = ParticipantStatus.ADMITTED
            _participant_announce(participant=participant)
        if waiting:
            events.occurrence_event_publish(occurrence_id=occurrence.pk, event={"type": events.LOBBY_CHANGED})
    return len(waiting)


def participant_remove(
    *, actor: User, meeting_id: int, participant_id: int, now: datetime.datetime | None = None
) -> Participant:
    """The host removes someone from the call or the lobby: they cannot come
    back to this occurrence, and a guest's link stops working for good.
    Raises NotFound, PermissionDenied "not_host", ApplicationError
    "cannot_remove_host". Side effects: their sessions end, the call is told
    ("participant.removed"); audited."""
    now = now or timezone.now()
    with transaction.atomic():
        meeting = selectors.meeting_manage_get(user=actor, meeting_id=meeting_id)
        participant = _participant_of_meeting(meeting=meeting, participant_id=participant_id)
        if participant.role == ParticipantRole.HOST:
            raise ApplicationError(_("The host cannot be removed."), code="cannot_remove_host")
        if participant.status == ParticipantStatus.REMOVED:
            return participant
        _participant_leave_call(participant=participant, status=ParticipantStatus.REMOVED, actor=actor, now=now)
        audit_record(
            actor=actor,
            action="meeting.participant_remove",
            target=meeting,
            organisation_id=meeting.organisation_id,
            changes={"participant": participant.pk, "is_guest": participant.join_link_id is not None},
        )
    return participant


def _participant_leave_call(*, participant: Participant, status: str, actor: User, now: datetime.datetime) -> None:
    Participant.objects.filter(pk=participant.pk).update(status=status, decided_at=now, decided_by=actor)
    participant.status = status
    if participant.join_link_id is not None and status == ParticipantStatus.REMOVED:
        JoinLink.objects.filter(pk=participant.join_link_id, removed_at__isnull=True).update(removed_at=now)
    _sessions_close(participant_ids=[participant.pk], now=now)
    events.occurrence_event_publish(
        occurrence_id=participant.occurrence_id,
        event={"type": events.PARTICIPANT_REMOVED, "participant": {"id": participant.pk}},
    )


# --- Attendance (called by the call's signalling side) ---------------------------------------------------------------


def attendance_join(*, participant_id: int, now: datetime.datetime | None = None) -> AttendanceSession:
    """A participant's media connection is up: a session starts (one open
    session per participant; calling again returns it). Raises
    PermissionDenied "not_admitted" when selectors.participant_may_be_in_call
    says no, and stores nothing then."""
    now = now or timezone.now()
    with transaction.atomic():
        participant = selectors.participant_may_be_in_call(participant_id=participant_id, now=now)
        if participant is None:
            raise PermissionDenied(_("This participant may not be in the call."), code="not_admitted")
        Participant.objects.select_for_update(of=("self",)).filter(pk=participant.pk).first()
        session = AttendanceSession.objects.filter(participant=participant, left_at__isnull=True).first()
        if session is None:
            session = AttendanceSession.objects.create(participant=participant, joined_at=now)
    return session


def attendance_leave(*, participant_id: int, now: datetime.datetime | None = None) -> int:
    """A participant's connection ended: their open session closes. Safe to
    call twice; returns the number of sessions closed."""
    return _sessions_close(participant_ids=[participant_id], now=now or timezone.now())


def occurrence_sessions_close(*, occurrence_id: int, now: datetime.datetime | None = None) -> int:
    """Close every open session of an occurrence (the call ended for
    everyone, or its media worker was lost)."""
    ids = list(Participant.objects.filter(occurrence_id=occurrence_id).values_list("pk", flat=True))
    return _sessions_close(participant_ids=ids, now=now or timezone.now())


def _sessions_close(*, participant_ids: list[int], now: datetime.datetime) -> int:
    return AttendanceSession.objects.filter(participant_id__in=participant_ids, left_at__isnull=True).update(
        left_at=now
    )


# --- Reminders -------------------------------------------------------------------------------------------------------


def reminders_send(*, now: datetime.datetime | None = None, meeting_id: int | None = None) -> int:
    """Send the reminders that are due (Celery beat, every minute): the day
    before (between 24 and 2 hours ahead) and 15 minutes before, to every
    invitee, in the portal and by SMS for those who chose it. None for a
    cancelled meeting or occurrence. Returns the reminders this run sent.

    Exactly once per (occurrence, person, kind), however many workers run
    at once and whenever one is killed: each reminder is a Reminder row
    inserted (INSERT … ON CONFLICT DO NOTHING) with this run's claim in the
    same transaction as the portal notification, so a crash before commit
    leaves nothing and a retry redoes it, and a second run finds the rows
    taken. SMS go out after that commit; one whose worker died before it
    was marked sent is marked failed after SMS_PENDING_TIMEOUT, never sent
    twice.
    """
    now = now or timezone.now()
    Reminder.objects.filter(sms_status=SmsStatus.PENDING, claimed_at__lt=now - SMS_PENDING_TIMEOUT).update(
        sms_status=SmsStatus.FAILED
    )
    sent = 0
    for kind, (nearest, farthest) in REMINDER_WINDOWS.items():
        marker = "day_before_reminded_at" if kind == ReminderKind.DAY_BEFORE else "soon_reminded_at"
        due = (
            Occurrence.objects.filter(
                cancelled_at__isnull=True,
                meeting__cancelled_at__isnull=True,
                starts_at__gt=now + nearest,
                starts_at__lte=now + farthest,
                **{marker + "__isnull": True},
            )
            .select_related("meeting", "meeting__organisation", "meeting__host")
            .order_by("starts_at", "id")
        )
        if meeting_id is not None:
            due = due.filter(meeting_id=meeting_id)
        for occurrence in due[:REMINDER_BATCH]:
            sent += _occurrence_remind(occurrence=occurrence, kind=kind, now=now)
            Occurrence.objects.filter(pk=occurrence.pk, **{marker + "__isnull": True}).update(**{marker: now})
    return sent


def _occurrence_remind(*, occurrence: Occurrence, kind: str, now: datetime.datetime) -> int:
    meeting = occurrence.meeting
    recipients = list(selectors.invitees(meeting=meeting).values_list("pk", "phone"))
    if not recipients:
        return 0
    wanting_sms = set(
        ReminderPreference.objects.filter(user_id__in=[pk for pk, _phone in recipients], by_sms=True).values_list(
            "user_id", flat=True
        )
    )
    claim = uuid.uuid4().hex
    with transaction.atomic():
        # Locking the occurrence makes a cancellation committed meanwhile
        # visible: then nobody is reminded.
        current = Occurrence.objects.select_for_update(of=("self",)).filter(
            pk=occurrence.pk, cancelled_at__isnull=True, meeting__cancelled_at__isnull=True
        )
        if not current.exists():
            return 0
        Reminder.objects.bulk_create(
            [
                Reminder(
                    occurrence=occurrence,
                    user_id=pk,
                    kind=kind,
                    claimed_at=now,
                    claim=claim,
                    sms_status=SmsStatus.PENDING if pk in wanting_sms and phone else SmsStatus.NOT_WANTED,
                )
                for pk, phone in recipients
            ],
            ignore_conflicts=True,
        )
        claimed = list(
            Reminder.objects.filter(occurrence=occurrence, kind=kind, claim=claim).values_list("user_id", "sms_status")
        )
        if not claimed:
            return 0
        _notify(
            meeting=meeting,
            user_ids=[user_id for user_id, _status in claimed],
            kind=REMINDER_NOTIFICATION_KINDS[ReminderKind(kind)],
            # The start is in the key: a moved occurrence is reminded again.
            key=kind + ":o" + str(occurrence.pk) + ":" + str(int(occurrence.starts_at.timestamp())),
            occurrence=occurrence,
        )
        if any(status == SmsStatus.PENDING for _user_id, status in claimed):
            transaction.on_commit(partial(_reminder_sms_send, claim))
    return len(claimed)


def reminder_text(*, occurrence: Occurrence, kind: str, language: str) -> str:
    """The SMS (and the notification line) of a reminder, in `language`,
    with the time in the meeting's time zone."""
    meeting = occurrence.meeting
    local = schedule.utc_to_local(occurrence.starts_at, meeting.time_zone)
    title = meeting.title if len(meeting.title) <= SMS_TITLE_LENGTH else meeting.title[: SMS_TITLE_LENGTH - 1] + "…"
    with translation.override(language):
        when = date_format(local, "j E H:i")
        if kind == ReminderKind.SOON:
            return _("Parta: «%(title)s» starts in 15 minutes, at %(time)s. Join from the portal.") % {
                "title": title,
                "time": date_format(local, "H:i"),
            }
        return _("Parta: reminder — «%(title)s» on %(when)s (%(organisation)s).") % {
            "title": title,
            "when": when,
            "organisation": meeting.organisation.short_name,
        }


def _reminder_sms_send(claim: str) -> None:
    reminders = list(
        Reminder.objects.filter(claim=claim, sms_status=SmsStatus.PENDING).select_related(
            "user", "occurrence", "occurrence__meeting", "occurrence__meeting__organisation"
        )
    )
    sent = failed = 0
    for reminder in reminders:
        user = reminder.user
        if not user.phone or not user.is_active:
            Reminder.objects.filter(pk=reminder.pk, sms_status=SmsStatus.PENDING).update(sms_status=SmsStatus.FAILED)
            failed += 1
            continue
        text = reminder_text(occurrence=reminder.occurrence, kind=reminder.kind, language=user.language)
        try:
            sms_send(to=str(user.phone), text=text)
        except SmsDeliveryError:
            Reminder.objects.filter(pk=reminder.pk, sms_status=SmsStatus.PENDING).update(sms_status=SmsStatus.FAILED)
            failed += 1
            continue
        Reminder.objects.filter(pk=reminder.pk, sms_status=SmsStatus.PENDING).update(
            sms_status=SmsStatus.SENT, sms_sent_at=timezone.now()
        )
        sent += 1
    logger.info("meeting reminders: %d SMS sent, %d failed", sent, failed)


def _reminders_soon_enqueue(*, meeting: Meeting, now: datetime.datetime) -> None:
    """When an occurrence is due for a reminder already, ask a worker now
    rather than at the next beat — after the commit, never before."""
    farthest = REMINDER_WINDOWS[ReminderKind.DAY_BEFORE][1]
    if not meeting.occurrences.filter(
        cancelled_at__isnull=True, starts_at__gt=now, starts_at__lte=now + farthest
    ).exists():
        return
    meeting_id = meeting.pk

    def enqueue() -> None:
        from lessons.tasks import meeting_reminders_send

        try:
            meeting_reminders_send.delay(meeting_id)
        except Exception:
            # The broker is away: the beat's next run sends them.
            logger.warning("meeting reminders not enqueued (broker unavailable); the beat will send them")

    transaction.on_commit(enqueue)


# --- Notifications and preferences ------------------------------------------------------------------------------


def notifications_mark_read(
    *, user: User, notification_ids: Iterable[int] | None = None, now: datetime.datetime | None = None
) -> int:
    """Mark the person's meeting notifications read (all of them, or those
    named; others' ids are ignored). Returns how many changed."""
    notifications = MeetingNotification.objects.filter(user_id=user.pk, read_at__isnull=True)
    if notification_ids is not None:
        notifications = notifications.filter(pk__in=[pk for pk in notification_ids if isinstance(pk, int)])
    return notifications.update(read_at=now or timezone.now())


def reminder_preference_update(*, user: User, by_sms: bool) -> ReminderPreference:
    """Choose whether meeting reminders come by SMS too (they always come in
    the portal). Raises ApplicationError "no_phone" when SMS is asked for
    an account without a phone number."""
    if by_sms and not user.phone:
        raise ApplicationError(_("Your account has no phone number for SMS."), code="no_phone")
    preference, _created = ReminderPreference.objects.update_or_create(user=user, defaults={"by_sms": bool(by_sms)})
    return preference
