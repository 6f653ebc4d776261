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
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from organisations import selectors, services
from organisations.models import (
    Membership,
    Organisation,
    OrganisationKind,
    Region,
    Role,
    StudyGroup,
    VerificationStatus,
)

DEMO_REGION_CODE = "50"
DEMO_MUNICIPALITY = "городской округ Красногорск"


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


# --- People --------------------------------------------------------------------


def demo_user(*, phone: str, last_name: str, first_name: str, middle_name: str = "") -> User:
    """The demo person with this phone number, created on the first run. The
    names are fixed demo data, so they are set once and never overwritten."""
    user = User.objects.filter(phone=phone).first()
    if user is None:
        user = User.objects.create_user(phone, first_name=first_name, last_name=last_name, middle_name=middle_name)
    return user


# Phone, last, first and middle name, and the parent's (phone, names) for students.
STUDENTS_7B = [
    ("+79000000004", "Петров", "Иван", "Алексеевич", ("+79000000005", "Петрова", "Елена", "Викторовна")),
    ("+79000000011", "Соколова", "Мария", "Андреевна", ("+79000000031", "Соколов", "Андрей", "Игоревич")),
    ("+79000000012", "Новиков", "Артём", "Павлович", ("+79000000032", "Новикова", "Ирина", "Сергеевна")),
    ("+79000000013", "Козлова", "София", "Дмитриевна", ("+79000000033", "Козлова", "Светлана", "Олеговна")),
]
STUDENTS_5A = [
    ("+79000000021", "Попов", "Михаил", "Романович", ("+79000000034", "Попова", "Ольга", "Николаевна")),
    ("+79000000022", "Васильева", "Анастасия", "Ильинична", ("+79000000035", "Васильев", "Илья", "Петрович")),
    ("+79000000023", "Фёдоров", "Даниил", "Максимович", ("+79000000036", "Фёдорова", "Юлия", "Александровна")),
]


# --- Steps ---------------------------------------------------------------------


def demo_organisation(*, inn: str, **fields: Any) -> Organisation:
    """The demo organisation with this INN, created on the first run."""
    organisation = Organisation.objects.filter(inn=inn).order_by("id").first()
    if organisation is None:
        organisation = services.organisation_create(actor=None, inn=inn, **fields)
    return organisation


def seed_organisations(data: DemoData) -> None:
    services.regions_ensure()
    region = Region.objects.get(code=DEMO_REGION_CODE)
    moscow = Region.objects.get(code="77")
    ministry = data.add(
        "ministry",
        demo_organisation(
            inn="7700000016",
            kind=OrganisationKind.MINISTRY,
            full_name="Министерство просвещения Российской Федерации",
            short_name="Минпросвещения России",
            region=moscow,
            address="127006, г. Москва, ул. Каретный Ряд, д. 2",
            website="https://edu.gov.ru",
            is_verified=True,
        ),
    )
    authority = data.add(
        "regional_authority",
        demo_organisation(
            inn="5000000017",
            kind=OrganisationKind.REGIONAL_AUTHORITY,
            full_name="Министерство образования Московской области",
            short_name="Минобразования Московской области",
            region=region,
            address="143407, Московская область, г. Красногорск, бульвар Строителей, д. 1",
            parent=ministry,
            is_verified=True,
        ),
    )
    municipal = data.add(
        "municipal_authority",
        demo_organisation(
            inn="5024000016",
            kind=OrganisationKind.MUNICIPAL_AUTHORITY,
            full_name="Управление образования администрации городского округа Красногорск",
            short_name="Управление образования г.о. Красногорск",
            region=region,
            municipality=DEMO_MUNICIPALITY,
            address="143404, Московская область, г. Красногорск, ул. Ленина, д. 4",
            parent=authority,
            is_verified=True,
        ),
    )
    data.add(
        "school_1",
        demo_organisation(
            inn="5024000023",
            kind=OrganisationKind.SCHOOL,
            full_name="Муниципальное бюджетное общеобразовательное учреждение «Средняя общеобразовательная школа № 1»",
            short_name="МБОУ СОШ № 1",
            region=region,
            municipality=DEMO_MUNICIPALITY,
            address="143405, Московская область, г. Красногорск, ул. Школьная, д. 1",
            phone="+7 495 000-00-01",
            email="school1@example.org",
            parent=municipal,
            is_verified=True,
        ),
    )
    data.add(
        "school_2",
        demo_organisation(
            inn="5024000030",
            kind=OrganisationKind.SCHOOL,
            full_name="Муниципальное бюджетное общеобразовательное учреждение «Гимназия № 2»",
            short_name="МБОУ Гимназия № 2",
            region=region,
            municipality=DEMO_MUNICIPALITY,
            address="143409, Московская область, г. Красногорск, ул. Речная, д. 12",
            phone="+7 495 000-00-02",
            email="gymnasium2@example.org",
            parent=municipal,
            is_verified=True,
        ),
    )
    data.add(
        "kindergarten",
        demo_organisation(
            inn="5024000048",
            kind=OrganisationKind.KINDERGARTEN,
            full_name="Муниципальное бюджетное дошкольное образовательное учреждение «Детский сад № 5 «Солнышко»",
            short_name="МБДОУ Детский сад № 5 «Солнышко»",
            region=region,
            municipality=DEMO_MUNICIPALITY,
            address="143408, Московская область, г. Красногорск, ул. Садовая, д. 5",
            phone="+7 495 000-00-05",
            parent=municipal,
            is_verified=False,
        ),
    )


def seed_staff(data: DemoData) -> None:
    school = data["school_1"]
    superuser = User.objects.filter(phone="+79000000000").first()
    if superuser is None:
        superuser = User.objects.create_superuser("+79000000000", first_name="Алексей", last_name="Соколов")
    data.add("superuser", superuser)

    administrator = data.add(
        "administrator",
        demo_user(phone="+79000000001", last_name="Смирнова", first_name="Ольга", middle_name="Петровна"),
    )
    services.membership_create(
        actor=superuser, user=administrator, organisation=school, role=Role.ADMINISTRATOR, position="Директор"
    )
    data.add(
        "teacher_verified",
        demo_user(phone="+79000000002", last_name="Кузнецова", first_name="Анна", middle_name="Сергеевна"),
    )
    data.add(
        "teacher_pending",
        demo_user(phone="+79000000003", last_name="Волков", first_name="Дмитрий", middle_name="Андреевич"),
    )
    regional_official = data.add(
        "regional_official",
        demo_user(phone="+79000000006", last_name="Морозов", first_name="Сергей", middle_name="Николаевич"),
    )
    services.membership_create(
        actor=superuser,
        user=regional_official,
        organisation=data["regional_authority"],
        role=Role.OFFICIAL,
        position="Начальник отдела общего образования",
    )
    municipal_official = data.add(
        "municipal_official",
        demo_user(phone="+79000000007", last_name="Лебедева", first_name="Татьяна", middle_name="Викторовна"),
    )
    services.membership_create(
        actor=superuser,
        user=municipal_official,
        organisation=data["municipal_authority"],
        role=Role.OFFICIAL,
        position="Главный специалист",
    )


def seed_classes(data: DemoData) -> None:
    school = data["school_1"]
    administrator = data["administrator"]
    year = selectors.current_academic_year()
    class_7b = data.add(
        "class_7b",
        services.study_group_create(
            actor=administrator,
            organisation=school,
            name="7Б",
            academic_year=year,
            homeroom_teacher=data["teacher_verified"],
        ),
    )
    class_5a = data.add(
        "class_5a",
        services.study_group_create(
            actor=administrator,
            organisation=school,
            name="5А",
            academic_year=year,
            homeroom_teacher=data["teacher_pending"],
        ),
    )
    services.study_group_teacher_add(
        actor=administrator, group=class_7b, teacher=data["teacher_pending"], subject="Математика"
    )
    services.study_group_teacher_add(
        actor=administrator, group=class_5a, teacher=data["teacher_verified"], subject="Русский язык"
    )
    for key, group, students in (("students_7b", class_7b, STUDENTS_7B), ("students_5a", class_5a, STUDENTS_5A)):
        data.add(key, [])
        for phone, last_name, first_name, middle_name, parent in students:
            student = demo_user(phone=phone, last_name=last_name, first_name=first_name, middle_name=middle_name)
            services.study_group_student_add(actor=administrator, group=group, student=student)
            data[key].append(student)
            parent_phone, parent_last_name, parent_first_name, parent_middle_name = parent
            parent_user = demo_user(
                phone=parent_phone,
                last_name=parent_last_name,
                first_name=parent_first_name,
                middle_name=parent_middle_name,
            )
            services.guardianship_link(actor=administrator, parent=parent_user, student=student, organisation=school)
            data.objects.setdefault("parents", {})[student.pk] = parent_user
    data.add("student", data["students_7b"][0])
    data.add("parent", data["parents"][data["student"].pk])


def seed_verification(data: DemoData) -> None:
    """One teacher verified by the school's administrator, one still waiting."""
    school = data["school_1"]
    verified = Membership.objects.active().get(user=data["teacher_verified"], organisation=school, role=Role.TEACHER)
    if verified.verification_status != VerificationStatus.VERIFIED:
        services.verification_request(user=data["teacher_verified"], membership=verified)
        services.verification_decide(actor=data["administrator"], membership=verified, approve=True)
    pending = Membership.objects.active().get(user=data["teacher_pending"], organisation=school, role=Role.TEACHER)
    services.verification_request(user=data["teacher_pending"], membership=pending)
    for key in ("teacher_verified", "teacher_pending"):
        data[key].refresh_from_db()


def seed_logins(data: DemoData) -> None:
    school = data["school_1"]
    class_7b: StudyGroup = data["class_7b"]
    class_5a: StudyGroup = data["class_5a"]
    data.add_login(user=data["superuser"], role=_("platform superuser"))
    data.add_login(user=data["administrator"], role=_("school administrator"), organisation=school)
    data.add_login(
        user=data["teacher_verified"],
        role=_("teacher, verified, homeroom teacher of %(group)s") % {"group": class_7b.name},
        organisation=school,
    )
    data.add_login(
        user=data["teacher_pending"],
        role=_("teacher, verification pending, homeroom teacher of %(group)s") % {"group": class_5a.name},
        organisation=school,
    )
    data.add_login(
        user=data["regional_official"],
        role=_("official of the regional education authority"),
        organisation=data["regional_authority"],
    )
    data.add_login(
        user=data["municipal_official"],
        role=_("official of the municipal education authority"),
        organisation=data["municipal_authority"],
    )
    for key, group in (("students_7b", class_7b), ("students_5a", class_5a)):
        for student in data[key]:
            data.add_login(user=student, role=_("student of %(group)s") % {"group": group.name}, organisation=school)
            data.add_login(
                user=data["parents"][student.pk],
                role=_("parent of %(name)s") % {"name": student.display_name},
                organisation=school,
            )


DEMO_STEPS: list[DemoStep] = [seed_organisations, seed_staff, seed_classes, seed_verification, seed_logins]


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
