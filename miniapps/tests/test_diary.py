"""The diary: teachers of a class (and the school's administrators) enter
timetable, homework and marks; students see their own, guardians their
children's; a teacher of another class or another school gets 404, a
student or a parent trying to enter gets 403 — and nothing changes."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone, translation
from django.utils.html import escape

from common.errors import ApplicationError, NotFound, PermissionDenied
from miniapps import selectors, services
from miniapps.models import Homework, Mark, TimetableEntry
from miniapps.tests.factories import api_for, client_for
from organisations import services as organisation_services
from organisations.models import Role
from organisations.tests.factories import SchoolWithClass, make_member, make_school_with_class, make_study_group

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
YESTERDAY = TODAY - datetime.timedelta(days=1)
TOMORROW = TODAY + datetime.timedelta(days=1)


def ru(text: str) -> str:
    with translation.override("ru"):
        return escape(translation.gettext(text))


def filled(world: SchoolWithClass) -> dict:
    """7Б with a lesson, homework and a mark for each of its two students."""
    entry = services.timetable_entry_set(
        actor=world.teacher, group_id=world.group.pk, weekday=1, period=2, subject="Математика", room="312"
    )
    homework = services.homework_create(
        actor=world.teacher, group_id=world.group.pk, subject="Математика", due_date=TOMORROW, text="№ 245"
    )
    marks = [
        services.mark_create(
            actor=world.teacher,
            group_id=world.group.pk,
            student_id=student.pk,
            subject="Математика",
            date=TODAY,
            value=value,
        )
        for student, value in zip(world.students, ["5", "3"], strict=True)
    ]
    return {"entry": entry, "homework": homework, "marks": marks}


def state() -> tuple:
    return (
        list(TimetableEntry.objects.order_by("pk").values_list("pk", "subject", "room")),
        list(Homework.objects.order_by("pk").values_list("pk", "text")),
        list(Mark.objects.order_by("pk").values_list("pk", "value")),
    )


# --- Entering --------------------------------------------------------------------------------------------


def test_the_classs_teacher_enters_timetable_homework_and_marks():
    world = make_school_with_class(students=2)
    data = filled(world)

    assert (data["entry"].weekday, data["entry"].period, data["entry"].subject) == (1, 2, "Математика")
    assert (data["homework"].due_date, data["homework"].created_by_id) == (TOMORROW, world.teacher.pk)
    assert [(mark.student_id, mark.value) for mark in data["marks"]] == [
        (world.students[0].pk, "5"),
        (world.students[1].pk, "3"),
    ]


def test_a_timetable_slot_holds_one_lesson():
    world = make_school_with_class(students=0)
    services.timetable_entry_set(actor=world.teacher, group_id=world.group.pk, weekday=1, period=1, subject="Физика")

    services.timetable_entry_set(
        actor=world.teacher, group_id=world.group.pk, weekday=1, period=1, subject="Химия", teacher_id=world.teacher.pk
    )

    assert list(TimetableEntry.objects.values_list("subject", "teacher_id")) == [("Химия", world.teacher.pk)]


def test_the_schools_administrator_enters_too():
    world = make_school_with_class(students=1)

    mark = services.mark_create(
        actor=world.administrator,
        group_id=world.group.pk,
        student_id=world.student.pk,
        subject="История",
        date=TODAY,
        value="pass",
    )

    assert mark.get_value_display() == ru("pass")


@pytest.mark.parametrize("who", ["student", "parent"])
def test_a_student_or_a_parent_cannot_enter_anything_403_and_nothing_changes(who):
    world = make_school_with_class(students=2)
    filled(world)
    before = state()
    person = world.student if who == "student" else world.parent
    client = api_for(person)
    group = world.group.pk

    responses = [
        client.post(
            f"/api/v1/diary/groups/{group}/marks/",
            {"student_id": person.pk, "subject": "Математика", "date": str(TODAY), "value": "5"},
            format="json",
        ),
        client.post(
            f"/api/v1/diary/groups/{group}/homework/",
            {"subject": "Математика", "due_date": str(TOMORROW), "text": "Ничего"},
            format="json",
        ),
        client.post(
            f"/api/v1/diary/groups/{group}/timetable/", {"weekday": 1, "period": 2, "subject": "Пение"}, format="json"
        ),
        client.delete(f"/api/v1/diary/homework/{Homework.objects.get().pk}/"),
        client.delete(f"/api/v1/diary/timetable/{TimetableEntry.objects.get().pk}/"),
        client.delete(f"/api/v1/diary/marks/{Mark.objects.get(student=world.student).pk}/"),
    ]

    assert [response.status_code for response in responses] == [403] * 6
    assert {response.json()["code"] for response in responses} == {"not_group_teacher"}
    assert state() == before
    page = client_for(person).post(
        f"/diary/groups/{group}/marks/",
        {"mark-student": person.pk, "mark-subject": "Математика", "mark-date": str(TODAY), "mark-value": "5"},
    )
    assert page.status_code == 403
    assert ru("Only the class's teachers and the school's administrators may enter the diary.") in page.content.decode()
    assert state() == before


def test_a_teacher_of_another_class_or_school_gets_404_and_nothing_changes():
    world = make_school_with_class(students=2)
    filled(world)
    before = state()
    other_class_teacher = make_member(organisation=world.school, role=Role.TEACHER)
    make_study_group(organisation=world.school, name="5А", homeroom_teacher=other_class_teacher)
    other_school = make_school_with_class(students=1)
    group = world.group.pk

    for outsider in (other_class_teacher, other_school.teacher, other_school.administrator, other_school.student):
        client = api_for(outsider)
        assert client.get(f"/api/v1/diary/groups/{group}/marks/").status_code == 404
        assert client.get(f"/api/v1/diary/groups/{group}/timetable/").status_code == 404
        assert client.get(f"/api/v1/diary/students/{world.student.pk}/").status_code == 404
        assert (
            client.post(
                f"/api/v1/diary/groups/{group}/marks/",
                {"student_id": world.student.pk, "subject": "Математика", "date": str(TODAY), "value": "2"},
                format="json",
            ).status_code
            == 404
        )
        assert client.delete(f"/api/v1/diary/marks/{Mark.objects.first().pk}/").status_code == 404
        assert client_for(outsider).get(f"/diary/groups/{group}/").status_code == 404
        assert client_for(outsider).get(f"/diary/students/{world.student.pk}/").status_code == 404
    assert api_for(world.teacher).get("/api/v1/diary/groups/999999/marks/").status_code == 404
    assert state() == before


def test_a_mark_goes_only_to_a_student_of_the_class():
    world = make_school_with_class(students=1)
    stranger = make_school_with_class(students=1).student

    with pytest.raises(ApplicationError) as refused:
        services.mark_create(
            actor=world.teacher,
            group_id=world.group.pk,
            student_id=stranger.pk,
            subject="Математика",
            date=TODAY,
            value="5",
        )

    assert refused.value.extra == {"field": "student_id"}
    assert not Mark.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "Математика", "date": str(TODAY), "value": "6"}, "value"),
        ({"subject": "Математика", "date": "вчера", "value": "5"}, "date"),
        ({"subject": "", "date": str(TODAY), "value": "5"}, "subject"),
        ({"subject": "Математика", "date": str(TOMORROW), "value": "5"}, "date"),
        ({"subject": "Математика", "date": "2020-09-15", "value": "5"}, "date"),
    ],
)
def test_bad_marks_are_refused_naming_the_field(body, field):
    world = make_school_with_class(students=1)

    response = api_for(world.teacher).post(
        f"/api/v1/diary/groups/{world.group.pk}/marks/", {"student_id": world.student.pk, **body}, format="json"
    )

    assert response.status_code == 400
    payload = response.json()
    assert field in payload or payload.get("field") == field
    assert not Mark.objects.exists()


def test_homework_in_the_past_or_too_large_is_refused_naming_the_field():
    world = make_school_with_class(students=0)
    client = api_for(world.teacher)
    url = f"/api/v1/diary/groups/{world.group.pk}/homework/"

    past = client.post(url, {"subject": "Математика", "due_date": str(YESTERDAY), "text": "№ 1"}, format="json")
    empty = client.post(url, {"subject": "Математика", "due_date": str(TOMORROW), "text": ""}, format="json")
    big = client.post(
        url,
        {
            "subject": "Математика",
            "due_date": str(TOMORROW),
            "text": "№ 1",
            "attachment": SimpleUploadedFile("big.pdf", b"0" * (10 * 1024 * 1024 + 1)),
        },
        format="multipart",
    )

    assert (past.status_code, past.json()["field"]) == (400, "due_date")
    assert (empty.status_code, list(empty.json())) == (400, ["text"])
    assert (big.status_code, big.json()["field"]) == (400, "attachment")
    assert not Homework.objects.exists()


def test_homework_may_carry_an_attachment(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    world = make_school_with_class(students=1)

    response = api_for(world.teacher).post(
        f"/api/v1/diary/groups/{world.group.pk}/homework/",
        {
            "subject": "Физика",
            "due_date": str(TOMORROW),
            "text": "Задачи на с. 40",
            "attachment": SimpleUploadedFile("tasks.pdf", b"%PDF-1.4 tasks"),
        },
        format="multipart",
    )

    assert response.status_code == 201
    homework = Homework.objects.get()
    url = f"/diary/homework/{homework.pk}/attachment/"
    assert response.json()["attachment_url"] == url
    for reader in (world.student, world.parent, world.teacher):
        download = client_for(reader).get(url)
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == b"%PDF-1.4 tasks"
        assert download["Content-Disposition"] == 'attachment; filename="tasks.pdf"'
        assert download["X-Content-Type-Options"] == "nosniff"
    outsider = make_school_with_class(students=1)
    assert client_for(outsider.student).get(url).status_code == 404
    assert client_for(outsider.teacher).get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert f'href="{url}"' in client_for(world.student).get(f"/diary/students/{world.student.pk}/").content.decode()


def test_a_teacher_from_the_timetable_must_teach_the_class():
    world = make_school_with_class(students=0)
    other = make_member(organisation=world.school, role=Role.TEACHER)

    response = api_for(world.teacher).post(
        f"/api/v1/diary/groups/{world.group.pk}/timetable/",
        {"weekday": 1, "period": 1, "subject": "Химия", "teacher_id": other.pk},
        format="json",
    )

    assert (response.status_code, response.json()["field"]) == (400, "teacher_id")
    assert not TimetableEntry.objects.exists()


# --- Seeing ----------------------------------------------------------------------------------------------


def test_students_see_their_own_marks_and_the_classs_timetable_and_homework():
    world = make_school_with_class(students=2)
    data = filled(world)
    first, second = world.students

    marks = api_for(first).get(f"/api/v1/diary/groups/{world.group.pk}/marks/").json()
    diary = api_for(first).get(f"/api/v1/diary/students/{first.pk}/").json()

    assert [(mark["student_id"], mark["value"]) for mark in marks] == [(first.pk, "5")]
    assert diary["student_name"] == first.display_name
    assert [(entry["weekday"], entry["period"], entry["subject"], entry["room"]) for entry in diary["timetable"]] == [
        (1, 2, "Математика", "312")
    ]
    assert [(item["subject"], item["due_date"], item["text"]) for item in diary["homework"]] == [
        ("Математика", str(TOMORROW), "№ 245")
    ]
    assert [(mark["subject"], mark["value"]) for mark in diary["marks"]] == [("Математика", "5")]
    # Not a classmate's diary.
    assert api_for(first).get(f"/api/v1/diary/students/{second.pk}/").status_code == 404
    assert data["marks"][1].pk not in [mark["id"] for mark in marks]


def test_guardians_see_their_childrens_diary_only():
    world = make_school_with_class(students=2)
    filled(world)
    parent = world.parents[0]

    assert api_for(parent).get(f"/api/v1/diary/students/{world.students[0].pk}/").json()["marks"][0]["value"] == "5"
    assert api_for(parent).get(f"/api/v1/diary/students/{world.students[1].pk}/").status_code == 404
    marks = api_for(parent).get(f"/api/v1/diary/groups/{world.group.pk}/marks/").json()
    assert [mark["student_id"] for mark in marks] == [world.students[0].pk]


def test_an_ended_guardianship_ends_the_view():
    world = make_school_with_class(students=2)
    filled(world)
    organisation_services.guardianship_end(actor=None, guardianship=world.parent.guardianships.get())

    assert api_for(world.parent).get(f"/api/v1/diary/students/{world.student.pk}/").status_code == 404


def test_teachers_and_administrators_see_every_mark_of_the_class():
    world = make_school_with_class(students=2)
    filled(world)

    for person in (world.teacher, world.administrator):
        marks = api_for(person).get(f"/api/v1/diary/groups/{world.group.pk}/marks/").json()
        assert sorted(mark["value"] for mark in marks) == ["3", "5"]


def test_access_rules_in_the_selector():
    world = make_school_with_class(students=1)

    assert selectors.diary_group_access(user=world.teacher, group_id=world.group.pk).may_edit is True
    assert selectors.diary_group_access(user=world.student, group_id=world.group.pk).student_ids == frozenset(
        {world.student.pk}
    )
    with pytest.raises(PermissionDenied):
        selectors.diary_group_edit_access(user=world.parent, group_id=world.group.pk)
    with pytest.raises(NotFound):
        selectors.diary_group_access(user=make_school_with_class(students=0).teacher, group_id=world.group.pk)


# --- The pages, without JavaScript ----------------------------------------------------------------------


def test_the_teacher_fills_the_diary_through_plain_forms():
    world = make_school_with_class(students=1)
    client = client_for(world.teacher)
    group_url = f"/diary/groups/{world.group.pk}/"

    timetable = client.post(
        group_url + "timetable/",
        {
            "timetable-weekday": "2",
            "timetable-period": "3",
            "timetable-subject": "Физика",
            "timetable-teacher": str(world.teacher.pk),
            "timetable-room": "301",
        },
        follow=True,
    )
    homework = client.post(
        group_url + "homework/",
        {"homework-subject": "Физика", "homework-due_date": str(TOMORROW), "homework-text": "Параграф 12"},
        follow=True,
    )
    mark = client.post(
        group_url + "marks/",
        {
            "mark-student": str(world.student.pk),
            "mark-subject": "Физика",
            "mark-date": str(TODAY),
            "mark-value": "4",
            "mark-comment": "Лабораторная",
        },
        follow=True,
    )

    for response in (timetable, homework, mark):
        assert response.redirect_chain == [(group_url, 302)]
    page = mark.content.decode()
    assert ru("Mark saved.") in page
    assert "<td>3</td><td>Физика</td>" in page
    assert "Параграф 12" in page
    assert '<td class="mark">4</td><td>Лабораторная</td>' in page
    assert list(Mark.objects.values_list("student_id", "subject", "value", "comment")) == [
        (world.student.pk, "Физика", "4", "Лабораторная")
    ]


def test_a_bad_form_shows_the_error_next_to_the_field_and_keeps_the_input():
    world = make_school_with_class(students=1)

    response = client_for(world.teacher).post(
        f"/diary/groups/{world.group.pk}/homework/",
        {"homework-subject": "Физика", "homework-due_date": str(YESTERDAY), "homework-text": "Параграф 12"},
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert ru("The due date cannot be in the past.") in page
    assert 'value="Физика"' in page and "Параграф 12" in page
    assert not Homework.objects.exists()


def test_the_teacher_removes_a_mark_with_a_form():
    world = make_school_with_class(students=2)
    data = filled(world)
    mark = data["marks"][0]

    response = client_for(world.teacher).post(f"/diary/groups/{world.group.pk}/marks/{mark.pk}/delete/")

    assert response.status_code == 302
    assert list(Mark.objects.values_list("pk", flat=True)) == [data["marks"][1].pk]


def test_the_student_page_shows_the_timetable_homework_and_own_marks_without_forms():
    world = make_school_with_class(students=2)
    filled(world)

    home = client_for(world.student).get("/diary/")
    page = client_for(world.student).get(f"/diary/students/{world.student.pk}/").content.decode()

    assert (home.status_code, home["Location"]) == (302, f"/diary/students/{world.student.pk}/")
    assert ru("My diary") in page
    assert "<td>2</td><td>Математика</td>" in page
    assert "№ 245" in page
    assert page.count('<td class="mark">') == 1 and '<td class="mark">5</td>' in page
    assert '<form method="post" action="/diary/' not in page


def test_the_parent_sees_the_class_page_read_only_with_their_childs_marks():
    world = make_school_with_class(students=2)
    filled(world)

    page = client_for(world.parents[0]).get(f"/diary/groups/{world.group.pk}/").content.decode()
    home = client_for(world.parents[0]).get("/diary/").content.decode()

    assert page.count('<td class="mark">') == 1
    assert world.students[1].display_name not in page
    assert 'id="mark-form"' not in page and 'id="homework-form"' not in page
    assert f'href="/diary/students/{world.students[0].pk}/"' in home
