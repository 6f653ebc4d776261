"""Plain factory functions for the organisations tests (and the cross-app
tests that need a school). Everything goes through the services, so the
objects are in the state real use leaves them in."""

import itertools
from dataclasses import dataclass, field
from typing import Any

from accounts.models import User
from organisations import services
from organisations.models import Membership, Organisation, OrganisationKind, Region, Role, StudyGroup
from organisations.selectors import current_academic_year

_phone_numbers = itertools.count(1)
_organisation_numbers = itertools.count(1)
_inn_numbers = itertools.count(1)
_name_numbers = itertools.count(0)

FIRST_NAMES = ["Анна", "Иван", "Мария", "Пётр", "Ольга", "Сергей", "Елена", "Дмитрий"]
LAST_NAMES = ["Иванова", "Петров", "Сидорова", "Кузнецов", "Смирнова", "Попов", "Волкова", "Морозов"]


def next_phone() -> str:
    """A valid Russian mobile number not used before in this run (+7998…,
    apart from the accounts factories' and the demo's numbers)."""
    return "+7998" + str(1000000 + next(_phone_numbers))


def make_user(phone: str | None = None, **fields: Any) -> User:
    number = next(_name_numbers)
    fields.setdefault("first_name", FIRST_NAMES[number % len(FIRST_NAMES)])
    fields.setdefault("last_name", LAST_NAMES[number % len(LAST_NAMES)])
    return User.objects.create_user(phone or next_phone(), **fields)


def next_inn() -> str:
    """A 10-digit INN of a legal entity with a valid check digit."""
    base = "50" + str(next(_inn_numbers)).zfill(7)
    weights = [2, 4, 10, 3, 5, 9, 4, 6, 8]
    return base + str(sum(int(digit) * weight for digit, weight in zip(base, weights, strict=True)) % 11 % 10)


def make_organisation(
    *, kind: str = OrganisationKind.SCHOOL, parent: Organisation | None = None, **fields: Any
) -> Organisation:
    number = next(_organisation_numbers)
    fields.setdefault("short_name", f"Школа № {number}")
    fields.setdefault("full_name", f"Муниципальное общеобразовательное учреждение № {number}")
    fields.setdefault("inn", next_inn())
    if "region" not in fields:
        services.regions_ensure()
        fields["region"] = Region.objects.get(code="50")
    return services.organisation_create(actor=None, kind=kind, parent=parent, **fields)


def make_member(*, organisation: Organisation, role: str = Role.TEACHER, user: User | None = None) -> User:
    user = user or make_user()
    services.membership_create(actor=None, user=user, organisation=organisation, role=role)
    return user


def make_study_group(
    *,
    organisation: Organisation,
    name: str = "7Б",
    academic_year: int | None = None,
    homeroom_teacher: User | None = None,
    students: int = 0,
) -> StudyGroup:
    group = services.study_group_create(
        actor=None,
        organisation=organisation,
        name=name,
        academic_year=academic_year if academic_year is not None else current_academic_year(),
        homeroom_teacher=homeroom_teacher,
    )
    for _index in range(students):
        services.study_group_student_add(actor=None, group=group, student=make_user())
    return group


def make_parent(*, student: User, organisation: Organisation, parent: User | None = None) -> User:
    parent = parent or make_user()
    services.guardianship_link(actor=None, parent=parent, student=student, organisation=organisation)
    return parent


def teacher_membership(*, user: User, organisation: Organisation) -> Membership:
    return Membership.objects.active().get(user=user, organisation=organisation, role=Role.TEACHER)


@dataclass
class SchoolWithClass:
    school: Organisation
    group: StudyGroup
    administrator: User
    teacher: User
    students: list[User] = field(default_factory=list)
    parents: list[User] = field(default_factory=list)

    @property
    def student(self) -> User:
        return self.students[0]

    @property
    def parent(self) -> User:
        return self.parents[0]


def make_school_with_class(
    *,
    name: str = "7Б",
    students: int = 2,
    academic_year: int | None = None,
    parent: Organisation | None = None,
    **school_fields: Any,
) -> SchoolWithClass:
    """A school with an administrator, a class with its homeroom teacher,
    `students` students and one guardian for each student."""
    school = make_organisation(kind=OrganisationKind.SCHOOL, parent=parent, **school_fields)
    administrator = make_member(organisation=school, role=Role.ADMINISTRATOR)
    teacher = make_user()
    group = make_study_group(organisation=school, name=name, academic_year=academic_year, homeroom_teacher=teacher)
    result = SchoolWithClass(school=school, group=group, administrator=administrator, teacher=teacher)
    for _index in range(students):
        student = make_user()
        services.study_group_student_add(actor=None, group=group, student=student)
        result.students.append(student)
        result.parents.append(make_parent(student=student, organisation=school))
    return result
