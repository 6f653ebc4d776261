"""Reads and rules of lessons and meetings.

The rule "may this person join this meeting" lives here, in
`join_verdict`, and every interface (REST, HTML, the signalling of the
call, the admin) asks it. "May this person see this meeting" is its first
half, `meeting_role`. Who may schedule is `user_may_schedule`; who is
invited is `meetings_of_user_filter` (for lists) and `invitees` (for one
meeting) — two shapes of one definition.
"""

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from common.errors import ApplicationError, NotFound, PermissionDenied
from lessons import schedule
from lessons.models import (
    AttendanceSession,
    AudienceKind,
    JoinLink,
    Meeting,
    MeetingAudience,
    MeetingNotification,
    Occurrence,
    Participant,
    ParticipantRole,
    ParticipantStatus,
    ReminderPreference,
)
from organisations.models import (
    Guardianship,
    Membership,
    Organisation,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
    VerificationStatus,
)
from organisations.selectors import (
    SCHOOL_STAFF_ROLES,
    administered_organisations,
    contact_is_allowed,
    contacts_filter,
    user_administers,
)

# Members may come in this long before the start, hosts a little earlier
# to get ready; a call may overrun its planned end by OVERRUN.
JOIN_OPENS_BEFORE = datetime.timedelta(minutes=15)
HOST_OPENS_BEFORE = datetime.timedelta(minutes=30)
OVERRUN = datetime.timedelta(minutes=30)
SCHEDULING_ROLES = (Role.TEACHER, Role.STAFF, Role.ADMINISTRATOR)


def meeting_not_found() -> NotFound:
    return NotFound(_("Not found."))


# --- Who may schedule ----------------------------------------------------------------------------------------


def scheduling_memberships(*, user: User) -> QuerySet[Membership]:
    """The memberships that let `user` schedule meetings: a verified
    educator's role (teacher, staff, administrator verified by the school),
    or the organisation's own administrator."""
    if not user.is_authenticated or not user.is_active:
        return Membership.objects.none()
    return Membership.objects.active().filter(
        Q(role__in=SCHEDULING_ROLES, verification_status=VerificationStatus.VERIFIED) | Q(role=Role.ADMINISTRATOR),
        user=user,
    )


def organisations_user_may_schedule_in(*, user: User) -> QuerySet[Organisation]:
    return Organisation.objects.filter(
        pk__in=scheduling_memberships(user=user).values("organisation_id")
    ).select_related("region")


def user_may_schedule(*, user: User, organisation: Organisation | int) -> bool:
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    return scheduling_memberships(user=user).filter(organisation_id=organisation_id).exists()


def user_may_schedule_anywhere(*, user: User) -> bool:
    return scheduling_memberships(user=user).exists()


# --- Who is invited --------------------------------------------------------------------------------------------


def _student_group_ids(user: User) -> QuerySet[Any]:
    return StudyGroupStudent.objects.filter(student_id=user.pk).values("group_id")


def _children_group_ids(user: User) -> QuerySet[Any]:
    children = Guardianship.objects.filter(parent_id=user.pk, ended_at__isnull=True).values("student_id")
    return StudyGroupStudent.objects.filter(student_id__in=children).values("group_id")


def _staff_organisation_ids(user: User) -> QuerySet[Any]:
    return Membership.objects.active().filter(user_id=user.pk, role__in=SCHOOL_STAFF_ROLES).values("organisation_id")


def meetings_of_user_filter(*, user: User) -> Q:
    """A filter on Meeting: the meetings `user` hosts or is invited to by one
    of their rules (before the safe-mode rule, see `child_may_attend`)."""
    audience = MeetingAudience.objects.filter(
        Q(kind=AudienceKind.USER, user_id=user.pk)
        | Q(kind=AudienceKind.GROUP_STUDENTS, study_group_id__in=_student_group_ids(user))
        | Q(kind=AudienceKind.GROUP_GUARDIANS, study_group_id__in=_children_group_ids(user))
        | Q(kind=AudienceKind.STAFF, meeting__organisation_id__in=_staff_organisation_ids(user))
    )
    return Q(host_id=user.pk) | Q(pk__in=audience.values("meeting_id"))


def user_is_invited(*, user: User, meeting: Meeting) -> bool:
    return Meeting.objects.filter(pk=meeting.pk).filter(meetings_of_user_filter(user=user)).exists()


def audience_user_ids(*, meeting: Meeting) -> set[int]:
    """Everyone the rules of `meeting` name today, the host included, before
    the safe-mode rule."""
    rules = list(meeting.audience.all())
    ids: set[int] = {meeting.host_id} if meeting.host_id else set()
    ids.update(rule.user_id for rule in rules if rule.kind == AudienceKind.USER and rule.user_id)
    student_groups = [rule.study_group_id for rule in rules if rule.kind == AudienceKind.GROUP_STUDENTS]
    guardian_groups = [rule.study_group_id for rule in rules if rule.kind == AudienceKind.GROUP_GUARDIANS]
    if student_groups:
        ids.update(StudyGroupStudent.objects.filter(group_id__in=student_groups).values_list("student_id", flat=True))
    if guardian_groups:
        ids.update(
            Guardianship.objects.filter(
                ended_at__isnull=True,
                student_id__in=StudyGroupStudent.objects.filter(group_id__in=guardian_groups).values("student_id"),
            ).values_list("parent_id", flat=True)
        )
    if any(rule.kind == AudienceKind.STAFF for rule in rules):
        ids.update(
            Membership.objects.active()
            .filter(organisation_id=meeting.organisation_id, role__in=SCHOOL_STAFF_ROLES)
            .values_list("user_id", flat=True)
        )
    return ids


def invitees(*, meeting: Meeting) -> QuerySet[User]:
    """The active people invited to `meeting` (host included), without the
    children in safe mode who may not be in it (see `child_may_attend`)."""
    people = User.objects.filter(pk__in=audience_user_ids(meeting=meeting), is_active=True, deleted_at__isnull=True)
    return people.exclude(pk__in=_children_kept_out(meeting=meeting, candidates=people))


def _children_kept_out(*, meeting: Meeting, candidates: QuerySet[User]) -> QuerySet[User]:
    children = candidates.filter(is_safe_mode=True)
    host = meeting.host
    if host is None or not _host_is_staff(meeting=meeting):
        return children.values("pk")  # type: ignore[return-value]
    allowed = (
        User.objects.filter(contacts_filter(actor=host))
        .filter(
            memberships__organisation_id=meeting.organisation_id,
            memberships__role=Role.STUDENT,
            memberships__ended_at__isnull=True,
        )
        .values("pk")
    )
    return children.exclude(pk__in=allowed).exclude(pk=host.pk).values("pk")  # type: ignore[return-value]


def _is_staff_of(*, user_id: int, organisation_id: int) -> bool:
    return (
        Membership.objects.active()
        .filter(user_id=user_id, organisation_id=organisation_id, role__in=SCHOOL_STAFF_ROLES)
        .exists()
    )


def _host_is_staff(*, meeting: Meeting) -> bool:
    return meeting.host_id is not None and _is_staff_of(
        user_id=meeting.host_id, organisation_id=meeting.organisation_id
    )


def child_may_attend(*, child: User, meeting: Meeting) -> bool:
    """Children's safety (SPEC §3): a student in safe mode may be only in
    meetings of their own organisation, hosted by its staff, whose host is
    one of the child's contacts (`contact_is_allowed`). Anyone else: True."""
    if not child.is_safe_mode or child.pk == meeting.host_id:
        return True
    if meeting.host is None or not _host_is_staff(meeting=meeting):
        return False
    is_student_there = (
        Membership.objects.active()
        .filter(user_id=child.pk, organisation_id=meeting.organisation_id, role=Role.STUDENT)
        .exists()
    )
    return is_student_there and contact_is_allowed(actor=meeting.host, child=child)


def meeting_has_children(*, meeting: Meeting) -> bool:
    """Students are (or may be) invited: no guests by link then."""
    return meeting.audience.filter(
        Q(kind=AudienceKind.GROUP_STUDENTS) | Q(kind=AudienceKind.USER, user__is_safe_mode=True)
    ).exists()


# --- Who may see and manage a meeting --------------------------------------------------------------------------


def user_manages_meeting(*, user: User, meeting: Meeting) -> bool:
    """The host and the organisation's administrators run a meeting: edit,
    cancel, links, lobby, removal, attendance."""
    if not user.is_authenticated or not user.is_active:
        return False
    return meeting.host_id == user.pk or user_administers(user=user, organisation=meeting.organisation)


def meeting_role(*, user: User | None, meeting: Meeting) -> str | None:
    """ "host" (the host and the organisation's administrators), "member"
    (an invitee allowed by the safe-mode rule) or None (may not see it)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user_manages_meeting(user=user, meeting=meeting):
        return ParticipantRole.HOST
    if user_is_invited(user=user, meeting=meeting) and child_may_attend(child=user, meeting=meeting):
        return ParticipantRole.MEMBER
    return None


def meeting_get(*, user: User, meeting_id: int) -> tuple[Meeting, str]:
    """A meeting `user` may see, with their role. Raises NotFound otherwise
    (a meeting one may not see answers exactly like one that does not exist)."""
    meeting = (
        Meeting.objects.select_related("organisation", "organisation__region", "host").filter(pk=meeting_id).first()
    )
    if meeting is None:
        raise meeting_not_found()
    role = meeting_role(user=user, meeting=meeting)
    if role is None:
        raise meeting_not_found()
    return meeting, role


def meeting_manage_get(*, user: User, meeting_id: int) -> Meeting:
    """A meeting `user` runs. Raises NotFound when they may not see it and
    PermissionDenied "not_host" when they see it but do not run it."""
    meeting, role = meeting_get(user=user, meeting_id=meeting_id)
    if role != ParticipantRole.HOST:
        raise PermissionDenied(_("Only the host may do this."), code="not_host")
    return meeting


def meetings_of_user(*, user: User) -> QuerySet[Meeting]:
    """Meetings `user` hosts or is invited to, newest first (the safe-mode
    rule is applied by `meeting_role` when one is opened, and by the
    calendar)."""
    if not user.is_authenticated or not user.is_active:
        return Meeting.objects.none()
    return (
        Meeting.objects.filter(meetings_of_user_filter(user=user))
        .select_related("organisation", "host")
        .prefetch_related("audience")
        .order_by("-starts_at", "-id")
    )


def meeting_roles(*, user: User, meetings: Iterable[Meeting]) -> list[tuple[Meeting, str]]:
    """`meeting_role` over a page of `meetings_of_user`, in a fixed number of
    queries (a child's page checks each meeting against the safe-mode rule)."""
    administered = set(administered_organisations(user=user).values_list("pk", flat=True))
    result = []
    for meeting in meetings:
        if meeting.host_id == user.pk or meeting.organisation_id in administered:
            result.append((meeting, str(ParticipantRole.HOST)))
        elif not user.is_safe_mode or child_may_attend(child=user, meeting=meeting):
            result.append((meeting, str(ParticipantRole.MEMBER)))
    return result


def meeting_audience_summary(*, meeting: Meeting) -> dict[str, Any]:
    rules = list(meeting.audience.all())
    return {
        "student_group_ids": sorted(
            rule.study_group_id for rule in rules if rule.kind == AudienceKind.GROUP_STUDENTS and rule.study_group_id
        ),
        "guardian_group_ids": sorted(
            rule.study_group_id for rule in rules if rule.kind == AudienceKind.GROUP_GUARDIANS and rule.study_group_id
        ),
        "invite_staff": any(rule.kind == AudienceKind.STAFF for rule in rules),
        "user_ids": sorted(rule.user_id for rule in rules if rule.kind == AudienceKind.USER and rule.user_id),
    }


def meeting_audience_groups(*, meeting: Meeting) -> list[tuple[str, StudyGroup]]:
    """(rule kind, class) for the page."""
    return [
        (rule.kind, rule.study_group)
        for rule in meeting.audience.select_related("study_group").filter(study_group__isnull=False)
        if rule.study_group is not None
    ]


def occurrences_upcoming(
    *, meeting: Meeting, now: datetime.datetime | None = None, limit: int = 10
) -> list[Occurrence]:
    now = now or timezone.now()
    return list(meeting.occurrences.filter(ends_at__gt=now).order_by("starts_at")[:limit])


# --- May this person join this meeting ------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinVerdict:
    """The answer of `join_verdict`: whether, as whom and into which
    occurrence one may come in, whether one waits in the lobby, or why not
    (`code`, `message` and the HTTP `status_code` of the refusal)."""

    meeting: Meeting
    is_allowed: bool
    code: str
    message: str = ""
    status_code: int = 200
    role: str | None = None
    occurrence: Occurrence | None = None
    must_wait: bool = False
    opens_at: datetime.datetime | None = None
    participant: Participant | None = None

    def refusal(self) -> ApplicationError:
        if self.status_code == 404:
            return NotFound(self.message, code=self.code)
        if self.status_code == 403:
            return PermissionDenied(self.message, code=self.code)
        extra = {"opens_at": self.opens_at.isoformat()} if self.opens_at else None
        return ApplicationError(self.message, code=self.code, status_code=self.status_code, extra=extra)


def current_occurrence(
    *, meeting: Meeting, now: datetime.datetime, opens_before: datetime.timedelta = JOIN_OPENS_BEFORE
) -> tuple[Occurrence | None, Occurrence | None]:
    """(the occurrence one may join now, the next one to open) — the first
    is None outside every occurrence's window. Cancelled ones are skipped."""
    candidates = list(
        meeting.occurrences.filter(cancelled_at__isnull=True, ends_at__gt=now - OVERRUN).order_by("starts_at")[:2]
    )
    for occurrence in candidates:
        if occurrence.starts_at - opens_before <= now < occurrence.ends_at + OVERRUN:
            return occurrence, None
    return None, (candidates[0] if candidates else None)


def join_verdict(
    *,
    meeting: Meeting,
    user: User | None = None,
    link: JoinLink | None = None,
    now: datetime.datetime | None = None,
) -> JoinVerdict:
    """May this person (a signed-in `user`, or the guest holding `link`)
    join `meeting` now, and into which occurrence?

    The one rule every interface asks. In order:
    - a link that is revoked or expired: 410 link_revoked / link_expired;
    - a member must be able to see the meeting (host, the organisation's
      administrators, or an invitee allowed by the safe-mode rule), else
      404 not_found, the same as for a meeting that does not exist;
    - a child in safe mode is never a guest (403 safe_mode) and is let into
      a meeting only by `child_may_attend`; nobody but the host and the
      organisation's own staff runs a call with students (403 safe_mode:
      an authority's administrators manage such a meeting but stay out);
    - guests never come into a meeting with students (403 guests_not_allowed);
    - a cancelled meeting: 410 cancelled;
    - a participant the host removed — a person from that occurrence, a
      guest's link for good: 403 removed;
    - outside the time window of every occurrence: 409 not_open with the
      time it opens.
    Hosts never wait in the lobby; guests wait when `lobby_for_guests` is
    on (the default), everyone else when `lobby_for_everyone` is.
    """
    now = now or timezone.now()
    role: str | None
    if link is not None:
        if link.meeting_id != meeting.pk:
            return _refused(meeting, "not_found", _("Not found."), 404)
        if link.revoked_at is not None:
            return _refused(meeting, "link_revoked", _("This link has been revoked."), 410)
        if link.expires_at <= now:
            return _refused(meeting, "link_expired", _("This link has expired."), 410)
        if user is not None and user.is_authenticated and user.is_safe_mode:
            return _refused(
                meeting, "safe_mode", _("Students join their school's meetings from the portal, not by a link."), 403
            )
        role = ParticipantRole.GUEST
    else:
        role = meeting_role(user=user, meeting=meeting)
        if role is None:
            return _refused(meeting, "not_found", _("Not found."), 404)
    if meeting.cancelled_at is not None:
        return _refused(meeting, "cancelled", _("This meeting has been cancelled."), 410)
    if (
        role == ParticipantRole.HOST
        and user is not None
        and user.pk != meeting.host_id
        and not _is_staff_of(user_id=user.pk, organisation_id=meeting.organisation_id)
        and meeting_has_children(meeting=meeting)
    ):
        # Those who run the meeting from above (an authority's administrators,
        # the platform's superusers) do not come into a call with children.
        return _refused(meeting, "safe_mode", _("Only the school's own staff may join a meeting with students."), 403)
    if role == ParticipantRole.GUEST:
        assert link is not None
        if link.removed_at is not None:
            return _refused(meeting, "removed", _("The host has removed you from this meeting."), 403)
        if meeting_has_children(meeting=meeting):
            return _refused(meeting, "guests_not_allowed", _("Guests cannot join a meeting with students."), 403)
    opens_before = HOST_OPENS_BEFORE if role == ParticipantRole.HOST else JOIN_OPENS_BEFORE
    occurrence, upcoming = current_occurrence(meeting=meeting, now=now, opens_before=opens_before)
    if occurrence is None:
        if upcoming is None:
            return _refused(meeting, "not_open", _("This meeting has no upcoming sittings."), 409)
        opens_at = upcoming.starts_at - opens_before
        return JoinVerdict(
            meeting=meeting,
            is_allowed=False,
            code="not_open",
            message=_("The meeting opens %(minutes)d minutes before it starts.")
            % {"minutes": int(opens_before.total_seconds() // 60)},
            status_code=409,
            role=role,
            opens_at=opens_at,
            occurrence=upcoming,
        )
    participant = _participant_of(occurrence=occurrence, user=user if link is None else None, link=link)
    if participant is not None and participant.status == ParticipantStatus.REMOVED:
        return _refused(meeting, "removed", _("The host has removed you from this meeting."), 403)
    if role == ParticipantRole.HOST:
        must_wait = False
    elif role == ParticipantRole.GUEST:
        must_wait = meeting.lobby_for_guests or meeting.lobby_for_everyone
    else:
        must_wait = meeting.lobby_for_everyone
    return JoinVerdict(
        meeting=meeting,
        is_allowed=True,
        code="ok",
        role=role,
        occurrence=occurrence,
        must_wait=must_wait,
        participant=participant,
    )


def join_access(
    *,
    meeting: Meeting,
    user: User | None = None,
    link: JoinLink | None = None,
    now: datetime.datetime | None = None,
) -> JoinVerdict:
    """`join_verdict`, raising its refusal as an ApplicationError."""
    verdict = join_verdict(meeting=meeting, user=user, link=link, now=now)
    if not verdict.is_allowed:
        raise verdict.refusal()
    return verdict


def _refused(meeting: Meeting, code: str, message: str, status_code: int) -> JoinVerdict:
    return JoinVerdict(meeting=meeting, is_allowed=False, code=code, message=message, status_code=status_code)


def _participant_of(*, occurrence: Occurrence, user: User | None, link: JoinLink | None) -> Participant | None:
    if link is not None:
        return Participant.objects.filter(occurrence=occurrence, join_link=link).first()
    if user is not None and user.is_authenticated:
        return Participant.objects.filter(occurrence=occurrence, user_id=user.pk).first()
    return None


def participant_may_be_in_call(*, participant_id: int, now: datetime.datetime | None = None) -> Participant | None:
    """The participant, when they are admitted and `join_verdict` still lets
    them in (for the signalling side, at connect and on every action):
    None when they are not (removed, link revoked, meeting cancelled, the
    child's rule, time over)."""
    participant = (
        Participant.objects.select_related("occurrence", "occurrence__meeting", "user", "join_link")
        .filter(pk=participant_id)
        .first()
    )
    if participant is None or participant.status != ParticipantStatus.ADMITTED:
        return None
    meeting = participant.occurrence.meeting
    verdict = join_verdict(
        meeting=meeting,
        user=participant.user if participant.join_link_id is None else None,
        link=participant.join_link,
        now=now,
    )
    if not verdict.is_allowed or verdict.occurrence is None or verdict.occurrence.pk != participant.occurrence_id:
        return None
    return participant


# --- Join links ------------------------------------------------------------------------------------------------


def join_token_hash(token: str) -> str:
    """The SHA-256 of a link's token: what is stored and looked up (a token
    carries 256 random bits, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def join_link_by_token(*, token: str) -> JoinLink | None:
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        return None
    return (
        JoinLink.objects.select_related("meeting", "meeting__organisation", "meeting__host")
        .filter(token_hash=join_token_hash(token))
        .first()
    )


def join_links_of_meeting(*, meeting: Meeting) -> QuerySet[JoinLink]:
    return meeting.join_links.select_related("created_by").order_by("-created_at", "-id")


# --- Lobby and participants ------------------------------------------------------------------------------------


def participants_of_occurrence(*, occurrence: Occurrence, statuses: Iterable[str] | None = None) -> list[Participant]:
    participants = Participant.objects.filter(occurrence=occurrence).select_related("user", "join_link")
    if statuses is not None:
        participants = participants.filter(status__in=list(statuses))
    return list(participants.order_by("requested_at", "id"))


def lobby_occurrence(*, meeting: Meeting, now: datetime.datetime | None = None) -> Occurrence | None:
    """The occurrence whose lobby the host sees now."""
    occurrence, _upcoming = current_occurrence(
        meeting=meeting, now=now or timezone.now(), opens_before=HOST_OPENS_BEFORE
    )
    return occurrence


# --- Calendar --------------------------------------------------------------------------------------------------


def user_time_zone(*, user: User) -> str:
    """The person's own zone, else their first organisation's (a parent's:
    their child's school's), else the portal's."""
    if user.time_zone:
        return user.time_zone
    membership = (
        Membership.objects.active()
        .filter(user_id=user.pk)
        .select_related("organisation", "organisation__region")
        .order_by("id")
        .first()
    )
    if membership is not None:
        return membership.organisation.effective_time_zone
    guardianship = (
        Guardianship.objects.filter(parent_id=user.pk, ended_at__isnull=True)
        .select_related("organisation", "organisation__region")
        .order_by("id")
        .first()
    )
    if guardianship is not None:
        return guardianship.organisation.effective_time_zone
    return str(settings.TIME_ZONE)


@dataclass
class CalendarEntry:
    occurrence: Occurrence
    meeting: Meeting
    role: str
    starts_at: datetime.datetime
    ends_at: datetime.datetime

    @property
    def is_cancelled(self) -> bool:
        return self.occurrence.cancelled_at is not None or self.meeting.cancelled_at is not None


@dataclass
class CalendarDay:
    date: datetime.date
    entries: list[CalendarEntry] = field(default_factory=list)


@dataclass
class CalendarWeek:
    week: str
    monday: datetime.date
    time_zone: str
    days: list[CalendarDay]
    previous_week: str
    next_week: str

    @property
    def entries(self) -> list[CalendarEntry]:
        return [entry for day in self.days for entry in day.entries]


def calendar_week(*, user: User, monday: datetime.date, time_zone: str | None = None) -> CalendarWeek:
    """The week (Monday to Sunday in `time_zone`, the person's by default)
    of every occurrence of the meetings `user` hosts or is invited to,
    cancelled ones included (marked), in time order."""
    time_zone = time_zone or user_time_zone(user=user)
    schedule.zone(time_zone)
    start, end = schedule.week_bounds(monday, time_zone)
    occurrences = list(
        Occurrence.objects.filter(
            starts_at__lt=end,
            ends_at__gt=start,
            meeting__in=Meeting.objects.filter(meetings_of_user_filter(user=user)),
        )
        .select_related("meeting", "meeting__organisation", "meeting__host")
        .order_by("starts_at", "id")
    )
    days = [CalendarDay(date=monday + datetime.timedelta(days=offset)) for offset in range(7)]
    verdicts: dict[int, bool] = {}
    for occurrence in occurrences:
        meeting = occurrence.meeting
        if meeting.pk not in verdicts:
            verdicts[meeting.pk] = child_may_attend(child=user, meeting=meeting)
        if not verdicts[meeting.pk]:
            continue
        local_start = schedule.utc_to_local(occurrence.starts_at, time_zone)
        index = (local_start.date() - monday).days
        if not 0 <= index < 7:
            index = 0
        days[index].entries.append(
            CalendarEntry(
                occurrence=occurrence,
                meeting=meeting,
                role=ParticipantRole.HOST if meeting.host_id == user.pk else ParticipantRole.MEMBER,
                starts_at=local_start,
                ends_at=schedule.utc_to_local(occurrence.ends_at, time_zone),
            )
        )
    return CalendarWeek(
        week=schedule.iso_week_name(monday),
        monday=monday,
        time_zone=time_zone,
        days=days,
        previous_week=schedule.iso_week_name(monday - schedule.WEEK),
        next_week=schedule.iso_week_name(monday + schedule.WEEK),
    )


# --- Notifications and preferences -----------------------------------------------------------------------------


def notifications_of_user(*, user: User, unread_only: bool = False) -> QuerySet[MeetingNotification]:
    notifications = MeetingNotification.objects.filter(user_id=user.pk).select_related(
        "meeting", "meeting__organisation", "occurrence"
    )
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.order_by("-created_at", "-id")


def reminder_preference_of(*, user: User) -> bool:
    """Whether `user` wants reminders by SMS too."""
    return bool(ReminderPreference.objects.filter(user_id=user.pk, by_sms=True).exists())


# --- Attendance ------------------------------------------------------------------------------------------------


@dataclass
class AttendanceRow:
    name: str
    user: User | None
    role: str
    is_guest: bool
    status: str  # "attended", "admitted", "waiting", "denied", "removed", "never_came"
    first_joined_at: datetime.datetime | None = None
    last_left_at: datetime.datetime | None = None
    seconds: int = 0
    sessions: int = 0

    @property
    def minutes(self) -> int:
        return (self.seconds + 59) // 60

    @property
    def has_come(self) -> bool:
        return self.sessions > 0


def occurrence_for_report(
    *, meeting: Meeting, occurrence_id: int | None, now: datetime.datetime | None = None
) -> Occurrence:
    """The occurrence named, or the latest that has started (else the first).
    Raises NotFound for an occurrence of another meeting."""
    now = now or timezone.now()
    occurrences = meeting.occurrences.all()
    if occurrence_id is not None:
        occurrence = occurrences.filter(pk=occurrence_id).first()
        if occurrence is None:
            raise NotFound(_("Not found."))
        return occurrence
    occurrence = occurrences.filter(starts_at__lte=now).order_by("-starts_at").first()
    if occurrence is None:
        occurrence = occurrences.order_by("starts_at").first()
    if occurrence is None:
        raise NotFound(_("Not found."))
    return occurrence


def occurrence_attendance(*, occurrence: Occurrence, now: datetime.datetime | None = None) -> list[AttendanceRow]:
    """Who came to `occurrence` (join and leave times from the sessions, an
    open session counted up to `now`), who asked and was not let in, and
    every invitee who never came. Hosts first, then by name."""
    now = now or timezone.now()
    meeting = occurrence.meeting
    participants = list(
        Participant.objects.filter(occurrence=occurrence)
        .select_related("user", "join_link")
        .prefetch_related(Prefetch("sessions", queryset=AttendanceSession.objects.order_by("joined_at", "id")))
    )
    rows: list[AttendanceRow] = []
    seen_users: set[int] = set()
    for participant in participants:
        sessions = list(participant.sessions.all())
        seconds = 0
        for session in sessions:
            left = session.left_at or max(session.joined_at, min(now, occurrence.ends_at + OVERRUN))
            seconds += max(0, int((left - session.joined_at).total_seconds()))
        if participant.user_id:
            seen_users.add(participant.user_id)
        if sessions:
            status = "attended"
        else:
            status = participant.status if participant.status != ParticipantStatus.ADMITTED else "never_came"
        rows.append(
            AttendanceRow(
                name=participant.user.display_name if participant.user else participant.display_name,
                user=participant.user,
                role=participant.role,
                is_guest=participant.join_link_id is not None,
                status=status,
                first_joined_at=sessions[0].joined_at if sessions else None,
                last_left_at=_last_left(sessions),
                seconds=seconds,
                sessions=len(sessions),
            )
        )
    for person in invitees(meeting=meeting).exclude(pk__in=seen_users).order_by("last_name", "first_name", "id"):
        rows.append(
            AttendanceRow(
                name=person.display_name,
                user=person,
                role=ParticipantRole.HOST if person.pk == meeting.host_id else ParticipantRole.MEMBER,
                is_guest=False,
                status="never_came",
            )
        )
    rows.sort(key=lambda row: (row.role != ParticipantRole.HOST, not row.has_come, row.name.casefold()))
    return rows


def _last_left(sessions: list[AttendanceSession]) -> datetime.datetime | None:
    if not sessions or any(session.left_at is None for session in sessions):
        return None
    return max(session.left_at for session in sessions if session.left_at is not None)


def study_group_attendance_get(*, user: User, group_id: int) -> StudyGroup:
    """A class whose attendance `user` may read: its teachers, its homeroom
    teacher and the organisation's administrators. NotFound otherwise."""
    group = StudyGroup.objects.select_related("organisation", "organisation__region").filter(pk=group_id).first()
    if group is None or not user.is_authenticated or not user.is_active:
        raise NotFound(_("Not found."))
    if (
        group.homeroom_teacher_id == user.pk
        or StudyGroupTeacher.objects.filter(group=group, teacher_id=user.pk).exists()
        or user_administers(user=user, organisation=group.organisation)
    ):
        return group
    raise NotFound(_("Not found."))


@dataclass
class GroupAttendanceRow:
    student: User
    attended: int
    missed: int
    marks: list[bool]

    @property
    def never_came(self) -> bool:
        return self.attended == 0


@dataclass
class GroupAttendance:
    group: StudyGroup
    date_from: datetime.date
    date_to: datetime.date
    time_zone: str
    lessons: list[Occurrence]
    rows: list[GroupAttendanceRow]

    @property
    def never_came(self) -> list[User]:
        return [row.student for row in self.rows if row.never_came and self.lessons]


def group_attendance(
    *,
    group: StudyGroup,
    date_from: datetime.date,
    date_to: datetime.date,
    now: datetime.datetime | None = None,
) -> GroupAttendance:
    """Attendance of a class over a term: every lesson held for its students
    between the two local dates (inclusive; not cancelled, already
    started), and for each current student of the class how many they came
    to — those with none are the ones who never came."""
    now = now or timezone.now()
    time_zone = group.organisation.effective_time_zone
    start = schedule.local_to_utc(datetime.datetime.combine(date_from, datetime.time()), time_zone)
    end = schedule.local_to_utc(
        datetime.datetime.combine(date_to + datetime.timedelta(days=1), datetime.time()), time_zone
    )
    lesson_meetings = MeetingAudience.objects.filter(kind=AudienceKind.GROUP_STUDENTS, study_group=group).values(
        "meeting_id"
    )
    lessons = list(
        Occurrence.objects.filter(
            meeting_id__in=lesson_meetings,
            cancelled_at__isnull=True,
            meeting__cancelled_at__isnull=True,
            starts_at__gte=start,
            starts_at__lt=min(end, now),
        )
        .select_related("meeting")
        .order_by("starts_at", "id")
    )
    students = list(
        User.objects.filter(pk__in=StudyGroupStudent.objects.filter(group=group).values("student_id")).order_by(
            "last_name", "first_name", "id"
        )
    )
    came = set(
        Participant.objects.filter(occurrence__in=lessons, user__in=students)
        .filter(Exists(AttendanceSession.objects.filter(participant=OuterRef("pk"))))
        .values_list("occurrence_id", "user_id")
    )
    rows = []
    for student in students:
        marks = [(lesson.pk, student.pk) in came for lesson in lessons]
        rows.append(GroupAttendanceRow(student=student, attended=sum(marks), missed=marks.count(False), marks=marks))
    return GroupAttendance(
        group=group, date_from=date_from, date_to=date_to, time_zone=time_zone, lessons=lessons, rows=rows
    )


def term_default(*, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """From the start of the academic year (1 September) to today."""
    year = today.year if today.month >= 9 else today.year - 1
    return datetime.date(year, 9, 1), today


# --- Personal data ---------------------------------------------------------------------------------------------


def personal_data_sections(*, user: Any) -> dict[str, Any]:
    """The person's part of the lessons app in the personal data export:
    meetings they host, when they came to meetings, and their reminder
    choice. Other people appear by name only."""
    hosted = [
        {
            "id": meeting.pk,
            "kind": meeting.kind,
            "title": meeting.title,
            "organisation": meeting.organisation.short_name,
            "starts_at": meeting.starts_at.isoformat(),
            "cancelled_at": meeting.cancelled_at.isoformat() if meeting.cancelled_at else None,
        }
        for meeting in Meeting.objects.filter(host_id=user.pk).select_related("organisation").order_by("starts_at")
    ]
    attended = [
        {
            "meeting": participant.occurrence.meeting.title,
            "starts_at": participant.occurrence.starts_at.isoformat(),
            "status": participant.status,
            "sessions": [
                {
                    "joined_at": session.joined_at.isoformat(),
                    "left_at": session.left_at.isoformat() if session.left_at else None,
                }
                for session in participant.sessions.all()
            ],
        }
        for participant in Participant.objects.filter(user_id=user.pk)
        .select_related("occurrence", "occurrence__meeting")
        .prefetch_related("sessions")
        .order_by("requested_at")
    ]
    return {
        "meetings_hosted": hosted,
        "meeting_attendance": attended,
        "meeting_reminders": {"by_sms": reminder_preference_of(user=user)},
    }
