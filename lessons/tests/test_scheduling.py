"""Scheduling: who may schedule, whom they may invite, the weekly series in
the organisation's time zone, changes and cancellation with the invitees'
notifications, and the week calendar."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from common.errors import ApplicationError, NotFound, PermissionDenied
from common.models import AuditEvent
from lessons import schedule, selectors, services
from lessons.models import (
    AudienceKind,
    Meeting,
    MeetingAudience,
    MeetingKind,
    MeetingNotification,
    NotificationKind,
    Occurrence,
    Participant,
    Reminder,
    ReminderKind,
)
from lessons.services import AudienceSpec
from lessons.tests.factories import (
    in_minutes,
    make_lesson_world,
    make_meeting,
    verify_teacher,
)
from organisations import services as organisation_services
from organisations.models import Membership, Role
from organisations.tests.factories import make_member, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


def notified(meeting: Meeting, kind: str) -> set[int]:
    return set(MeetingNotification.objects.filter(meeting=meeting, kind=kind).values_list("user_id", flat=True))


def nothing_stored() -> None:
    assert Meeting.objects.count() == 0
    assert Occurrence.objects.count() == 0
    assert MeetingAudience.objects.count() == 0
    assert MeetingNotification.objects.count() == 0


# --- Who may schedule ------------------------------------------------------------------------------------------


def test_a_verified_teacher_schedules_a_lesson_for_the_class():
    world = make_lesson_world(students=2)
    starts_at = in_minutes(60 * 24 * 2)

    meeting = make_meeting(world=world, starts_at=starts_at)

    assert meeting.host == world.teacher
    assert meeting.organisation == world.school
    assert meeting.time_zone == "Europe/Moscow"
    assert list(meeting.occurrences.values_list("starts_at", flat=True)) == [starts_at]
    assert list(meeting.audience.values_list("kind", "study_group_id")) == [
        (AudienceKind.GROUP_STUDENTS, world.group.pk)
    ]
    assert notified(meeting, NotificationKind.INVITED) == {student.pk for student in world.students}
    assert AuditEvent.objects.filter(action="meeting.create", object_id=str(meeting.pk)).count() == 1


def test_the_schools_administrator_may_schedule_a_staff_meeting():
    world = make_lesson_world(students=1)
    other_teacher = make_member(organisation=world.school, role=Role.TEACHER)

    meeting = make_meeting(world=world, kind=MeetingKind.STAFF_MEETING, host=world.administrator, title="Педсовет")

    assert notified(meeting, NotificationKind.INVITED) == {world.teacher.pk, other_teacher.pk}


@pytest.mark.parametrize("who", ["unverified_teacher", "student", "parent", "stranger", "other_school_admin"])
def test_only_verified_educators_and_administrators_schedule(who):
    world = make_school_with_class(students=1)
    other_school = make_school_with_class(students=0)
    person = {
        "unverified_teacher": world.teacher,
        "student": world.student,
        "parent": world.parent,
        "stranger": make_user(),
        "other_school_admin": other_school.administrator,
    }[who]
    expected = PermissionDenied if who in {"unverified_teacher", "student", "parent"} else NotFound

    with pytest.raises(expected) as refused:
        make_meeting(world=world, host=person)

    assert refused.value.code == ("not_verified" if expected is PermissionDenied else "organisation_not_found")
    nothing_stored()


def test_a_verified_teacher_of_another_school_cannot_schedule_here():
    world = make_lesson_world(students=1)
    other = make_lesson_world(students=1)

    with pytest.raises(NotFound):
        make_meeting(world=world, host=other.teacher)

    nothing_stored()


def test_a_class_of_another_organisation_cannot_be_invited():
    world = make_lesson_world(students=1)
    other = make_school_with_class(students=1)

    with pytest.raises(NotFound) as refused:
        make_meeting(world=world, audience=AudienceSpec(student_group_ids=(world.group.pk, other.group.pk)))

    assert refused.value.code == "group_not_found"
    nothing_stored()


def test_a_child_of_another_school_in_safe_mode_cannot_be_invited():
    world = make_lesson_world(students=1)
    other = make_school_with_class(students=1)
    assert other.student.is_safe_mode

    with pytest.raises((PermissionDenied, NotFound)):
        make_meeting(world=world, kind=MeetingKind.CONSULTATION, audience=AudienceSpec(user_ids=(other.student.pk,)))

    nothing_stored()


def test_a_consultation_with_one_student_of_the_school():
    world = make_lesson_world(students=2)

    meeting = make_meeting(
        world=world, kind=MeetingKind.CONSULTATION, audience=AudienceSpec(user_ids=(world.students[1].pk,))
    )

    assert set(selectors.invitees(meeting=meeting).values_list("pk", flat=True)) == {
        world.teacher.pk,
        world.students[1].pk,
    }


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("title", "   ", "invalid"),
        ("title", "x" * 201, "invalid"),
        ("duration_minutes", 2, "invalid"),
        ("duration_minutes", 600, "invalid"),
        ("kind", "party", "invalid"),
        ("starts_at", "yesterday", "invalid"),
    ],
)
def test_bad_input_is_refused_with_its_field(field, value, code):
    world = make_lesson_world(students=1)

    with pytest.raises(ApplicationError) as refused:
        make_meeting(world=world, **{field: value})

    assert refused.value.code == code
    assert refused.value.extra["field"] == field
    nothing_stored()


def test_a_meeting_cannot_start_in_the_past_or_invite_nobody():
    world = make_lesson_world(students=1)

    with pytest.raises(ApplicationError) as past:
        make_meeting(world=world, starts_at=in_minutes(-60))
    with pytest.raises(ApplicationError) as nobody:
        make_meeting(world=world, audience=AudienceSpec())

    assert past.value.code == "starts_in_past"
    assert nobody.value.code == "no_invitees"
    nothing_stored()


# --- Time zones and recurrence ----------------------------------------------------------------------------------


def school_in(time_zone: str):
    world = make_lesson_world(students=1, time_zone=time_zone)
    assert world.school.effective_time_zone == time_zone
    return world


def test_a_naive_time_is_the_organisations_wall_clock_time():
    moscow = school_in("Europe/Moscow")
    yekaterinburg = school_in("Asia/Yekaterinburg")
    local = (timezone.now() + datetime.timedelta(days=3)).replace(
        tzinfo=None, hour=18, minute=30, second=0, microsecond=0
    )

    in_moscow = make_meeting(world=moscow, starts_at=local)
    in_yekaterinburg = make_meeting(world=yekaterinburg, starts_at=local)

    assert in_moscow.starts_at.astimezone(datetime.UTC).hour == 15
    assert in_yekaterinburg.starts_at.astimezone(datetime.UTC).hour == 13
    assert in_yekaterinburg.time_zone == "Asia/Yekaterinburg"
    assert in_moscow.starts_at - in_yekaterinburg.starts_at == datetime.timedelta(hours=2)


@pytest.mark.parametrize(
    ("time_zone", "utc_hour"), [("Asia/Yekaterinburg", 13), ("Europe/Moscow", 15), ("Asia/Kamchatka", 6)]
)
def test_a_weekly_series_keeps_the_local_time_in_a_zone_without_dst(time_zone, utc_hour):
    world = school_in(time_zone)
    first = (timezone.now() + datetime.timedelta(days=1)).astimezone(zoneinfo.ZoneInfo(time_zone))
    local = first.replace(tzinfo=None, hour=18, minute=30, second=0, microsecond=0)

    meeting = make_meeting(
        world=world, starts_at=local, repeats_weekly=True, repeat_until=local.date() + datetime.timedelta(weeks=9)
    )

    occurrences = list(meeting.occurrences.order_by("starts_at"))
    assert len(occurrences) == 10
    assert [occurrence.sequence for occurrence in occurrences] == list(range(10))
    for index, occurrence in enumerate(occurrences):
        wall_clock = occurrence.starts_at.astimezone(zoneinfo.ZoneInfo(time_zone))
        assert (wall_clock.hour, wall_clock.minute) == (18, 30)
        assert wall_clock.date() == local.date() + datetime.timedelta(weeks=index)
        assert occurrence.starts_at.astimezone(datetime.UTC).hour == utc_hour
        assert occurrence.ends_at - occurrence.starts_at == datetime.timedelta(minutes=45)


def test_a_weekly_series_across_a_dst_change_keeps_the_wall_clock_time():
    """Russia has no DST; an organisation abroad (or a future change of law)
    must still get its lessons at the same local time."""
    starts = schedule.series_starts(
        starts_at=schedule.local_to_utc(datetime.datetime(2030, 3, 19, 18, 30), "Europe/Berlin"),
        time_zone="Europe/Berlin",
        repeats_weekly=True,
        repeat_until=datetime.date(2030, 4, 9),
    )

    assert [start.astimezone(datetime.UTC).strftime("%m-%d %H:%M") for start in starts] == [
        "03-19 17:30",
        "03-26 17:30",
        "04-02 16:30",
        "04-09 16:30",
    ]
    assert {start.astimezone(zoneinfo.ZoneInfo("Europe/Berlin")).strftime("%H:%M") for start in starts} == {"18:30"}


def test_the_historical_offset_change_of_a_russian_zone_is_respected():
    """Yekaterinburg was UTC+6 until 26 October 2014: the same wall-clock
    time mapped to another UTC hour on each side of the change."""
    starts = schedule.series_starts(
        starts_at=schedule.local_to_utc(datetime.datetime(2014, 10, 21, 18, 30), "Asia/Yekaterinburg"),
        time_zone="Asia/Yekaterinburg",
        repeats_weekly=True,
        repeat_until=datetime.date(2014, 10, 28),
    )

    assert [start.astimezone(datetime.UTC).strftime("%d %H:%M") for start in starts] == ["21 12:30", "28 13:30"]


@pytest.mark.parametrize(
    ("repeat_until", "code"),
    [(None, "invalid_repeat_until"), ("past", "invalid_repeat_until"), ("far", "series_too_long")],
)
def test_a_series_needs_a_sensible_end(repeat_until, code):
    world = make_lesson_world(students=1)
    starts_at = in_minutes(60 * 24)
    until = {
        None: None,
        "past": timezone.localdate(starts_at) - datetime.timedelta(days=1),
        "far": timezone.localdate(starts_at) + datetime.timedelta(days=500),
    }[repeat_until]

    with pytest.raises(ApplicationError) as refused:
        make_meeting(world=world, starts_at=starts_at, repeats_weekly=True, repeat_until=until)

    assert refused.value.code == code
    nothing_stored()


# --- Changes and cancellation -----------------------------------------------------------------------------------


def test_a_change_of_time_tells_every_invitee_once_and_reschedules_the_future():
    world = make_lesson_world(students=2)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING, starts_at=in_minutes(60 * 24 * 2))
    occurrence = meeting.occurrences.get()
    Reminder.objects.create(
        occurrence=occurrence, user=world.parent, kind=ReminderKind.DAY_BEFORE, claimed_at=timezone.now(), claim="x"
    )
    new_start = in_minutes(60 * 24 * 3)

    services.meeting_update(actor=world.teacher, meeting_id=meeting.pk, starts_at=new_start, title="Собрание 7Б")

    occurrence.refresh_from_db()
    assert occurrence.starts_at == new_start
    assert occurrence.ends_at == new_start + datetime.timedelta(minutes=45)
    assert not Reminder.objects.filter(occurrence=occurrence).exists()
    meeting.refresh_from_db()
    assert meeting.revision == 2
    assert meeting.title == "Собрание 7Б"
    assert notified(meeting, NotificationKind.CHANGED) == {parent.pk for parent in world.parents}
    assert MeetingNotification.objects.filter(kind=NotificationKind.CHANGED).count() == 2
    assert AuditEvent.objects.filter(action="meeting.update").count() == 1


def test_a_change_of_the_lobby_only_tells_nobody():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING)

    services.meeting_update(actor=world.teacher, meeting_id=meeting.pk, lobby_for_everyone=True)

    meeting.refresh_from_db()
    assert meeting.lobby_for_everyone is True
    assert meeting.revision == 1
    assert not MeetingNotification.objects.filter(kind=NotificationKind.CHANGED).exists()


def test_shortening_a_series_keeps_what_was_held_and_drops_the_rest():
    world = make_lesson_world(students=1)
    now = timezone.now()
    start = in_minutes(60, now)
    meeting = make_meeting(
        world=world,
        starts_at=start,
        repeats_weekly=True,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=4)),
        now=now,
    )
    assert meeting.occurrences.count() == 5
    later = now + datetime.timedelta(weeks=1, hours=2)
    first = meeting.occurrences.get(sequence=0)
    second = meeting.occurrences.get(sequence=1)
    Participant.objects.create(occurrence=second, user=world.teacher, display_name="x", role="host", status="admitted")

    services.meeting_update(
        actor=world.teacher,
        meeting_id=meeting.pk,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=2)),
        now=later,
    )

    remaining = {occurrence.sequence: occurrence for occurrence in meeting.occurrences.all()}
    assert sorted(remaining) == [0, 1, 2]
    assert remaining[0].starts_at == first.starts_at
    assert remaining[1].starts_at == second.starts_at
    assert all(occurrence.cancelled_at is None for occurrence in remaining.values())


def test_someone_else_cannot_change_or_cancel_and_nothing_changes():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)
    colleague = verify_teacher(world=world, teacher=make_member(organisation=world.school, role=Role.TEACHER))

    with pytest.raises(NotFound):
        services.meeting_update(actor=colleague, meeting_id=meeting.pk, title="Чужое")
    with pytest.raises(PermissionDenied) as as_student:
        services.meeting_cancel(actor=world.student, meeting_id=meeting.pk)

    assert as_student.value.code == "not_host"
    meeting.refresh_from_db()
    assert (meeting.title, meeting.cancelled_at, meeting.revision) == ("Урок математики", None, 1)


def test_the_schools_administrator_may_change_a_teachers_meeting():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)

    services.meeting_update(actor=world.administrator, meeting_id=meeting.pk, title="Урок геометрии")

    meeting.refresh_from_db()
    assert meeting.title == "Урок геометрии"
    assert notified(meeting, NotificationKind.CHANGED) == {world.student.pk, world.teacher.pk}


def test_cancelling_the_meeting_tells_everyone_once_and_closes_every_occurrence():
    world = make_lesson_world(students=2)
    start = in_minutes(60 * 5)
    meeting = make_meeting(
        world=world,
        starts_at=start,
        repeats_weekly=True,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=2)),
    )

    services.meeting_cancel(actor=world.teacher, meeting_id=meeting.pk)
    services.meeting_cancel(actor=world.teacher, meeting_id=meeting.pk)

    meeting.refresh_from_db()
    assert meeting.cancelled_at is not None
    assert meeting.occurrences.filter(cancelled_at__isnull=True).count() == 0
    assert notified(meeting, NotificationKind.CANCELLED) == {student.pk for student in world.students}
    assert MeetingNotification.objects.filter(kind=NotificationKind.CANCELLED).count() == 2
    with pytest.raises(ApplicationError) as refused:
        services.meeting_update(actor=world.teacher, meeting_id=meeting.pk, title="Снова")
    assert refused.value.code == "cancelled"


def test_cancelling_one_week_of_a_series():
    world = make_lesson_world(students=1)
    start = in_minutes(60 * 5)
    meeting = make_meeting(
        world=world,
        starts_at=start,
        repeats_weekly=True,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=2)),
    )
    second = meeting.occurrences.get(sequence=1)

    services.meeting_cancel(actor=world.teacher, meeting_id=meeting.pk, occurrence_id=second.pk)

    assert list(meeting.occurrences.filter(cancelled_at__isnull=False).values_list("sequence", flat=True)) == [1]
    notification = MeetingNotification.objects.get(kind=NotificationKind.CANCELLED)
    assert (notification.user, notification.occurrence) == (world.student, second)
    meeting.refresh_from_db()
    assert meeting.cancelled_at is None


def test_an_occurrence_that_is_over_cannot_be_cancelled():
    world = make_lesson_world(students=1)
    now = timezone.now()
    meeting = make_meeting(world=world, starts_at=now, now=now)

    with pytest.raises(ApplicationError) as refused:
        services.meeting_cancel(
            actor=world.teacher,
            meeting_id=meeting.pk,
            occurrence_id=meeting.occurrences.get().pk,
            now=now + datetime.timedelta(hours=2),
        )

    assert refused.value.code == "already_over"
    assert not MeetingNotification.objects.filter(kind=NotificationKind.CANCELLED).exists()


def test_new_and_former_invitees_are_told_when_the_invitation_changes():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING)
    colleague = make_member(organisation=world.school, role=Role.TEACHER)

    services.meeting_update(actor=world.teacher, meeting_id=meeting.pk, audience=AudienceSpec(invite_staff=True))

    assert notified(meeting, NotificationKind.INVITED) == {world.parent.pk, colleague.pk, world.administrator.pk}
    assert notified(meeting, NotificationKind.CANCELLED) == {world.parent.pk}
    assert list(meeting.audience.values_list("kind", flat=True)) == [AudienceKind.STAFF]


# --- Invitees follow the directory ---------------------------------------------------------------------------------


def test_a_student_added_to_the_class_later_is_invited():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)
    newcomer = make_user()

    organisation_services.study_group_student_add(actor=None, group=world.group, student=newcomer)

    assert selectors.meeting_role(user=newcomer, meeting=meeting) == "member"
    assert newcomer.pk in set(selectors.invitees(meeting=meeting).values_list("pk", flat=True))


def test_a_child_is_kept_out_once_the_host_leaves_the_school():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)
    membership = Membership.objects.active().get(user=world.teacher, organisation=world.school, role=Role.TEACHER)

    organisation_services.membership_end(actor=None, membership=membership)

    assert selectors.meeting_role(user=world.student, meeting=meeting) is None
    assert world.student.pk not in set(selectors.invitees(meeting=meeting).values_list("pk", flat=True))
    monday = schedule.week_monday(timezone.localdate(meeting.starts_at))
    assert selectors.calendar_week(user=world.student, monday=monday).entries == []


def test_a_stranger_neither_sees_nor_joins_a_meeting():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)
    stranger = make_user()

    assert selectors.meeting_role(user=stranger, meeting=meeting) is None
    with pytest.raises(NotFound):
        selectors.meeting_get(user=stranger, meeting_id=meeting.pk)


# --- Calendar ----------------------------------------------------------------------------------------------------


def test_the_week_calendar_of_a_student_a_parent_and_the_teacher():
    world = make_lesson_world(students=1, time_zone="Asia/Yekaterinburg")
    zone = zoneinfo.ZoneInfo("Asia/Yekaterinburg")
    next_week_monday = schedule.week_monday(timezone.now().astimezone(zone).date()) + datetime.timedelta(weeks=1)
    tuesday = datetime.datetime.combine(next_week_monday + datetime.timedelta(days=1), datetime.time(9, 0))
    thursday = datetime.datetime.combine(next_week_monday + datetime.timedelta(days=3), datetime.time(18, 30))
    lesson = make_meeting(world=world, starts_at=tuesday)
    parents = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING, starts_at=thursday, title="Собрание")
    make_meeting(world=world, starts_at=tuesday + datetime.timedelta(weeks=1), title="Через неделю")
    world.student.time_zone = "Asia/Yekaterinburg"
    world.student.save(update_fields=["time_zone"])

    student_week = selectors.calendar_week(user=world.student, monday=next_week_monday)
    parent_week = selectors.calendar_week(user=world.parent, monday=next_week_monday)
    teacher_week = selectors.calendar_week(user=world.teacher, monday=next_week_monday)
    stranger_week = selectors.calendar_week(user=make_user(), monday=next_week_monday)

    assert [(entry.meeting, entry.starts_at.strftime("%a %H:%M")) for entry in student_week.entries] == [
        (lesson, "Tue 09:00")
    ]
    assert [entry.meeting for entry in student_week.days[1].entries] == [lesson]
    assert parent_week.time_zone == "Asia/Yekaterinburg"
    assert [entry.meeting for entry in parent_week.entries] == [parents]
    assert [entry.meeting for entry in teacher_week.entries] == [lesson, parents]
    assert {entry.role for entry in teacher_week.entries} == {"host"}
    assert stranger_week.entries == []
    assert student_week.week == schedule.iso_week_name(next_week_monday)


def test_the_calendar_shows_a_cancelled_meeting_as_cancelled():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)
    services.meeting_cancel(actor=world.teacher, meeting_id=meeting.pk)

    week = selectors.calendar_week(
        user=world.student, monday=schedule.week_monday(timezone.localdate(meeting.starts_at))
    )

    assert [entry.is_cancelled for entry in week.entries] == [True]


def test_iso_weeks():
    assert schedule.iso_week_parse("2026-W01") == datetime.date(2025, 12, 29)
    assert schedule.iso_week_name(datetime.date(2025, 12, 31)) == "2026-W01"
    for bad in ("2026-W54", "2026-1", "", "2026-W00"):
        with pytest.raises(ApplicationError):
            schedule.iso_week_parse(bad)
