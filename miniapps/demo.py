"""Demo of `manage.py seed_demo`: the services showcase of the presentation.

- "Моя школа" — the diary built into the portal (marks, timetable,
  homework), with a week's timetable, homework and marks for 7Б;
- registry entries with their own addresses for "События Пушкинской карты",
  "Награды и достижения" and "Переменка". Their addresses are example.org
  placeholders: the real services do not verify Parta's launch parameters
  (and refuse to be framed), so an operator points these entries at the real
  apps once they accept them.

"Помощник ученика" and the Rosobrnadzor help bot are bots (bots/demo.py),
listed in the same showcase. Idempotent: a second run changes nothing."""

import datetime

from django.utils import timezone

from miniapps import services
from miniapps.models import Homework, Mark, MarkValue, TimetableEntry
from organisations.demo import DemoData, DemoStep
from organisations.models import Role

DIARY_SLUG = "my-school"

# slug, name, description, url, audience, position
APPS = [
    (
        DIARY_SLUG,
        "Моя школа",
        "Оценки, расписание, домашние задания",
        "/diary/",
        [Role.STUDENT, Role.PARENT, Role.TEACHER, Role.ADMINISTRATOR],
        10,
    ),
    (
        "pushkin-card",
        "События Пушкинской карты",
        "Концерты, спектакли и выставки по Пушкинской карте",
        "https://example.org/pushkin-card",
        [Role.STUDENT, Role.PARENT, Role.TEACHER],
        30,
    ),
    (
        "achievements",
        "Награды и достижения",
        "Грамоты, олимпиады и конкурсы ученика",
        "https://example.org/achievements",
        [Role.STUDENT, Role.PARENT, Role.TEACHER, Role.ADMINISTRATOR],
        40,
    ),
    (
        "peremenka",
        "Переменка",
        "Сервис для полезного отдыха между уроками",
        "https://example.org/peremenka",
        [Role.STUDENT, Role.TEACHER],
        50,
    ),
]

# weekday, period, subject, room; the teacher of Математика is its group
# teacher, every other lesson the homeroom teacher's.
TIMETABLE = [
    (1, 1, "Русский язык", "204"),
    (1, 2, "Математика", "312"),
    (1, 3, "История", "108"),
    (2, 1, "Математика", "312"),
    (2, 2, "Литература", "204"),
    (2, 3, "Биология", "215"),
    (3, 1, "Русский язык", "204"),
    (3, 2, "Физика", "301"),
    (3, 3, "Английский язык", "110"),
    (4, 1, "Математика", "312"),
    (4, 2, "География", "214"),
    (4, 3, "Литература", "204"),
    (5, 1, "Физика", "301"),
    (5, 2, "Русский язык", "204"),
    (5, 3, "Физкультура", "спортзал"),
]

# subject, days from today, text
HOMEWORK = [
    ("Математика", 1, "№ 245, 247 (проценты). Повторить правило на с. 58."),
    ("Русский язык", 2, "Упражнение 112, выучить словарные слова."),
    ("Литература", 4, "Прочитать «Тараса Бульбу», главы 1–3."),
]

# subject, days ago, mark per student in order, comment of the first
MARKS: list[tuple[str, int, list[str], str]] = [
    ("Математика", 1, ["5", "4", "4", "3"], "Контрольная работа"),
    ("Русский язык", 2, ["4", "5", "3", "4"], "Диктант"),
    ("Физкультура", 3, [MarkValue.PASS.value, MarkValue.PASS.value, MarkValue.PASS.value, MarkValue.FAIL.value], ""),
]


def seed_miniapps(data: DemoData) -> None:
    for slug, name, description, url, audience, position in APPS:
        data.add(
            "miniapp_" + slug.replace("-", "_"),
            services.miniapp_create(
                name=name,
                slug=slug,
                description=description,
                url=url,
                audience=list(audience),
                is_builtin=url.startswith("/"),
                is_verified=True,
                position=position,
                icon_static="miniapps/" + slug + ".svg",
            ),
        )


def seed_diary(data: DemoData) -> None:
    group = data["class_7b"]
    homeroom = data["teacher_verified"]
    maths = data["teacher_pending"]
    students = data["students_7b"]
    today = timezone.localdate()
    if not TimetableEntry.objects.filter(group=group).exists():
        for weekday, period, subject, room in TIMETABLE:
            services.timetable_entry_set(
                actor=homeroom,
                group_id=group.pk,
                weekday=weekday,
                period=period,
                subject=subject,
                teacher_id=(maths if subject == "Математика" else homeroom).pk,
                room=room,
            )
    if not Homework.objects.filter(group=group, due_date__gte=today).exists():
        for subject, days, text in HOMEWORK:
            services.homework_create(
                actor=maths if subject == "Математика" else homeroom,
                group_id=group.pk,
                subject=subject,
                due_date=today + datetime.timedelta(days=days),
                text=text,
            )
    if not Mark.objects.filter(group=group).exists():
        for subject, days_ago, values, comment in MARKS:
            for index, (student, value) in enumerate(zip(students, values, strict=False)):
                services.mark_create(
                    actor=maths if subject == "Математика" else homeroom,
                    group_id=group.pk,
                    student_id=student.pk,
                    subject=subject,
                    # Not before the academic year began (early September).
                    date=max(today - datetime.timedelta(days=days_ago), datetime.date(group.academic_year, 9, 1)),
                    value=str(value),
                    comment=comment if index == 0 else "",
                )


DEMO_STEPS: list[DemoStep] = [seed_miniapps, seed_diary]
