"""Reads and visibility rules of the organisation directory. The rule "may
this person contact this child" lives here, in `contact_is_allowed`, and
every interface (REST, WebSocket, HTML, bots, admin) calls it."""

import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from organisations.models import (
    AUTHORITY_KINDS,
    STAFF_ROLES,
    Guardianship,
    Membership,
    Organisation,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
)

SCHOOL_STAFF_ROLES = (Role.ADMINISTRATOR, Role.TEACHER, Role.STAFF)


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


def contact_is_allowed(*, actor: User, child: User) -> bool:
    """May `actor` write to, call, invite or add `child`?

    A child in safe mode accepts only contacts: classmates of the child's
    study groups of the current academic year, staff of the child's
    organisations, and the child's guardians. Anyone may reach a person who
    is not in safe mode (other rules, e.g. a chat's membership, still apply).
    """
    if actor.pk == child.pk:
        return True
    if not actor.is_active or not child.is_active:
        return False
    if not child.is_safe_mode:
        return True
    if Guardianship.objects.filter(parent=actor, student=child, ended_at__isnull=True).exists():
        return True
    organisation_ids = student_organisation_ids(student=child)
    if (
        organisation_ids
        and Membership.objects.active()
        .filter(user=actor, organisation_id__in=organisation_ids, role__in=SCHOOL_STAFF_ROLES)
        .exists()
    ):
        return True
    year = current_academic_year()
    child_groups = StudyGroupStudent.objects.filter(student=child, group__academic_year=year).values("group_id")
    return StudyGroupStudent.objects.filter(student=actor, group_id__in=child_groups).exists()


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
    query = query.strip()
    if query:
        organisations = organisations.filter(Q(short_name__icontains=query) | Q(full_name__icontains=query))
    if inn.strip():
        organisations = organisations.filter(inn=inn.strip())
    if region_code.strip():
        organisations = organisations.filter(region__code=region_code.strip())
    if municipality.strip():
        organisations = organisations.filter(municipality__icontains=municipality.strip())
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
