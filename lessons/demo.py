"""Demo lessons of `manage.py seed_demo`: the verified homeroom teacher of
7Б has scheduled a weekly online lesson for the class and a parent meeting
for its parents, both this week (next week when this one is over), in the
school's time zone. Idempotent: a meeting with the same title still to come
is found and left alone."""

import datetime

from django.utils import timezone

from lessons import schedule, services
from lessons.models import Meeting, MeetingKind
from organisations.demo import DemoData, DemoStep

LESSON_TITLE = "Математика 7Б — онлайн-урок"
PARENT_MEETING_TITLE = "Родительское собрание 7Б: итоги четверти"


def _demo_days(*, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """Two days after today within this week (Monday to Sunday) — or, late
    in the week, the next days — for the lesson and the parent meeting."""
    sunday = schedule.week_monday(today) + datetime.timedelta(days=6)
    left = [today + datetime.timedelta(days=offset) for offset in range(1, (sunday - today).days + 1)]
    if len(left) >= 2:
        return left[0], left[-1]
    return today + datetime.timedelta(days=1), today + datetime.timedelta(days=2)


def _upcoming(*, host_id: int, title: str) -> Meeting | None:
    return (
        Meeting.objects.filter(host_id=host_id, title=title, cancelled_at__isnull=True)
        .filter(occurrences__ends_at__gt=timezone.now())
        .distinct()
        .first()
    )


def seed_lessons(data: DemoData) -> None:
    school = data["school_1"]
    class_7b = data["class_7b"]
    teacher = data["teacher_verified"]
    time_zone = school.effective_time_zone
    today = schedule.utc_to_local(timezone.now(), time_zone).date()
    lesson_day, meeting_day = _demo_days(today=today)
    lesson = _upcoming(host_id=teacher.pk, title=LESSON_TITLE)
    if lesson is None:
        lesson = services.meeting_create(
            actor=teacher,
            organisation_id=school.pk,
            kind=MeetingKind.LESSON,
            title=LESSON_TITLE,
            description="Решаем задачи на проценты. Подготовьте тетрадь и калькулятор.",
            starts_at=datetime.datetime.combine(lesson_day, datetime.time(10, 0)),
            duration_minutes=40,
            repeats_weekly=True,
            repeat_until=lesson_day + datetime.timedelta(weeks=7),
            audience=services.AudienceSpec(student_group_ids=(class_7b.pk,)),
        )
    data.add("lesson_7b", lesson)
    parent_meeting = _upcoming(host_id=teacher.pk, title=PARENT_MEETING_TITLE)
    if parent_meeting is None:
        parent_meeting = services.meeting_create(
            actor=teacher,
            organisation_id=school.pk,
            kind=MeetingKind.PARENT_MEETING,
            title=PARENT_MEETING_TITLE,
            description="Итоги четверти, экскурсия в Коломенское, дежурство в классе.",
            starts_at=datetime.datetime.combine(meeting_day, datetime.time(18, 30)),
            duration_minutes=60,
            audience=services.AudienceSpec(guardian_group_ids=(class_7b.pk,)),
        )
    data.add("parent_meeting_7b", parent_meeting)


DEMO_STEPS: list[DemoStep] = [seed_lessons]
