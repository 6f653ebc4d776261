"""Reads and visibility rules of mini-apps, the diary and the showcase.

Who may launch a mini-app (`miniapp_launch_access`): a person with an active
role in the app's audience — for a platform app anywhere, for an
organisation's app in that organisation or one below it (a regional
authority's app is for its schools). A child in safe mode launches only the
platform's apps and those of the child's own organisations.

Who sees a class's diary (`diary_group_access`): the school's administrators
and the class's teachers see everything and the teachers (and the
administrators) enter it; the class's students see the timetable, the
homework and their own marks; guardians the same for their children.
Everyone else gets 404, as for a class that does not exist."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from bots.selectors import bot_showcase_list
from chats.services.channels import channel_list
from common.errors import NotFound, PermissionDenied
from miniapps.models import Homework, Mark, MiniApp, TimetableEntry
from organisations.models import Guardianship, Membership, Role, StudyGroup, StudyGroupStudent, StudyGroupTeacher
from organisations.selectors import current_academic_year, user_administers

# When a person has several roles in an app's audience, the launch names the
# first of these (and the organisation of that role).
ROLE_ORDER = (Role.ADMINISTRATOR, Role.TEACHER, Role.STAFF, Role.OFFICIAL, Role.PARENT, Role.STUDENT)
# Homework shown in a diary: due from this many days ago on.
HOMEWORK_PAST_DAYS = 14
MARKS_SHOWN = 200


# --- Mini-apps -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchableApp:
    """An app a person may launch, with the role and organisation its
    launch parameters will name."""

    app: MiniApp
    role: str
    organisation_id: int


@dataclass(frozen=True)
class _Role:
    role: str
    organisation_id: int
    path: str


def _roles_of(user: User) -> list[_Role]:
    return [
        _Role(role=role, organisation_id=organisation_id, path=path)
        for role, organisation_id, path in Membership.objects.active()
        .filter(user=user)
        .order_by("organisation_id", "role")
        .values_list("role", "organisation_id", "organisation__path")
    ]


def _match(*, app: MiniApp, roles: list[_Role], is_safe_mode: bool) -> tuple[str, int] | None:
    """The (role, organisation id) a person launches `app` as, or None.
    Raises nothing; the caller tells why."""
    for role in ROLE_ORDER:
        if role not in app.audience:
            continue
        for held in roles:
            if held.role != role:
                continue
            if app.organisation_id is None or held.organisation_id == app.organisation_id:
                return role, held.organisation_id
            if not is_safe_mode and app.organisation is not None and held.path.startswith(app.organisation.path):
                return role, held.organisation_id
    return None


def miniapps_for_user(*, user: User) -> list[LaunchableApp]:
    """The active apps a person may launch, in showcase order. Two queries."""
    if not user.is_authenticated or not user.is_active:
        return []
    roles = _roles_of(user)
    if not roles:
        return []
    result = []
    for app in MiniApp.objects.filter(is_active=True).select_related("organisation"):
        match = _match(app=app, roles=roles, is_safe_mode=user.is_safe_mode)
        if match is not None:
            result.append(LaunchableApp(app=app, role=match[0], organisation_id=match[1]))
    return result


def miniapp_launch_access(*, user: User, slug: str) -> LaunchableApp:
    """The app `slug` as `user` may launch it.

    Raises NotFound (no such active app) or PermissionDenied: "safe_mode"
    for a child in safe mode and another organisation's app, "not_in_audience"
    when none of the person's roles is in its audience there.
    """
    app = MiniApp.objects.filter(slug=slug, is_active=True).select_related("organisation").first()
    if app is None or not user.is_authenticated or not user.is_active:
        raise NotFound(_("Not found."))
    roles = _roles_of(user)
    match = _match(app=app, roles=roles, is_safe_mode=user.is_safe_mode)
    if match is None:
        if user.is_safe_mode and _match(app=app, roles=roles, is_safe_mode=False) is not None:
            raise PermissionDenied(
                _("In safe mode only apps of your own school and of the platform can be opened."), code="safe_mode"
            )
        raise PermissionDenied(_("This app is not meant for your role."), code="not_in_audience")
    return LaunchableApp(app=app, role=match[0], organisation_id=match[1])


# --- The diary: access ---------------------------------------------------------------------------------


def _not_found() -> NotFound:
    return NotFound(_("Not found."))


def not_group_teacher() -> PermissionDenied:
    return PermissionDenied(
        _("Only the class's teachers and the school's administrators may enter the diary."), code="not_group_teacher"
    )


def user_teaches_group(*, user: User, group: StudyGroup) -> bool:
    return group.homeroom_teacher_id == user.pk or StudyGroupTeacher.objects.filter(group=group, teacher=user).exists()


def _enters_diary(*, user: User, group: StudyGroup) -> bool:
    """The class's teachers and its school's administrators enter its diary."""
    return user_teaches_group(user=user, group=group) or user_administers(user=user, organisation=group.organisation)


def children_ids(*, user: User) -> set[int]:
    return set(Guardianship.objects.filter(parent=user, ended_at__isnull=True).values_list("student_id", flat=True))


@dataclass(frozen=True)
class GroupAccess:
    """What a person may do with a class's diary. `student_ids` are the
    students whose marks they see: None for all of them."""

    group: StudyGroup
    may_edit: bool
    student_ids: frozenset[int] | None = None

    def sees_marks_of(self, student_id: int) -> bool:
        return self.student_ids is None or student_id in self.student_ids


def diary_group_access(*, user: User, group_id: int) -> GroupAccess:
    """Raises NotFound unless the person is the class's teacher, an
    administrator of its school, one of its students or their guardian."""
    if not user.is_authenticated or not user.is_active:
        raise _not_found()
    group = StudyGroup.objects.select_related("organisation").filter(pk=group_id).first()
    if group is None:
        raise _not_found()
    if _enters_diary(user=user, group=group):
        return GroupAccess(group=group, may_edit=True)
    students = set(StudyGroupStudent.objects.filter(group=group).values_list("student_id", flat=True))
    own = ({user.pk} | children_ids(user=user)) & students
    if not own:
        raise _not_found()
    return GroupAccess(group=group, may_edit=False, student_ids=frozenset(own))


def diary_group_edit_access(*, user: User, group_id: int) -> StudyGroup:
    """The class when the person may enter its diary. Raises NotFound (may
    not see it) or PermissionDenied "not_group_teacher" (a student, a parent)."""
    access = diary_group_access(user=user, group_id=group_id)
    if not access.may_edit:
        raise not_group_teacher()
    return access.group


def diary_student_access(*, user: User, student_id: int) -> User:
    """A student whose diary the person may see: oneself, one's child, a
    student of a class one teaches or of a school one administers. Raises
    NotFound otherwise."""
    if not user.is_authenticated or not user.is_active:
        raise _not_found()
    student = User.objects.filter(pk=student_id, is_active=True).first()
    if student is None:
        raise _not_found()
    if student.pk == user.pk and StudyGroupStudent.objects.filter(student=student).exists():
        return student
    if student.pk in children_ids(user=user):
        return student
    groups = StudyGroup.objects.filter(studygroupstudent__student=student).select_related("organisation")
    for group in groups:
        if _enters_diary(user=user, group=group):
            return student
    raise _not_found()


# --- The diary: reads ----------------------------------------------------------------------------------


def group_timetable(*, group: StudyGroup) -> QuerySet[TimetableEntry]:
    return TimetableEntry.objects.filter(group=group).select_related("teacher").order_by("weekday", "period")


def _homework_shown(today: datetime.date | None) -> QuerySet[Homework]:
    """Homework a diary shows: due from HOMEWORK_PAST_DAYS ago on, soonest first."""
    today = today or timezone.localdate()
    return Homework.objects.filter(due_date__gte=today - datetime.timedelta(days=HOMEWORK_PAST_DAYS)).order_by(
        "due_date", "subject", "id"
    )


def group_homework(*, group: StudyGroup, today: datetime.date | None = None) -> QuerySet[Homework]:
    return _homework_shown(today).filter(group=group)


def group_marks(*, access: GroupAccess) -> QuerySet[Mark]:
    marks = Mark.objects.filter(group=access.group).select_related("student")
    if access.student_ids is not None:
        marks = marks.filter(student_id__in=access.student_ids)
    return marks.order_by("-date", "student__last_name", "student__first_name", "subject", "id")[:MARKS_SHOWN]


def group_students(*, group: StudyGroup) -> QuerySet[User]:
    return User.objects.filter(studygroupstudent__group=group, is_active=True).order_by("last_name", "first_name", "id")


def group_teachers(*, group: StudyGroup) -> QuerySet[User]:
    return (
        User.objects.filter(Q(studygroupteacher__group=group) | Q(homeroom_groups=group))
        .distinct()
        .order_by("last_name", "first_name", "id")
    )


def homework_for_download(*, user: User, homework_id: int) -> Homework:
    """Homework whose attachment the person may download: anyone who sees
    the class's diary. Raises NotFound otherwise (and without an attachment)."""
    homework = Homework.objects.filter(pk=homework_id).first()
    if homework is None or not homework.attachment:
        raise _not_found()
    diary_group_access(user=user, group_id=homework.group_id)
    return homework


@dataclass
class StudentDiary:
    student: User
    groups: list[StudyGroup]
    timetable: list[TimetableEntry] = field(default_factory=list)
    homework: list[Homework] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


def student_diary(*, student: User, today: datetime.date | None = None) -> StudentDiary:
    """A student's diary: the timetable and homework of their classes of the
    current academic year, and their marks (newest first)."""
    today = today or timezone.localdate()
    groups = list(
        StudyGroup.objects.filter(
            studygroupstudent__student=student, academic_year=current_academic_year(today)
        ).select_related("organisation")
    )
    group_ids = [group.pk for group in groups]
    return StudentDiary(
        student=student,
        groups=groups,
        timetable=list(
            TimetableEntry.objects.filter(group_id__in=group_ids)
            .select_related("teacher", "group")
            .order_by("weekday", "period", "group_id")
        ),
        homework=list(_homework_shown(today).filter(group_id__in=group_ids)),
        marks=list(Mark.objects.filter(student=student).order_by("-date", "subject", "id")[:MARKS_SHOWN]),
    )


@dataclass(frozen=True)
class DiaryHome:
    """The diaries a person can open: their own, their children's, and the
    classes they teach or administer (current academic year)."""

    own: User | None
    children: list[User]
    groups: list[StudyGroup]


def diary_home(*, user: User) -> DiaryHome:
    year = current_academic_year()
    own = user if StudyGroupStudent.objects.filter(student=user, group__academic_year=year).exists() else None
    children = list(User.objects.filter(pk__in=children_ids(user=user), is_active=True).order_by("first_name", "id"))
    administered = Membership.objects.active().filter(user=user, role=Role.ADMINISTRATOR).values("organisation_id")
    groups = list(
        StudyGroup.objects.filter(academic_year=year)
        .filter(
            Q(homeroom_teacher=user)
            | Q(pk__in=StudyGroupTeacher.objects.filter(teacher=user).values("group_id"))
            | Q(organisation_id__in=administered)
        )
        .select_related("organisation")
        .order_by("organisation__short_name", "grade", "name")
    )
    return DiaryHome(own=own, children=children, groups=groups)


# --- The showcase --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShowcaseBot:
    name: str
    description: str
    url: str
    is_verified: bool


@dataclass(frozen=True)
class ShowcaseChannel:
    title: str
    organisation: str
    url: str


@dataclass(frozen=True)
class Showcase:
    apps: list[LaunchableApp]
    bots: list[ShowcaseBot]
    channels: list[ShowcaseChannel]


def _bots_for(user: User) -> list[ShowcaseBot]:
    """The bots the person may start (bots.selectors, a lower layer)."""
    return [
        ShowcaseBot(
            name=bot.name,
            description=bot.description,
            url=reverse("bots:detail", kwargs={"username": bot.username}),
            is_verified=bot.is_verified,
        )
        for bot in bot_showcase_list(user=user)
    ]


def _verified_channels_for(user: User) -> list[ShowcaseChannel]:
    channels: Iterable = channel_list(user=user).filter(is_verified=True, organisation__is_verified=True)[:20]
    return [
        ShowcaseChannel(
            title=chat.title,
            organisation=chat.organisation.short_name if chat.organisation else "",
            url=reverse("chats:channel_detail", args=[chat.pk]),
        )
        for chat in channels
    ]


def showcase(*, user: User) -> Showcase:
    """The system folder "Education": the mini-apps, bots and verified
    channels that fit the person's roles."""
    return Showcase(apps=miniapps_for_user(user=user), bots=_bots_for(user), channels=_verified_channels_for(user))
