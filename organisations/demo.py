"""Demo data of `manage.py seed_demo`: an education authority tree in the
Moscow region, a school with two classes, teachers, students and parents.

Every step is idempotent and goes through the services, so audit entries,
safe mode and badges come out as they would in real use; a second run finds
everything in place and changes nothing.

Later apps extend the demo without touching this file: a `demo` module in
any installed app with a `DEMO_STEPS` list of functions taking `DemoData` is
run after the apps before it (INSTALLED_APPS order, which follows the layers:
organisations, then chats, then lessons…). A step finds what earlier steps
made with `data["class_7b"]` and adds its own objects and demo logins.
"""

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.apps import apps
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import User
from organisations import selectors, services
from organisations.models import (
    Membership,
    Organisation,
    OrganisationKind,
    Region,
    Role,
    VerificationStatus,
)


@dataclass(frozen=True)
class DemoLogin:
    phone: str
    role: str
    name: str
    organisation: str


@dataclass
class DemoData:
    """What the demo steps made, by key, and the logins to print."""

    objects: dict[str, Any] = field(default_factory=dict)
    logins: list[DemoLogin] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.objects[key]

    def __contains__(self, key: str) -> bool:
        return key in self.objects

    def add(self, key: str, value: Any) -> Any:
        self.objects[key] = value
        return value

    def add_login(self, *, user: User, role: str, organisation: Organisation | None = None) -> None:
        self.logins.append(
            DemoLogin(
                phone=str(user.phone),
                role=role,
                name=user.get_full_name() or user.display_name,
                organisation=organisation.short_name if organisation is not None else "—",
            )
        )


DemoStep = Callable[[DemoData], None]


# --- The demo, as tables --------------------------------------------------------
#
# Rows name each other by key: a parent organisation, a homeroom teacher, a
# class. Every table is read in order, so a row may only name keys of rows
# above it or of the tables before it.

DEMO_REGION_CODE = "50"
DEMO_MUNICIPALITY = "городской округ Красногорск"


class DemoOrganisation(NamedTuple):
    key: str
    inn: str
    kind: str
    full_name: str
    short_name: str
    region: str
    parent: str | None
    address: str
    municipality: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""
    is_verified: bool = True


ORGANISATIONS = [
    DemoOrganisation(
        "ministry",
        "7700000016",
        OrganisationKind.MINISTRY,
        "Министерство просвещения Российской Федерации",
        "Минпросвещения России",
        region="77",
        parent=None,
        address="127006, г. Москва, ул. Каретный Ряд, д. 2",
        website="https://edu.gov.ru",
    ),
    DemoOrganisation(
        "regional_authority",
        "5000000017",
        OrganisationKind.REGIONAL_AUTHORITY,
        "Министерство образования Московской области",
        "Минобразования Московской области",
        region=DEMO_REGION_CODE,
        parent="ministry",
        address="143407, Московская область, г. Красногорск, бульвар Строителей, д. 1",
    ),
    DemoOrganisation(
        "municipal_authority",
        "5024000016",
        OrganisationKind.MUNICIPAL_AUTHORITY,
        "Управление образования администрации городского округа Красногорск",
        "Управление образования г.о. Красногорск",
        region=DEMO_REGION_CODE,
        parent="regional_authority",
        address="143404, Московская область, г. Красногорск, ул. Ленина, д. 4",
        municipality=DEMO_MUNICIPALITY,
    ),
    DemoOrganisation(
        "school_1",
        "5024000023",
        OrganisationKind.SCHOOL,
        "Муниципальное бюджетное общеобразовательное учреждение «Средняя общеобразовательная школа № 1»",
        "МБОУ СОШ № 1",
        region=DEMO_REGION_CODE,
        parent="municipal_authority",
        address="143405, Московская область, г. Красногорск, ул. Школьная, д. 1",
        municipality=DEMO_MUNICIPALITY,
        phone="+7 495 000-00-01",
        email="school1@example.org",
    ),
    DemoOrganisation(
        "school_2",
        "5024000030",
        OrganisationKind.SCHOOL,
        "Муниципальное бюджетное общеобразовательное учреждение «Гимназия № 2»",
        "МБОУ Гимназия № 2",
        region=DEMO_REGION_CODE,
        parent="municipal_authority",
        address="143409, Московская область, г. Красногорск, ул. Речная, д. 12",
        municipality=DEMO_MUNICIPALITY,
        phone="+7 495 000-00-02",
        email="gymnasium2@example.org",
    ),
    DemoOrganisation(
        "kindergarten",
        "5024000048",
        OrganisationKind.KINDERGARTEN,
        "Муниципальное бюджетное дошкольное образовательное учреждение «Детский сад № 5 «Солнышко»",
        "МБДОУ Детский сад № 5 «Солнышко»",
        region=DEMO_REGION_CODE,
        parent="municipal_authority",
        address="143408, Московская область, г. Красногорск, ул. Садовая, д. 5",
        municipality=DEMO_MUNICIPALITY,
        phone="+7 495 000-00-05",
        is_verified=False,
    ),
]


class DemoPerson(NamedTuple):
    key: str
    phone: str
    last_name: str
    first_name: str
    middle_name: str = ""
    is_superuser: bool = False


PEOPLE = [
    DemoPerson("superuser", "+79000000000", "Соколов", "Алексей", is_superuser=True),
    DemoPerson("administrator", "+79000000001", "Смирнова", "Ольга", "Петровна"),
    DemoPerson("teacher_verified", "+79000000002", "Кузнецова", "Анна", "Сергеевна"),
    DemoPerson("teacher_pending", "+79000000003", "Волков", "Дмитрий", "Андреевич"),
    DemoPerson("regional_official", "+79000000006", "Морозов", "Сергей", "Николаевич"),
    DemoPerson("municipal_official", "+79000000007", "Лебедева", "Татьяна", "Викторовна"),
    DemoPerson("student_7b_1", "+79000000004", "Петров", "Иван", "Алексеевич"),
    DemoPerson("parent_7b_1", "+79000000005", "Петрова", "Елена", "Викторовна"),
    DemoPerson("student_7b_2", "+79000000011", "Соколова", "Мария", "Андреевна"),
    DemoPerson("parent_7b_2", "+79000000031", "Соколов", "Андрей", "Игоревич"),
    DemoPerson("student_7b_3", "+79000000012", "Новиков", "Артём", "Павлович"),
    DemoPerson("parent_7b_3", "+79000000032", "Новикова", "Ирина", "Сергеевна"),
    DemoPerson("student_7b_4", "+79000000013", "Козлова", "София", "Дмитриевна"),
    DemoPerson("parent_7b_4", "+79000000033", "Козлова", "Светлана", "Олеговна"),
    DemoPerson("student_5a_1", "+79000000021", "Попов", "Михаил", "Романович"),
    DemoPerson("parent_5a_1", "+79000000034", "Попова", "Ольга", "Николаевна"),
    DemoPerson("student_5a_2", "+79000000022", "Васильева", "Анастасия", "Ильинична"),
    DemoPerson("parent_5a_2", "+79000000035", "Васильев", "Илья", "Петрович"),
    DemoPerson("student_5a_3", "+79000000023", "Фёдоров", "Даниил", "Максимович"),
    DemoPerson("parent_5a_3", "+79000000036", "Фёдорова", "Юлия", "Александровна"),
]

# The platform's superuser gives the roles below; the school's administrator
# sets up its classes, links the parents and verifies the teachers.
ROLES_GIVEN_BY = "superuser"
SCHOOL_RUN_BY = "administrator"


class DemoMembership(NamedTuple):
    person: str
    organisation: str
    role: str
    position: str


MEMBERSHIPS = [
    DemoMembership("administrator", "school_1", Role.ADMINISTRATOR, "Директор"),
    DemoMembership("regional_official", "regional_authority", Role.OFFICIAL, "Начальник отдела общего образования"),
    DemoMembership("municipal_official", "municipal_authority", Role.OFFICIAL, "Главный специалист"),
]


class DemoGroup(NamedTuple):
    """A class of the current academic year; its homeroom teacher becomes a
    teacher of the school."""

    key: str
    organisation: str
    name: str
    homeroom_teacher: str


GROUPS = [
    DemoGroup("class_7b", "school_1", "7Б", homeroom_teacher="teacher_verified"),
    DemoGroup("class_5a", "school_1", "5А", homeroom_teacher="teacher_pending"),
]


class DemoGroupTeacher(NamedTuple):
    group: str
    teacher: str
    subject: str


GROUP_TEACHERS = [
    DemoGroupTeacher("class_7b", "teacher_pending", "Математика"),
    DemoGroupTeacher("class_5a", "teacher_verified", "Русский язык"),
]


class DemoGroupStudent(NamedTuple):
    group: str
    student: str


GROUP_STUDENTS = [
    DemoGroupStudent("class_7b", "student_7b_1"),
    DemoGroupStudent("class_7b", "student_7b_2"),
    DemoGroupStudent("class_7b", "student_7b_3"),
    DemoGroupStudent("class_7b", "student_7b_4"),
    DemoGroupStudent("class_5a", "student_5a_1"),
    DemoGroupStudent("class_5a", "student_5a_2"),
    DemoGroupStudent("class_5a", "student_5a_3"),
]


class DemoGuardianship(NamedTuple):
    parent: str
    student: str
    organisation: str


GUARDIANSHIPS = [
    DemoGuardianship("parent_7b_1", "student_7b_1", "school_1"),
    DemoGuardianship("parent_7b_2", "student_7b_2", "school_1"),
    DemoGuardianship("parent_7b_3", "student_7b_3", "school_1"),
    DemoGuardianship("parent_7b_4", "student_7b_4", "school_1"),
    DemoGuardianship("parent_5a_1", "student_5a_1", "school_1"),
    DemoGuardianship("parent_5a_2", "student_5a_2", "school_1"),
    DemoGuardianship("parent_5a_3", "student_5a_3", "school_1"),
]


class DemoVerification(NamedTuple):
    """A teacher's request to be verified, approved by `approved_by` or still
    waiting (None)."""

    teacher: str
    organisation: str
    approved_by: str | None


VERIFICATIONS = [
    DemoVerification("teacher_verified", "school_1", approved_by=SCHOOL_RUN_BY),
    DemoVerification("teacher_pending", "school_1", approved_by=None),
]


class DemoLoginRow(NamedTuple):
    """A login to print: the role (translated when printed) may name the
    class `group`."""

    person: str
    role: str
    organisation: str | None
    group: str | None = None


# Then every student of GROUP_STUDENTS, each followed by their parents.
LOGINS = [
    DemoLoginRow("superuser", gettext_noop("platform superuser"), None),
    DemoLoginRow("administrator", gettext_noop("school administrator"), "school_1"),
    DemoLoginRow(
        "teacher_verified", gettext_noop("teacher, verified, homeroom teacher of %(group)s"), "school_1", "class_7b"
    ),
    DemoLoginRow(
        "teacher_pending",
        gettext_noop("teacher, verification pending, homeroom teacher of %(group)s"),
        "school_1",
        "class_5a",
    ),
    DemoLoginRow(
        "regional_official", gettext_noop("official of the regional education authority"), "regional_authority"
    ),
    DemoLoginRow(
        "municipal_official", gettext_noop("official of the municipal education authority"), "municipal_authority"
    ),
]


# --- Making it -----------------------------------------------------------------


def demo_user(
    *, phone: str, last_name: str, first_name: str, middle_name: str = "", is_superuser: bool = False
) -> User:
    """The demo person with this phone number, created on the first run. The
    names are fixed demo data, so they are set once and never overwritten."""
    user = User.objects.filter(phone=phone).first()
    if user is None:
        create = User.objects.create_superuser if is_superuser else User.objects.create_user
        user = create(phone, first_name=first_name, last_name=last_name, middle_name=middle_name)
    return user


def demo_organisation(*, row: DemoOrganisation, parent: Organisation | None) -> Organisation:
    """The demo organisation with this INN, created on the first run."""
    organisation = Organisation.objects.filter(inn=row.inn).order_by("id").first()
    if organisation is None:
        organisation = services.organisation_create(
            actor=None,
            inn=row.inn,
            kind=row.kind,
            full_name=row.full_name,
            short_name=row.short_name,
            region=Region.objects.get(code=row.region),
            address=row.address,
            municipality=row.municipality,
            phone=row.phone,
            email=row.email,
            website=row.website,
            parent=parent,
            is_verified=row.is_verified,
        )
    return organisation


def seed_directory(data: DemoData) -> None:
    """The tables above, in order, each row through the services (which
    find what an earlier run made and change nothing)."""
    services.regions_ensure()
    for organisation in ORGANISATIONS:
        parent = data[organisation.parent] if organisation.parent else None
        data.add(organisation.key, demo_organisation(row=organisation, parent=parent))
    for person in PEOPLE:
        data.add(
            person.key,
            demo_user(
                phone=person.phone,
                last_name=person.last_name,
                first_name=person.first_name,
                middle_name=person.middle_name,
                is_superuser=person.is_superuser,
            ),
        )
    for membership in MEMBERSHIPS:
        services.membership_create(
            actor=data[ROLES_GIVEN_BY],
            user=data[membership.person],
            organisation=data[membership.organisation],
            role=membership.role,
            position=membership.position,
        )
    year = selectors.current_academic_year()
    school_administrator = data[SCHOOL_RUN_BY]
    for group in GROUPS:
        data.add(
            group.key,
            services.study_group_create(
                actor=school_administrator,
                organisation=data[group.organisation],
                name=group.name,
                academic_year=year,
                homeroom_teacher=data[group.homeroom_teacher],
            ),
        )
    for link in GROUP_TEACHERS:
        services.study_group_teacher_add(
            actor=school_administrator, group=data[link.group], teacher=data[link.teacher], subject=link.subject
        )
    for place in GROUP_STUDENTS:
        services.study_group_student_add(
            actor=school_administrator, group=data[place.group], student=data[place.student]
        )
    for guardianship in GUARDIANSHIPS:
        services.guardianship_link(
            actor=school_administrator,
            parent=data[guardianship.parent],
            student=data[guardianship.student],
            organisation=data[guardianship.organisation],
        )
    # What the later steps (and other apps' demos) look up: the students of
    # data["class_7b"] as data["students_7b"], each student's parent by id,
    # and one student and parent to show.
    for group in GROUPS:
        students_key = "students_" + group.key.removeprefix("class_")
        data.add(students_key, [data[place.student] for place in GROUP_STUDENTS if place.group == group.key])
    data.add("parents", {data[link.student].pk: data[link.parent] for link in GUARDIANSHIPS})
    data.add("student", data["students_7b"][0])
    data.add("parent", data["parents"][data["student"].pk])


def seed_verification(data: DemoData) -> None:
    """Each teacher of VERIFICATIONS asks to be verified; the approved ones
    are verified once (a later run finds them verified)."""
    for verification in VERIFICATIONS:
        teacher = data[verification.teacher]
        membership = Membership.objects.active().get(
            user=teacher, organisation=data[verification.organisation], role=Role.TEACHER
        )
        if verification.approved_by is None:
            services.verification_request(user=teacher, membership=membership)
        elif membership.verification_status != VerificationStatus.VERIFIED:
            services.verification_request(user=teacher, membership=membership)
            services.verification_decide(actor=data[verification.approved_by], membership=membership, approve=True)
        teacher.refresh_from_db()


def seed_logins(data: DemoData) -> None:
    for login in LOGINS:
        role = _(login.role)
        if login.group is not None:
            role %= {"group": data[login.group].name}
        organisation = data[login.organisation] if login.organisation else None
        data.add_login(user=data[login.person], role=role, organisation=organisation)
    for place in GROUP_STUDENTS:
        student, group = data[place.student], data[place.group]
        data.add_login(
            user=student, role=_("student of %(group)s") % {"group": group.name}, organisation=group.organisation
        )
        for guardianship in GUARDIANSHIPS:
            if guardianship.student == place.student:
                data.add_login(
                    user=data[guardianship.parent],
                    role=_("parent of %(name)s") % {"name": student.display_name},
                    organisation=data[guardianship.organisation],
                )


DEMO_STEPS: list[DemoStep] = [seed_directory, seed_verification, seed_logins]


def demo_steps() -> list[DemoStep]:
    """The DEMO_STEPS of every installed app's `demo` module, in INSTALLED_APPS order."""
    steps: list[DemoStep] = []
    for app_config in apps.get_app_configs():
        module_name = app_config.name + ".demo"
        # find_spec first, so that an error inside an existing demo module
        # is raised instead of being taken for "this app has no demo".
        if importlib.util.find_spec(module_name) is None:
            continue
        steps.extend(getattr(importlib.import_module(module_name), "DEMO_STEPS", []))
    return steps


@transaction.atomic
def seed_demo_data() -> DemoData:
    """Create (or find) the whole demo and return it by key."""
    data = DemoData()
    for step in demo_steps():
        step(data)
    return data


def demo_logins_table(logins: list[DemoLogin]) -> str:
    header = DemoLogin(phone=_("Phone"), role=_("Role"), name=_("Name"), organisation=_("Organisation"))
    rows = [header, *logins]
    widths = [max(len(getattr(row, column)) for row in rows) for column in ("phone", "role", "name")]
    lines = [
        "  ".join(
            [
                row.phone.ljust(widths[0]),
                row.role.ljust(widths[1]),
                row.name.ljust(widths[2]),
                row.organisation,
            ]
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
