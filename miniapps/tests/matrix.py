"""This app's entries of the permission matrix (tests/test_permission_matrix.py).

MATRIX has the same shape as the matrix there; world_extend(world) adds this
app's objects to the shared world (world.values maps keys to ids): a
platform mini-app for students and teachers, and 7Б's diary with a lesson,
homework and a mark of the student entered by the class's teacher."""

import datetime

from django.utils import timezone

from miniapps import services

SIGNED_IN = {"stranger", "student", "parent", "teacher", "administrator", "official", "other_admin"}
CLASS_PEOPLE = {"student", "parent", "teacher", "administrator"}
DIARY_EDITORS = {"teacher", "administrator"}
GROUP = {"group_id": "group"}
NEXT_WEEK = str(timezone.localdate() + datetime.timedelta(days=7))

MATRIX: dict[str, dict[str, tuple[set[str], dict[str, str], dict]]] = {
    "/api/v1/miniapps/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/miniapps/{slug}/launch/": {"post": ({"student", "teacher"}, {"slug": "miniapp_slug"}, {})},
    "/api/v1/showcase/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/diary/groups/{group_id}/timetable/": {
        "get": (CLASS_PEOPLE, GROUP, {}),
        "post": (DIARY_EDITORS, GROUP, {"weekday": 2, "period": 3, "subject": "Физика"}),
    },
    "/api/v1/diary/timetable/{entry_id}/": {"delete": (DIARY_EDITORS, {"entry_id": "timetable_entry"}, {})},
    "/api/v1/diary/groups/{group_id}/homework/": {
        "get": (CLASS_PEOPLE, GROUP, {}),
        "post": (DIARY_EDITORS, GROUP, {"subject": "Физика", "due_date": NEXT_WEEK, "text": "§ 12"}),
    },
    "/api/v1/diary/homework/{homework_id}/": {"delete": (DIARY_EDITORS, {"homework_id": "homework"}, {})},
    # A fixed body cannot name the student: the editors get 400 (no such
    # student in the class), past the permission check, nothing stored.
    "/api/v1/diary/groups/{group_id}/marks/": {
        "get": (CLASS_PEOPLE, GROUP, {}),
        "post": (
            DIARY_EDITORS,
            GROUP,
            {"student_id": 999999, "subject": "Физика", "date": str(timezone.localdate()), "value": "5"},
        ),
    },
    "/api/v1/diary/marks/{mark_id}/": {"delete": (DIARY_EDITORS, {"mark_id": "mark"}, {})},
    "/api/v1/diary/students/{student_id}/": {"get": (CLASS_PEOPLE, {"student_id": "student"}, {})},
}


def world_extend(world) -> None:
    app = services.miniapp_create(
        name="Переменка", slug="peremenka", url="https://peremenka.example.org/", audience=["student", "teacher"]
    )
    teacher, student = world.users["teacher"], world.users["student"]
    entry = services.timetable_entry_set(actor=teacher, group_id=world.group.pk, weekday=1, period=1, subject="Физика")
    homework = services.homework_create(
        actor=teacher, group_id=world.group.pk, subject="Физика", due_date=NEXT_WEEK, text="§ 11"
    )
    mark = services.mark_create(
        actor=teacher,
        group_id=world.group.pk,
        student_id=student.pk,
        subject="Физика",
        date=timezone.localdate(),
        value="5",
    )
    world.values.update(
        {"miniapp_slug": app.slug, "timetable_entry": entry.pk, "homework": homework.pk, "mark": mark.pk}
    )
