"""Bulk import of classes and members: everything or nothing, idempotent,
with a per-row error report."""

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation

from accounts.models import User
from common.models import AuditEvent
from organisations.importing import import_members
from organisations.models import (
    Guardianship,
    ImportJob,
    Membership,
    Organisation,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
)
from organisations.selectors import current_academic_year
from organisations.tests.factories import make_member, make_organisation, make_study_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """The service-level checks below read the English messages; the admin
    page is requested in the default language, Russian."""
    with translation.override("en"):
        yield


GOOD_CSV = (
    "Класс;Учебный год;Роль;Фамилия;Имя;Отчество;Телефон;Телефон ученика;Классный руководитель\n"
    "7б;;ученик;Иванова;Мария;Петровна;8 (916) 100-00-01;;\n"
    "7Б;;Ученица;Петрова;Анна;;+7 916 100 00 02;;\n"
    "7Б;;учитель;Смирнова;Ольга;Ивановна;8-916-100-00-03;;да\n"
    "\n"
    ";;родитель;Иванов;Пётр;Сергеевич;89161000004;8 (916) 100-00-01;\n"
    ";;Родитель;Иванов;Пётр;Сергеевич;+79161000004;+7 916 100 00 02;\n"
    "8А;2024/25;педагог;Смирнова;Ольга;Ивановна;８９１６１０００００３;;нет\n"
    ";;сотрудник;Кузнецова;Елена;;+7 (916) 100-00-05;;\n"
)


def upload(content: bytes | str, name: str = "class.csv", *, bom: bool = False) -> SimpleUploadedFile:
    data = content.encode("utf-8") if isinstance(content, str) else content
    if bom:
        data = b"\xef\xbb\xbf" + data
    return SimpleUploadedFile(name, data)


def world() -> dict[str, int]:
    """Everything an import may change, counted."""
    return {
        "users": User.objects.count(),
        "memberships": Membership.objects.count(),
        "groups": StudyGroup.objects.count(),
        "students": StudyGroupStudent.objects.count(),
        "teachers": StudyGroupTeacher.objects.count(),
        "guardianships": Guardianship.objects.count(),
        "audit": AuditEvent.objects.exclude(action__startswith="import.").count(),
    }


@pytest.fixture
def school() -> Organisation:
    return make_organisation(short_name="Школа № 5")


@pytest.fixture
def administrator(school: Organisation) -> User:
    return make_member(organisation=school, role=Role.ADMINISTRATOR)


def user(phone: str) -> User:
    return User.objects.get(phone=phone)


def test_good_csv_creates_classes_members_and_links(school: Organisation, administrator: User) -> None:
    before = world()

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(GOOD_CSV, bom=True))

    year = current_academic_year()
    assert (job.status, job.rows_total, job.rows_imported, job.errors, job.file_name, job.created_by) == (
        ImportJob.Status.DONE,
        7,
        7,
        [],
        "class.csv",
        administrator,
    )
    maria, anna, olga = user("+79161000001"), user("+79161000002"), user("+79161000003")
    father, elena = user("+79161000004"), user("+79161000005")
    assert [(u.last_name, u.first_name, u.middle_name) for u in (maria, anna, olga, father, elena)] == [
        ("Иванова", "Мария", "Петровна"),
        ("Петрова", "Анна", ""),
        ("Смирнова", "Ольга", "Ивановна"),
        ("Иванов", "Пётр", "Сергеевич"),
        ("Кузнецова", "Елена", ""),
    ]
    groups = {(group.name, group.academic_year): group for group in StudyGroup.objects.filter(organisation=school)}
    assert set(groups) == {("7Б", year), ("8А", 2024)}
    seventh, eighth = groups[("7Б", year)], groups[("8А", 2024)]
    assert (seventh.grade, seventh.homeroom_teacher, eighth.grade, eighth.homeroom_teacher) == (7, olga, 8, None)
    assert set(seventh.students.all()) == {maria, anna}
    assert list(seventh.teachers.all()) == [olga]
    assert (list(eighth.students.all()), list(eighth.teachers.all())) == ([], [olga])
    assert set(
        Membership.objects.active()
        .filter(organisation=school)
        .exclude(user=administrator)
        .values_list("user__phone", "role")
    ) == {
        ("+79161000001", Role.STUDENT),
        ("+79161000002", Role.STUDENT),
        ("+79161000003", Role.TEACHER),
        ("+79161000004", Role.PARENT),
        ("+79161000005", Role.STAFF),
    }
    assert set(Guardianship.objects.values_list("parent", "student", "organisation")) == {
        (father.pk, maria.pk, school.pk),
        (father.pk, anna.pk, school.pk),
    }
    assert (maria.is_safe_mode, anna.is_safe_mode, father.is_safe_mode) == (True, True, False)
    after = world()
    assert {key: after[key] - before[key] for key in after if key != "audit"} == {
        "users": 5,
        "memberships": 5,
        "groups": 2,
        "students": 2,
        "teachers": 2,
        "guardianships": 2,
    }
    event = AuditEvent.objects.get(action="import.done")
    assert (event.actor, event.organisation_id, event.object_id, event.changes) == (
        administrator,
        school.pk,
        str(job.pk),
        {"file": "class.csv", "rows": 7, "classes": 2},
    )
    assert AuditEvent.objects.filter(action="user.create", organisation_id=school.pk, actor=administrator).count() == 5


def test_the_same_file_again_changes_nothing(school: Organisation, administrator: User) -> None:
    import_members(actor=administrator, organisation=school, uploaded_file=upload(GOOD_CSV, bom=True))
    after_first = world()

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(GOOD_CSV, bom=True))

    assert (job.status, job.rows_imported) == (ImportJob.Status.DONE, 7)
    assert world() == after_first
    assert list(ImportJob.objects.order_by("id").values_list("status", flat=True)) == ["done", "done"]


def test_comma_separated_utf8_with_english_headers(school: Organisation, administrator: User) -> None:
    content = (
        "role,last_name,first_name,phone,class,academic_year\n"
        'teacher,"Орлова, мл.",Вера,+7 916 100 00 21,,\n'
        "student,Орлов,Ваня,+7 916 100 00 22,1А,2025\n"
    )

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(content))

    assert job.status == ImportJob.Status.DONE
    assert user("+79161000021").last_name == "Орлова, мл."
    assert list(StudyGroup.objects.filter(organisation=school).values_list("name", "academic_year")) == [("1А", 2025)]
    assert Membership.objects.active().get(user__phone="+79161000021", organisation=school).role == Role.TEACHER


def test_xlsx_works_and_links_a_parent_to_a_student_already_in_the_school(
    school: Organisation, administrator: User
) -> None:
    student = make_user(phone="+79161000031", first_name="Лёша", last_name="Котов")
    group = make_study_group(organisation=school, name="3В")
    from organisations.services import study_group_student_add

    study_group_student_add(actor=None, group=group, student=student)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Роль", "Фамилия", "Имя", "Телефон", "Телефон ученика", "Класс", "Учебный год"])
    sheet.append(["родитель", "Котова", "Ирина", 89161000032, "+7 916 100-00-31", None, None])
    sheet.append(["ученик", "Котов", "Миша", 89161000033.0, None, "3В", group.academic_year])
    buffer = io.BytesIO()
    workbook.save(buffer)

    job = import_members(
        actor=administrator, organisation=school, uploaded_file=upload(buffer.getvalue(), "список.xlsx")
    )

    mother, misha = user("+79161000032"), user("+79161000033")
    assert (job.status, job.rows_imported, job.errors) == (ImportJob.Status.DONE, 2, [])
    assert (mother.last_name, mother.first_name, misha.first_name) == ("Котова", "Ирина", "Миша")
    assert list(Guardianship.objects.filter(parent=mother).values_list("student", flat=True)) == [student.pk]
    assert set(group.students.all()) == {student, misha}


def test_errors_in_rows_3_and_5_import_nothing_and_are_reported_exactly(
    school: Organisation, administrator: User
) -> None:
    content = (
        "Класс;Роль;Фамилия;Имя;Телефон;Телефон ученика\n"
        "7Б;ученик;Иванова;Мария;+7 916 100 00 41;\n"
        "7Б;ученик;Петрова;Анна;12345;\n"
        "7Б;учитель;Смирнова;Ольга;+7 916 100 00 43;\n"
        "7Б;директор;Кузнецов;;+7 916 100 00 44;\n"
        ";родитель;Иванов;Пётр;+7 916 100 00 46;8 916 100 00 41\n"
    )
    before = world()

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(content))

    assert (job.status, job.rows_total, job.rows_imported) == (ImportJob.Status.FAILED, 5, 0)
    assert job.errors == [
        {"row": 3, "column": "phone", "message": "“12345” is not a valid phone number."},
        {
            "row": 5,
            "column": "role",
            "message": "Unknown role “директор”: use student, teacher, parent, staff or administrator.",
        },
        {"row": 5, "column": "first_name", "message": "The name is missing."},
    ]
    assert world() == before
    assert list(AuditEvent.objects.filter(action__startswith="import.").values_list("action", "object_id")) == [
        ("import.failed", str(job.pk))
    ]


def test_the_same_phone_with_two_names_is_an_error(school: Organisation, administrator: User) -> None:
    content = (
        "class;role;last_name;first_name;phone\n"
        "5А;student;Белов;Иван;+79161000051\n"
        "5А;student;Белова;Ирина;8 916 100 00 51\n"
    )

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(content))

    assert job.errors == [
        {"row": 3, "column": "phone", "message": "This phone number is already in row 2 with another name."}
    ]
    assert User.objects.filter(phone="+79161000051").count() == 0


def test_missing_class_homeroom_and_columns(school: Organisation, administrator: User) -> None:
    content = (
        "class;role;last_name;first_name;phone;homeroom;student_phone\n"
        ";student;Белов;Иван;+79161000061;\n"
        ";teacher;Белова;Ирина;+79161000062;да\n"
        "5А;parent;Белов;Пётр;+79161000063;может быть\n"
        ";parent;Белова;Анна;+79161000065;;+79161000099\n"
    )

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(content))

    assert [(error["row"], error["column"]) for error in job.errors] == [
        (2, "class"),
        (3, "class"),
        (4, "student_phone"),
        (4, "homeroom"),
        (5, "student_phone"),
    ]
    assert [error["message"] for error in job.errors if error["column"] == "student_phone"] == [
        "A parent needs the phone number of their child.",
        "No student with this phone number, neither in the file nor in the organisation.",
    ]
    missing = import_members(
        actor=administrator, organisation=school, uploaded_file=upload("class;role;phone\n5А;student;+79161000064\n")
    )
    assert missing.errors == [
        {"row": 1, "column": "last_name", "message": "The column is missing from the header row."}
    ]


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(256)), "members.csv"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "members.xlsx"),
    ],
    ids=["png-named-csv", "old-xls-named-xlsx"],
)
def test_a_renamed_binary_file_is_refused(school: Organisation, administrator: User, content: bytes, name: str) -> None:
    before = world()

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(content, name))

    assert (job.status, job.file_name) == (ImportJob.Status.FAILED, name)
    assert job.errors == [
        {
            "row": 0,
            "column": "",
            "message": "This is not a CSV or XLSX file. Save the table as CSV (UTF-8) or as an Excel workbook.",
        }
    ]
    assert world() == before


def test_a_zip_that_is_not_a_workbook_is_refused(school: Organisation, administrator: User) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(buffer.getvalue(), "a.xlsx"))

    assert [error["message"] for error in job.errors] == [
        "This is not a CSV or XLSX file. Save the table as CSV (UTF-8) or as an Excel workbook."
    ]


def test_too_big_a_file_is_refused(school: Organisation, administrator: User, settings: Any) -> None:
    settings.IMPORT_MAX_FILE_SIZE = 100

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(GOOD_CSV))

    assert job.errors == [{"row": 0, "column": "", "message": "The file is larger than 100 bytes."}]
    assert User.objects.filter(phone="+79161000001").count() == 0


def test_more_than_5000_rows_are_refused(school: Organisation, administrator: User) -> None:
    rows = "".join(f"5А;student;Ученик;{number};+7916{2000000 + number}\n" for number in range(5001))

    job = import_members(
        actor=administrator, organisation=school, uploaded_file=upload("class;role;last_name;first_name;phone\n" + rows)
    )

    assert job.errors == [{"row": 0, "column": "", "message": "The file has more than 5000 rows; split it into parts."}]
    assert User.objects.filter(last_name="Ученик").count() == 0


# --- The admin page -----------------------------------------------------------------------------------------


def test_admin_import_page_imports_and_reports(school: Organisation, administrator: User) -> None:
    client = Client()
    client.force_login(administrator)
    url = f"/admin/organisations/organisation/{school.pk}/import/"

    page = client.get(url)
    done = client.post(url, {"file": upload(GOOD_CSV)}, follow=True)
    failed = client.post(url, {"file": upload("class;role;last_name;first_name;phone\n5А;ученик;Белов;Иван;123\n")})

    assert page.status_code == 200
    assert all(
        key in page.content.decode()
        for key in ("student_phone", "телефон ученика", "homeroom", "классный руководитель")
    )
    assert done.redirect_chain == [(url, 302)]
    assert [str(message) for message in done.context["messages"]] == ["Импортировано строк из файла class.csv: 7."]
    assert Membership.objects.active().filter(organisation=school, role=Role.STUDENT).count() == 2
    assert failed.status_code == 200
    assert "<td>2</td><td>phone</td><td>«123» — неправильный номер телефона.</td>" in failed.content.decode()
    assert User.objects.filter(last_name="Белов").count() == 0


def test_admin_import_page_of_another_school_is_not_found(school: Organisation) -> None:
    other_school = make_organisation(short_name="Школа № 6")
    client = Client()
    client.force_login(make_member(organisation=other_school, role=Role.ADMINISTRATOR))

    response = client.post(f"/admin/organisations/organisation/{school.pk}/import/", {"file": upload(GOOD_CSV)})

    assert response.status_code == 404
    assert ImportJob.objects.count() == 0
    assert User.objects.filter(phone="+79161000001").count() == 0


def test_windows_1251_csv_from_a_russian_excel(school: Organisation, administrator: User) -> None:
    content = "Класс;Роль;Фамилия;Имя;Телефон\r\n2Г;Ученик;Ёлкина;Алёна;8 916 100 00 71\r\n".encode("cp1251")

    job = import_members(actor=administrator, organisation=school, uploaded_file=upload(content))

    assert (job.status, job.errors) == (ImportJob.Status.DONE, [])
    assert (user("+79161000071").last_name, user("+79161000071").first_name) == ("Ёлкина", "Алёна")
    assert list(StudyGroup.objects.filter(organisation=school).values_list("name", flat=True)) == ["2Г"]


def test_admin_import_without_a_file_imports_nothing(school: Organisation, administrator: User) -> None:
    client = Client()
    client.force_login(administrator)

    response = client.post(f"/admin/organisations/organisation/{school.pk}/import/", {})

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["file"]
    assert ImportJob.objects.count() == 0
