"""Reads and visibility rules of the organisation directory. The rule "may
this person contact this child" lives here, in `contact_is_allowed`, and
every interface (REST, WebSocket, HTML, bots, admin) calls it."""

import datetime
import re
from collections.abc import Sequence
from typing import Any

import phonenumbers
from django.conf import settings
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from common.errors import NotFound, PermissionDenied
from organisations import extensions
from organisations.models import (
    AUTHORITY_KINDS,
    STAFF_ROLES,
    Guardianship,
    Membership,
    Organisation,
    Region,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
)

SCHOOL_STAFF_ROLES = (Role.ADMINISTRATOR, Role.TEACHER, Role.STAFF)
# A search box is for a name, not a paragraph: longer input is cut here.
SEARCH_MAX_WORDS = 5


def current_academic_year(today: datetime.date | None = None) -> int:
    """The year the current academic year started: 1 September – 31 August."""
    today = today or timezone.localdate()
    return today.year if today.month >= 9 else today.year - 1


# --- Administration scope ----------------------------------------------------


def administered_organisations(*, user: User) -> QuerySet[Organisation]:
    """Organisations the user administers: those where they hold the
    administrator role, and for authorities their whole subtree."""
    if not user.is_authenticated or not user.is_active:
        return Organisation.objects.none()
    if user.is_superuser:
        return Organisation.objects.all()
    paths = list(
        Organisation.objects.filter(
            memberships__user=user, memberships__role=Role.ADMINISTRATOR, memberships__ended_at__isnull=True
        ).values_list("path", "kind")
    )
    if not paths:
        return Organisation.objects.none()
    condition = Q()
    for path, kind in paths:
        condition |= Q(path__startswith=path) if kind in AUTHORITY_KINDS else Q(path=path)
    return Organisation.objects.filter(condition)


def user_administers(*, user: User, organisation: Organisation) -> bool:
    return administered_organisations(user=user).filter(pk=organisation.pk).exists()


def administered_users(*, user: User, roles: tuple[str, ...] | None = None) -> QuerySet[User]:
    """People with an active membership (of `roles`, if given) in an
    organisation `user` administers; everyone for a superuser."""
    if user.is_superuser and user.is_active:
        users = User.objects.all()
        if roles is None:
            return users
        return users.filter(pk__in=Membership.objects.active().filter(role__in=roles).values("user_id"))
    memberships = Membership.objects.active().filter(
        organisation__in=administered_organisations(user=user).values("pk")
    )
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return User.objects.filter(pk__in=memberships.values("user_id"))


def user_manages_student(*, user: User, student: User, organisation: Organisation) -> bool:
    """The school's administrators and the student's teachers there."""
    if user_administers(user=user, organisation=organisation):
        return True
    return StudyGroupTeacher.objects.filter(
        teacher=user, group__organisation=organisation, group__studygroupstudent__student=student
    ).exists()


# --- People and contact ------------------------------------------------------


def guardian_ids(*, student: User) -> set[int]:
    return set(Guardianship.objects.filter(student=student, ended_at__isnull=True).values_list("parent_id", flat=True))


def student_organisation_ids(*, student: User) -> list[int]:
    return list(
        Membership.objects.active()
        .filter(user=student, role=Role.STUDENT)
        .order_by("organisation_id")
        .values_list("organisation_id", flat=True)
    )


def contacts_filter(*, actor: User) -> Q:
    """A filter on User: the people who count `actor` as a contact. The one
    definition of a contact, used one-by-one (`contact_is_allowed`) and over
    whole lists (search): the children `actor` is a guardian of, the students
    of every organisation where `actor` is on the staff, and `actor`'s
    classmates in the study groups of the current academic year."""
    year = current_academic_year()
    staff_organisations = (
        Membership.objects.active().filter(user=actor, role__in=SCHOOL_STAFF_ROLES).values("organisation_id")
    )
    own_groups = StudyGroupStudent.objects.filter(student=actor, group__academic_year=year).values("group_id")
    return (
        Q(pk__in=Guardianship.objects.filter(parent=actor, ended_at__isnull=True).values("student_id"))
        | Q(
            pk__in=Membership.objects.active()
            .filter(role=Role.STUDENT, organisation_id__in=staff_organisations)
            .values("user_id")
        )
        | Q(pk__in=StudyGroupStudent.objects.filter(group_id__in=own_groups).values("student_id"))
    )


def contact_is_allowed(*, actor: User, child: User) -> bool:
    """May `actor` write to, call, invite or add `child`?

    A child in safe mode accepts only contacts (see `contacts_filter`):
    classmates of the child's study groups of the current academic year,
    staff of the child's organisations, and the child's guardians. Anyone may
    reach a person who is not in safe mode (other rules, e.g. a chat's
    membership, still apply).
    """
    if actor.pk == child.pk:
        return True
    if not actor.is_active or not child.is_active:
        return False
    if not child.is_safe_mode:
        return True
    if User.objects.filter(pk=child.pk).filter(contacts_filter(actor=actor)).exists():
        return True
    # A bot has no memberships of its own: it is judged by its owner. Asked
    # only once the person rule said no, so people's checks cost nothing more.
    owner = extensions.bot_owner(actor.pk)
    if owner is not None:
        return bot_contact_is_allowed(organisation_id=owner.organisation_id, child=child)
    return False


def bot_contact_is_allowed(*, organisation_id: int | None, child: User) -> bool:
    """May a bot of the organisation `organisation_id` (None: a bot of the
    platform) write to `child`? A child in safe mode is reached only by
    bots of the platform and of the child's own organisations."""
    if not child.is_active:
        return False
    if not child.is_safe_mode or organisation_id is None:
        return True
    return Membership.objects.active().filter(user=child, organisation_id=organisation_id).exists()


def shared_organisation_ids(*, user: User, other: User) -> set[int]:
    mine = set(Membership.objects.active().filter(user=user).values_list("organisation_id", flat=True))
    if not mine:
        return set()
    return set(
        Membership.objects.active()
        .filter(user=other, organisation_id__in=mine)
        .values_list("organisation_id", flat=True)
    )


def profile_is_visible(*, viewer: User, owner: User) -> bool:
    """Not a social network: a profile is visible only to people who share an
    organisation with its owner (chats and meetings widen this later), and a
    child's only to its contacts."""
    if viewer.pk == owner.pk:
        return True
    if not viewer.is_authenticated or not viewer.is_active:
        return False
    if owner.is_safe_mode and not contact_is_allowed(actor=viewer, child=owner):
        return False
    if Guardianship.objects.filter(
        Q(parent=viewer, student=owner) | Q(parent=owner, student=viewer), ended_at__isnull=True
    ).exists():
        return True
    return bool(shared_organisation_ids(user=viewer, other=owner))


def user_may_manage_safe_mode(*, user: User, student: User) -> bool:
    """A linked guardian, or an administrator or teacher of the student's school."""
    if not user.is_authenticated or not user.is_active:
        return False
    if Guardianship.objects.filter(parent=user, student=student, ended_at__isnull=True).exists():
        return True
    for organisation in Organisation.objects.filter(pk__in=student_organisation_ids(student=student)):
        if user_manages_student(user=user, student=student, organisation=organisation):
            return True
    return False


def user_memberships_summary(*, user: User) -> dict[str, list[dict[str, Any]]]:
    """The memberships, roles and guardianships shown in /api/v1/me/."""
    memberships = [
        {
            "id": membership.pk,
            "organisation": {
                "id": membership.organisation_id,
                "short_name": membership.organisation.short_name,
                "kind": membership.organisation.kind,
                "is_verified": membership.organisation.is_verified,
            },
            "role": membership.role,
            "position": membership.position,
            "verification_status": membership.verification_status,
        }
        for membership in Membership.objects.active().filter(user=user).select_related("organisation")
    ]
    guardianships = [
        {
            "id": link.pk,
            "student": {"id": link.student_id, "display_name": link.student.display_name},
            "organisation_id": link.organisation_id,
        }
        for link in Guardianship.objects.filter(parent=user, ended_at__isnull=True).select_related("student")
    ]
    return {"memberships": memberships, "guardianships": guardianships}


# --- Directory ---------------------------------------------------------------


def user_is_minor_or_guest(*, user: User) -> bool:
    """Students, and people with no role anywhere, see only their own organisations."""
    roles = set(Membership.objects.active().filter(user=user).values_list("role", flat=True))
    return not (roles - {Role.STUDENT})


def organisations_visible_to(*, user: User) -> QuerySet[Organisation]:
    """The part of the directory a person may browse: everything for adults
    with a role; a student's or a guest's own organisations only."""
    if not user.is_authenticated or not user.is_active:
        return Organisation.objects.none()
    if user.is_superuser or not user_is_minor_or_guest(user=user):
        return Organisation.objects.all()
    return Organisation.objects.filter(memberships__user=user, memberships__ended_at__isnull=True).distinct()


def text_search_filter(*, fields: Sequence[str], text: str) -> Q:
    """Every word of `text` found, ignoring case, in one of `fields`.

    `iregex`, not `icontains`: SQLite's LIKE folds only ASCII letters, so
    "гимназия" would miss "Гимназия". Django runs SQLite's REGEXP through
    Python's `re`, which folds Cyrillic, and PostgreSQL's `~*` does too.
    """
    condition = Q()
    for word in text.split()[:SEARCH_MAX_WORDS]:
        word_condition = Q()
        for field in fields:
            word_condition |= Q(**{f"{field}__iregex": re.escape(word)})
        condition &= word_condition
    return condition


def directory_search(
    *,
    user: User,
    query: str = "",
    inn: str = "",
    region_code: str = "",
    municipality: str = "",
    kind: str = "",
) -> QuerySet[Organisation]:
    organisations = organisations_visible_to(user=user).select_related("region", "parent")
    if query.strip():
        organisations = organisations.filter(text_search_filter(fields=("short_name", "full_name"), text=query))
    if inn.strip():
        organisations = organisations.filter(inn=inn.strip())
    if region_code.strip():
        organisations = organisations.filter(region__code=region_code.strip())
    if municipality.strip():
        organisations = organisations.filter(text_search_filter(fields=("municipality",), text=municipality))
    if kind.strip():
        organisations = organisations.filter(kind=kind.strip())
    return organisations.order_by("short_name", "id")


def organisation_get(*, user: User, organisation_id: int) -> Organisation | None:
    """An organisation the user may see, or None (callers answer 404 either way)."""
    return organisations_visible_to(user=user).select_related("region", "parent").filter(pk=organisation_id).first()


def organisation_contacts_visible(*, user: User, organisation: Organisation) -> bool:
    return (
        not user_is_minor_or_guest(user=user)
        or Membership.objects.active().filter(user=user, organisation=organisation).exists()
    )


def study_groups_visible_to(*, user: User, organisation: Organisation) -> QuerySet[StudyGroup]:
    """Classes of an organisation: all for its staff, one's own for students
    and for parents their children's."""
    groups = StudyGroup.objects.filter(organisation=organisation).select_related("homeroom_teacher")
    if user.is_superuser or user_administers(user=user, organisation=organisation):
        return groups
    if Membership.objects.active().filter(user=user, organisation=organisation, role__in=STAFF_ROLES).exists():
        return groups
    children = Guardianship.objects.filter(parent=user, ended_at__isnull=True).values("student_id")
    return groups.filter(Q(studygroupstudent__student=user) | Q(studygroupstudent__student__in=children)).distinct()


def study_group_list(
    *, user: User, organisation: Organisation, academic_year: int | None = None
) -> QuerySet[StudyGroup]:
    """The classes of `study_groups_visible_to`, with their number of students."""
    groups = study_groups_visible_to(user=user, organisation=organisation)
    if academic_year is not None:
        groups = groups.filter(academic_year=academic_year)
    # A subquery, not Count(): the visibility filter above may already join
    # the students table, and Count() would then count only the matching rows.
    students_count = (
        StudyGroupStudent.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return groups.annotate(students_count=Coalesce(Subquery(students_count), 0))


def user_study_groups(*, user: User, organisation: Organisation, academic_year: int) -> QuerySet[StudyGroup]:
    """A person's own classes in an organisation: the ones they study in or
    teach, their children's, and every class for its administrators."""
    groups = StudyGroup.objects.filter(organisation=organisation, academic_year=academic_year).select_related(
        "homeroom_teacher"
    )
    if user_administers(user=user, organisation=organisation):
        return groups
    children = Guardianship.objects.filter(parent=user, ended_at__isnull=True).values("student_id")
    return groups.filter(
        Q(pk__in=StudyGroupStudent.objects.filter(student=user).values("group_id"))
        | Q(pk__in=StudyGroupTeacher.objects.filter(teacher=user).values("group_id"))
        | Q(homeroom_teacher=user)
        | Q(pk__in=StudyGroupStudent.objects.filter(student_id__in=children).values("group_id"))
    )


def organisation_children_visible(*, user: User, organisation: Organisation) -> QuerySet[Organisation]:
    return organisations_visible_to(user=user).filter(parent=organisation).select_related("region")


def region_list() -> QuerySet[Region]:
    return Region.objects.order_by("code")


# --- People ------------------------------------------------------------------


def person_get(*, viewer: User, user_id: int) -> User | None:
    """A person whose profile `viewer` may see, or None (callers answer 404
    either way, so a profile's existence does not leak)."""
    person = User.objects.filter(pk=user_id, is_active=True).first()
    if person is None or not profile_is_visible(viewer=viewer, owner=person):
        return None
    return person


def person_shared_memberships(*, viewer: User, person: User) -> list[Membership]:
    """`person`'s active memberships in the organisations they share with
    `viewer` (all of them when one looks at oneself)."""
    memberships = Membership.objects.active().filter(user=person).select_related("organisation")
    if viewer.pk != person.pk:
        memberships = memberships.filter(
            organisation_id__in=Membership.objects.active().filter(user=viewer).values("organisation_id")
        )
    return list(memberships.order_by("organisation__short_name", "organisation_id", "role"))


def people_search(*, user: User, query: str) -> QuerySet[User]:
    """People of the organisations `user` belongs to, by name or by an exact
    phone number. Children in safe mode, and anyone hidden from search, are
    found only by their contacts, so that a phone number cannot be used to
    find a child."""
    query = query.strip()
    if not query or not user.is_authenticated or not user.is_active:
        return User.objects.none()
    own_organisations = Membership.objects.active().filter(user=user).values("organisation_id")
    people = (
        User.objects.filter(
            is_active=True,
            pk__in=Membership.objects.active().filter(organisation_id__in=own_organisations).values("user_id"),
        )
        .exclude(pk=user.pk)
        .filter(Q(is_safe_mode=False, is_hidden_from_search=False) | contacts_filter(actor=user))
    )
    phone = phone_number_or_none(query)
    if phone is not None:
        people = people.filter(phone=phone)
    else:
        people = people.filter(text_search_filter(fields=("first_name", "last_name", "middle_name"), text=query))
    return people.order_by("last_name", "first_name", "id")


def phone_number_or_none(text: str) -> str | None:
    """The E.164 form of `text` when it is a whole, valid phone number."""
    if not any(character.isdigit() for character in text) or any(character.isalpha() for character in text):
        return None
    try:
        number = phonenumbers.parse(text, settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def organisation_student_get(*, user: User, organisation: Organisation, student_id: int) -> User | None:
    """A current student of `organisation` whose profile `user` may see."""
    student = User.objects.filter(
        pk=student_id,
        memberships__organisation=organisation,
        memberships__role=Role.STUDENT,
        memberships__ended_at__isnull=True,
    ).first()
    if student is None or not profile_is_visible(viewer=user, owner=student):
        return None
    return student


def access_student_safe_mode(*, user: User, student_id: int) -> User:
    """The student whose safe mode `user` may see and change.

    Raises NotFound when `user` may not see the student at all (or there is
    no such person) and PermissionDenied when they may see but not manage.
    """
    student = User.objects.filter(pk=student_id).first()
    if student is None:
        raise NotFound(_("Not found."))
    if not user_may_manage_safe_mode(user=user, student=student):
        if profile_is_visible(viewer=user, owner=student):
            raise PermissionDenied(_("Only the student's guardians and school may change safe mode."))
        raise NotFound(_("Not found."))
    return student


def user_is_member(*, user: User, organisation: Organisation) -> bool:
    return Membership.objects.active().filter(user=user, organisation=organisation).exists()


def user_is_student(*, user: User, organisation: Organisation) -> bool:
    """Whether `user` currently studies in `organisation`."""
    return Membership.objects.active().filter(user=user, organisation=organisation, role=Role.STUDENT).exists()


def study_group_name_taken(
    *, organisation: Organisation, name: str, academic_year: int, exclude_id: int | None = None
) -> bool:
    """Whether the organisation already has a class of this name that
    academic year (other than the class `exclude_id`)."""
    groups = StudyGroup.objects.filter(organisation=organisation, name=name, academic_year=academic_year)
    if exclude_id is not None:
        groups = groups.exclude(pk=exclude_id)
    return groups.exists()
