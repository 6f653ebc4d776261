from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from common.models import AuditEvent
from organisations.demo import seed_demo_data
from organisations.models import (
    Guardianship,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
    VerificationStatus,
)
from organisations.selectors import current_academic_year

pytestmark = pytest.mark.django_db

COUNTED = (
    User,
    Organisation,
    Membership,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
    Guardianship,
    AuditEvent,
)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def seed() -> str:
    output = StringIO()
    call_command("seed_demo", stdout=output)
    return output.getvalue()


def test_seed_demo_twice_creates_nothing_new_and_prints_the_same():
    first_output = seed()
    first_counts = counts()

    second_output = seed()

    assert counts() == first_counts
    assert second_output == first_output
    assert first_counts["Organisation"] == 6
    assert first_counts["StudyGroup"] == 2


def test_seed_demo_prints_the_demo_logins():
    output = seed()

    lines = output.splitlines()
    assert lines[0] == "Демонстрационные учётные записи (вход по коду из SMS):"
    assert lines[1].split() == ["Телефон", "Роль", "Имя", "Организация"]
    assert any(line.startswith("+79000000000  суперпользователь платформы") for line in lines)
    assert any(line.startswith("+79000000001  администратор школы") and "МБОУ СОШ № 1" in line for line in lines)
    assert any(line.startswith("+79000000002  педагог (подтверждён), классный руководитель 7Б") for line in lines)
    assert any(line.startswith("+79000000003  педагог (ждёт подтверждения)") for line in lines)
    assert any(line.startswith("+79000000004  ученик 7Б") for line in lines)
    assert any(line.startswith("+79000000005  родитель: Иван Петров") for line in lines)
    assert any(
        line.startswith("+79000000006  сотрудник регионального органа") and "Минобразования Московской области" in line
        for line in lines
    )


def test_the_demo_world():
    data = seed_demo_data()
    year = current_academic_year()

    ministry, authority, municipal, school = (
        data["ministry"],
        data["regional_authority"],
        data["municipal_authority"],
        data["school_1"],
    )
    assert (ministry.kind, ministry.short_name, ministry.is_verified) == (
        OrganisationKind.MINISTRY,
        "Минпросвещения России",
        True,
    )
    assert (authority.parent_id, authority.region.code, authority.is_verified) == (ministry.pk, "50", True)
    assert municipal.parent_id == authority.pk
    assert school.path == f"/{ministry.pk}/{authority.pk}/{municipal.pk}/{school.pk}/"
    assert data["kindergarten"].kind == OrganisationKind.KINDERGARTEN
    for key in ("ministry", "regional_authority", "municipal_authority", "school_1", "school_2", "kindergarten"):
        inn = data[key].inn
        assert len(inn) == 10 and inn.isdigit()

    class_7b, class_5a = data["class_7b"], data["class_5a"]
    assert (class_7b.name, class_7b.academic_year, class_7b.organisation_id) == ("7Б", year, school.pk)
    assert (class_5a.name, class_5a.academic_year) == ("5А", year)
    assert class_7b.students.count() >= 3 and class_5a.students.count() >= 3
    assert class_7b.homeroom_teacher_id == data["teacher_verified"].pk

    teacher, pending = data["teacher_verified"], data["teacher_pending"]
    assert teacher.is_verified_educator is True
    assert pending.is_verified_educator is False
    assert Membership.objects.get(user=pending, organisation=school, role=Role.TEACHER).verification_status == (
        VerificationStatus.REQUESTED
    )
    assert Membership.objects.active().filter(user=data["administrator"], role=Role.ADMINISTRATOR).count() == 1
    assert Membership.objects.active().get(user=data["regional_official"]).organisation_id == authority.pk
    assert data["superuser"].is_superuser is True

    student, parent = data["student"], data["parent"]
    assert str(student.phone) == "+79000000004"
    assert str(parent.phone) == "+79000000005"
    student.refresh_from_db()
    assert (student.is_safe_mode, student.is_hidden_from_search) == (True, True)
    assert Guardianship.objects.filter(parent=parent, student=student, ended_at__isnull=True).count() == 1
    for student in [*data["students_7b"], *data["students_5a"]]:
        assert Guardianship.objects.filter(student=student).count() == 1
