"""Writes of the organisation directory: organisations, memberships and
roles, educator verification, study groups, guardianship and safe mode."""

import hashlib
import hmac
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import name_flags_refresh
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.services import audit_record
from organisations import selectors
from organisations.extensions import directory_changed
from organisations.models import (
    Guardianship,
    GuardianshipCode,
    GuardianshipSource,
    Membership,
    Organisation,
    Region,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
    VerificationStatus,
)

VERIFIABLE_ROLES = (Role.TEACHER, Role.STAFF, Role.ADMINISTRATOR)


# --- Organisations ---------------------------------------------------------


def directory_change_record(
    *,
    actor: User | None,
    action: str,
    target: Any,
    organisation_id: int,
    changes: dict[str, Any] | None = None,
) -> None:
    """Every change of memberships, classes and guardianship is audited and
    announced to the apps that keep in step with the directory (chats)."""
    audit_record(actor=actor, action=action, target=target, organisation_id=organisation_id, changes=changes)
    directory_changed(organisation_ids=[organisation_id])


REGIONS_FILE = Path(__file__).resolve().parent / "data" / "regions.json"


def regions_sync(*, region_model: Any = Region) -> int:
    """Create or update Russia's federal subjects from the shipped data file
    (the single source of truth); returns how many there are. The data
    migration calls it with its historical model."""
    rows = json.loads(REGIONS_FILE.read_text(encoding="utf-8"))
    for row in rows:
        region_model.objects.update_or_create(
            code=row["code"],
            defaults={"name": row["name"], "name_en": row["name_en"], "time_zone": row["time_zone"]},
        )
    return len(rows)


def regions_ensure() -> None:
    """Load the regions if the table is empty (a flushed test database)."""
    if not Region.objects.exists():
        regions_sync()


@transaction.atomic
def organisation_create(*, actor: User | None = None, **fields: Any) -> Organisation:
    """Create an organisation and set its materialised path from its parent."""
    organisation = Organisation(**fields)
    if not organisation.time_zone and organisation.region is not None:
        organisation.time_zone = organisation.region.time_zone
    organisation.save()
    organisation.path = _path_for(organisation)
    organisation.save(update_fields=["path"])
    directory_change_record(
        actor=actor, action="organisation.create", target=organisation, organisation_id=organisation.pk
    )
    return organisation


@transaction.atomic
def organisation_update(*, actor: User | None, organisation: Organisation, **fields: Any) -> Organisation:
    """Change an organisation's fields; moving it moves its whole subtree.

    Raises ApplicationError when the new parent lies inside its own subtree.
    """
    tracked = [*fields.keys()]
    old = {name: getattr(organisation, name) for name in tracked}
    old_path = organisation.path
    for name, value in fields.items():
        setattr(organisation, name, value)
    if organisation.parent is not None and organisation.parent.path.startswith(old_path):
        raise ApplicationError(_("An organisation cannot be placed inside itself."), code="invalid_parent")
    organisation.save()
    new_path = _path_for(organisation)
    if new_path != old_path:
        organisation.path = new_path
        organisation.save(update_fields=["path"])
        for child in Organisation.objects.filter(path__startswith=old_path).exclude(pk=organisation.pk):
            child.path = new_path + child.path[len(old_path) :]
            child.save(update_fields=["path"])
    from common.services import model_changes

    changes = model_changes(organisation, tracked, old)
    if changes:
        audit_record(
            actor=actor,
            action="organisation.update",
            target=organisation,
            organisation_id=organisation.pk,
            changes=changes,
        )
    return organisation


def _path_for(organisation: Organisation) -> str:
    parent_path = organisation.parent.path if organisation.parent is not None else "/"
    return f"{parent_path}{organisation.pk}/"


# --- Memberships and verification ------------------------------------------


@transaction.atomic
def membership_create(
    *, actor: User | None, user: User, organisation: Organisation, role: str, position: str = ""
) -> Membership:
    """Give a person a role in an organisation (idempotent for an active role).

    Students get safe mode switched on; administrators get access to the
    admin site.
    """
    membership, created = Membership.objects.get_or_create(
        user=user, organisation=organisation, role=role, ended_at=None, defaults={"position": position}
    )
    if not created:
        return membership
    user_fields: list[str] = []
    if role == Role.STUDENT and not user.is_safe_mode:
        user.is_safe_mode = True
        user.is_hidden_from_search = True
        user_fields += ["is_safe_mode", "is_hidden_from_search"]
    if role == Role.ADMINISTRATOR and not user.is_staff:
        user.is_staff = True
        user_fields.append("is_staff")
    if user_fields:
        user.save(update_fields=user_fields)
    directory_change_record(
        actor=actor,
        action="membership.create",
        target=membership,
        organisation_id=organisation.pk,
        changes={"user": user.pk, "role": role},
    )
    return membership


@transaction.atomic
def membership_end(*, actor: User | None, membership: Membership) -> Membership:
    """End a membership: its verified badge and admin access go with it."""
    if membership.ended_at is not None:
        return membership
    membership.ended_at = timezone.now()
    membership.save(update_fields=["ended_at", "updated_at"])
    user = membership.user
    verified_educator_refresh(user=user)
    if membership.role == Role.ADMINISTRATOR and not user.is_superuser:
        still_admin = Membership.objects.active().filter(user=user, role=Role.ADMINISTRATOR).exists()
        if not still_admin and user.is_staff:
            user.is_staff = False
            user.save(update_fields=["is_staff"])
    directory_change_record(
        actor=actor, action="membership.end", target=membership, organisation_id=membership.organisation_id
    )
    return membership


@transaction.atomic
def verification_request(*, user: User, membership: Membership) -> Membership:
    """An educator asks their organisation to verify their role.

    Raises NotFound for another person's membership and ApplicationError for
    a role that is not verified (students, parents) or an ended membership.
    """
    if membership.user_id != user.pk:
        raise NotFound(_("Not found."))
    if membership.ended_at is not None or membership.role not in VERIFIABLE_ROLES:
        raise ApplicationError(_("This role is not verified."), code="not_verifiable")
    if membership.verification_status in (VerificationStatus.REQUESTED, VerificationStatus.VERIFIED):
        return membership
    membership.verification_status = VerificationStatus.REQUESTED
    membership.verification_requested_at = timezone.now()
    membership.save(update_fields=["verification_status", "verification_requested_at", "updated_at"])
    audit_record(
        actor=user, action="verification.request", target=membership, organisation_id=membership.organisation_id
    )
    return membership


@transaction.atomic
def verification_decide(*, actor: User, membership: Membership, approve: bool) -> Membership:
    """The organisation's administrator (or a parent organisation's) approves
    or rejects an educator; approval grants the verified badge.

    Raises PermissionDenied when the actor does not administer the organisation.
    """
    if not selectors.user_administers(user=actor, organisation=membership.organisation):
        raise PermissionDenied(_("Only an administrator of the organisation may verify its educators."))
    if membership.ended_at is not None or membership.role not in VERIFIABLE_ROLES:
        raise ApplicationError(_("This role is not verified."), code="not_verifiable")
    membership.verification_status = VerificationStatus.VERIFIED if approve else VerificationStatus.REJECTED
    membership.verified_at = timezone.now() if approve else None
    membership.verified_by = actor if approve else None
    membership.save(update_fields=["verification_status", "verified_at", "verified_by", "updated_at"])
    verified_educator_refresh(user=membership.user)
    directory_change_record(
        actor=actor,
        action="verification.approve" if approve else "verification.reject",
        target=membership,
        organisation_id=membership.organisation_id,
    )
    return membership


def verified_educator_refresh(*, user: User) -> bool:
    """Recompute the verified-educator badge from the active verified
    memberships; the badge is never set from anywhere else."""
    is_verified = (
        Membership.objects.active()
        .filter(user=user, role__in=VERIFIABLE_ROLES, verification_status=VerificationStatus.VERIFIED)
        .exists()
    )
    if user.is_verified_educator != is_verified:
        User.objects.filter(pk=user.pk).update(is_verified_educator=is_verified)
        user.is_verified_educator = is_verified
        # Names that imitate this educator's are flagged while the badge
        # lasts, and the flags go when it goes.
        name_flags_refresh(skeleton=user.name_skeleton)
        user.refresh_from_db(fields=["is_name_flagged"])
    return is_verified


# --- Study groups ----------------------------------------------------------


@transaction.atomic
def study_group_create(
    *,
    actor: User | None,
    organisation: Organisation,
    name: str,
    academic_year: int,
    grade: int | None = None,
    homeroom_teacher: User | None = None,
) -> StudyGroup:
    """Create a class of one academic year (idempotent by name and year)."""
    name = name.strip().upper()
    if grade is None:
        digits = "".join(ch for ch in name if ch.isdigit())
        grade = int(digits) if digits else None
    group, created = StudyGroup.objects.get_or_create(
        organisation=organisation,
        name=name,
        academic_year=academic_year,
        defaults={"grade": grade, "homeroom_teacher": homeroom_teacher},
    )
    if not created and homeroom_teacher is not None and group.homeroom_teacher_id != homeroom_teacher.pk:
        group.homeroom_teacher = homeroom_teacher
        group.save(update_fields=["homeroom_teacher", "updated_at"])
    if created:
        directory_change_record(actor=actor, action="study_group.create", target=group, organisation_id=organisation.pk)
    if homeroom_teacher is not None:
        # The homeroom teacher teaches the class and is a teacher of the
        # organisation: a verified badge and the class chats depend on it.
        study_group_teacher_add(actor=actor, group=group, teacher=homeroom_teacher)
    return group


@transaction.atomic
def study_group_student_add(*, actor: User | None, group: StudyGroup, student: User) -> StudyGroupStudent:
    """Put a student into a class; makes them a student of the organisation."""
    membership_create(actor=actor, user=student, organisation=group.organisation, role=Role.STUDENT)
    link, created = StudyGroupStudent.objects.get_or_create(group=group, student=student)
    if created:
        directory_change_record(
            actor=actor,
            action="study_group.student_add",
            target=group,
            organisation_id=group.organisation_id,
            changes={"student": student.pk},
        )
    return link


@transaction.atomic
def study_group_student_remove(*, actor: User | None, group: StudyGroup, student: User) -> None:
    deleted, _rows = StudyGroupStudent.objects.filter(group=group, student=student).delete()
    if deleted:
        directory_change_record(
            actor=actor,
            action="study_group.student_remove",
            target=group,
            organisation_id=group.organisation_id,
            changes={"student": student.pk},
        )


@transaction.atomic
def study_group_teacher_add(
    *, actor: User | None, group: StudyGroup, teacher: User, subject: str = ""
) -> StudyGroupTeacher:
    """Assign a teacher to a class; makes them a teacher of the organisation."""
    membership_create(actor=actor, user=teacher, organisation=group.organisation, role=Role.TEACHER)
    link, created = StudyGroupTeacher.objects.get_or_create(group=group, teacher=teacher, defaults={"subject": subject})
    if created:
        directory_change_record(
            actor=actor,
            action="study_group.teacher_add",
            target=group,
            organisation_id=group.organisation_id,
            changes={"teacher": teacher.pk},
        )
    return link


def _study_group_change_check(*, actor: User | None, group: StudyGroup) -> None:
    """Changes of an existing class are for the administrators of its
    organisation (or of an authority above it); `actor=None` is the system
    (imports, the demo, repairs)."""
    if actor is not None and not selectors.user_administers(user=actor, organisation=group.organisation):
        raise PermissionDenied(_("Only an administrator of the organisation may change its classes."))


@transaction.atomic
def study_group_teacher_remove(*, actor: User | None, group: StudyGroup, teacher: User) -> bool:
    """Take a teacher off a class; they stay a teacher of the organisation.
    Returns whether they taught it (removing again changes nothing).

    Raises PermissionDenied when `actor` does not administer the class's
    organisation, and ApplicationError "teacher_is_homeroom" for the class's
    homeroom teacher, who teaches it by definition: another homeroom teacher
    is chosen first. After commit the class chats lose the teacher
    (`directory_changed`).
    """
    _study_group_change_check(actor=actor, group=group)
    # Locked, so that the homeroom teacher cannot change under the check.
    group = StudyGroup.objects.select_for_update().get(pk=group.pk)
    if group.homeroom_teacher_id == teacher.pk:
        raise ApplicationError(
            _("This teacher is the homeroom teacher of the class: choose another homeroom teacher first."),
            code="teacher_is_homeroom",
        )
    deleted, _rows = StudyGroupTeacher.objects.filter(group=group, teacher=teacher).delete()
    if not deleted:
        return False
    directory_change_record(
        actor=actor,
        action="study_group.teacher_remove",
        target=group,
        organisation_id=group.organisation_id,
        changes={"teacher": teacher.pk},
    )
    return True


@transaction.atomic
def study_group_rename(*, actor: User | None, group: StudyGroup, name: str) -> StudyGroup:
    """Rename a class ("7Б" becomes "7В"); the name is stored in capitals,
    as `study_group_create` stores it. Renaming to the same name changes
    nothing.

    Raises PermissionDenied when `actor` does not administer the class's
    organisation, and ApplicationError with field "name": "invalid" for an
    empty or too long name, "study_group_exists" when the organisation has a
    class of that name in the same academic year. After commit the class
    chats take the new name (`directory_changed`).
    """
    _study_group_change_check(actor=actor, group=group)
    name = name.strip().upper()
    if not name:
        raise ApplicationError(_("Enter the name of the class."), code="invalid", extra={"field": "name"})
    limit = StudyGroup._meta.get_field("name").max_length or 0
    if len(name) > limit:
        raise ApplicationError(
            _("At most %(limit)d characters.") % {"limit": limit}, code="invalid", extra={"field": "name"}
        )
    group = StudyGroup.objects.select_for_update().get(pk=group.pk)
    if group.name == name:
        return group
    if selectors.study_group_name_taken(
        organisation=group.organisation, name=name, academic_year=group.academic_year, exclude_id=group.pk
    ):
        raise ApplicationError(
            _("This organisation already has the class %(name)s that year.") % {"name": name},
            code="study_group_exists",
            extra={"field": "name"},
        )
    previous_name = group.name
    group.name = name
    group.save(update_fields=["name", "updated_at"])
    directory_change_record(
        actor=actor,
        action="study_group.rename",
        target=group,
        organisation_id=group.organisation_id,
        changes={"name": [previous_name, name]},
    )
    return group


@transaction.atomic
def academic_year_advance(*, actor: User | None, organisation: Organisation, from_year: int) -> list[StudyGroup]:
    """Move every class of `from_year` to the next year: "7Б" becomes "8Б"
    with the same students, teachers and homeroom teacher (those still in
    the organisation). Graduating classes (11th grade, or no grade in the
    name) are not continued. Idempotent."""
    created: list[StudyGroup] = []
    # People who have left the organisation are not brought back by the new year.
    active_teacher_ids = set(
        Membership.objects.active()
        .filter(organisation=organisation, role=Role.TEACHER)
        .values_list("user_id", flat=True)
    )
    active_student_ids = set(
        Membership.objects.active()
        .filter(organisation=organisation, role=Role.STUDENT)
        .values_list("user_id", flat=True)
    )
    groups = (
        StudyGroup.objects.filter(organisation=organisation, academic_year=from_year)
        .select_related("homeroom_teacher")
        .prefetch_related("studygroupstudent_set", "studygroupteacher_set")
    )
    for group in groups:
        if group.next_group_id or group.grade is None or group.grade >= 11:
            continue
        next_name = group.name.replace(str(group.grade), str(group.grade + 1), 1)
        homeroom_teacher = group.homeroom_teacher
        if homeroom_teacher is not None and homeroom_teacher.pk not in active_teacher_ids:
            homeroom_teacher = None
        next_group = study_group_create(
            actor=actor,
            organisation=organisation,
            name=next_name,
            academic_year=from_year + 1,
            grade=group.grade + 1,
            homeroom_teacher=homeroom_teacher,
        )
        StudyGroupStudent.objects.bulk_create(
            [
                StudyGroupStudent(group=next_group, student_id=link.student_id)
                for link in group.studygroupstudent_set.all()
                if link.student_id in active_student_ids
            ],
            ignore_conflicts=True,
        )
        StudyGroupTeacher.objects.bulk_create(
            [
                StudyGroupTeacher(group=next_group, teacher_id=link.teacher_id, subject=link.subject)
                for link in group.studygroupteacher_set.all()
                if link.teacher_id in active_teacher_ids
            ],
            ignore_conflicts=True,
        )
        group.next_group = next_group
        group.save(update_fields=["next_group", "updated_at"])
        created.append(next_group)
    if created:
        directory_change_record(
            actor=actor,
            action="academic_year.advance",
            target=organisation,
            organisation_id=organisation.pk,
            changes={"from_year": from_year, "groups": len(created)},
        )
    return created


# --- Guardianship ------------------------------------------------------------


@transaction.atomic
def guardianship_link(
    *,
    actor: User | None,
    parent: User,
    student: User,
    organisation: Organisation,
    source: str = GuardianshipSource.SCHOOL,
) -> Guardianship:
    """Link a parent to a student of the organisation (idempotent); the parent
    becomes a parent member of the organisation.

    Raises ApplicationError when the student does not study there or the
    parent is the student.
    """
    if parent.pk == student.pk:
        raise ApplicationError(_("A student cannot be their own guardian."), code="invalid_guardian")
    if not selectors.user_is_student(user=student, organisation=organisation):
        raise ApplicationError(_("The student does not study in this organisation."), code="not_a_student")
    guardianship, created = Guardianship.objects.get_or_create(
        parent=parent,
        student=student,
        ended_at=None,
        defaults={"organisation": organisation, "source": source, "created_by": actor},
    )
    membership_create(actor=actor, user=parent, organisation=organisation, role=Role.PARENT)
    if created:
        directory_change_record(
            actor=actor,
            action="guardianship.link",
            target=guardianship,
            organisation_id=organisation.pk,
            changes={"parent": parent.pk, "student": student.pk, "source": source},
        )
    return guardianship


@transaction.atomic
def guardianship_end(*, actor: User | None, guardianship: Guardianship) -> None:
    if guardianship.ended_at is None:
        guardianship.ended_at = timezone.now()
        guardianship.save(update_fields=["ended_at", "updated_at"])
        directory_change_record(
            actor=actor, action="guardianship.end", target=guardianship, organisation_id=guardianship.organisation_id
        )


GUARDIANSHIP_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GUARDIANSHIP_CODE_LENGTH = 10


def guardianship_code_hash(code: str) -> str:
    normalised = "".join(code.split()).replace("-", "").upper()
    key = hashlib.sha256(("parta.guardianship:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


def guardianship_code_create(*, actor: User, student: User, organisation: Organisation, valid_days: int = 30) -> str:
    """Issue a code (see `guardianship_code_issue`) and return only the plain code."""
    code, _record = guardianship_code_issue(
        actor=actor, student=student, organisation=organisation, valid_days=valid_days
    )
    return code


@transaction.atomic
def guardianship_code_issue(
    *, actor: User, student: User, organisation: Organisation, valid_days: int = 30
) -> tuple[str, GuardianshipCode]:
    """Issue a single-use code that links a parent to the student; returns
    the plain code, which is shown once and never stored, and its record.

    Raises PermissionDenied unless the actor administers the organisation or
    teaches the student there.
    """
    if not selectors.user_manages_student(user=actor, student=student, organisation=organisation):
        raise PermissionDenied(_("Only the school's administrators and the student's teachers may issue codes."))
    if not selectors.user_is_student(user=student, organisation=organisation):
        raise ApplicationError(_("The student does not study in this organisation."), code="not_a_student")
    code = "".join(secrets.choice(GUARDIANSHIP_CODE_ALPHABET) for _i in range(GUARDIANSHIP_CODE_LENGTH))
    record = GuardianshipCode.objects.create(
        student=student,
        organisation=organisation,
        code_hash=guardianship_code_hash(code),
        created_by=actor,
        expires_at=timezone.now() + timedelta(days=valid_days),
    )
    audit_record(actor=actor, action="guardianship_code.create", target=record, organisation_id=organisation.pk)
    return f"{code[:5]}-{code[5:]}", record


@transaction.atomic
def guardianship_code_claim(*, parent: User, code: str) -> Guardianship:
    """A parent enters the code from the school and is linked to the student.

    Raises ApplicationError code "code_invalid" for an unknown, used or
    expired code (one answer for all three, so codes cannot be probed).
    """
    record = (
        GuardianshipCode.objects.select_for_update()
        .filter(code_hash=guardianship_code_hash(code), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if record is None:
        raise ApplicationError(_("The code is wrong or no longer valid."), code="code_invalid", extra={"field": "code"})
    updated = GuardianshipCode.objects.filter(pk=record.pk, used_at__isnull=True).update(
        used_at=timezone.now(), used_by=parent
    )
    if not updated:
        raise ApplicationError(_("The code is wrong or no longer valid."), code="code_invalid", extra={"field": "code"})
    return guardianship_link(
        actor=parent,
        parent=parent,
        student=record.student,
        organisation=record.organisation,
        source=GuardianshipSource.CODE,
    )


# --- Safe mode ---------------------------------------------------------------


@transaction.atomic
def safe_mode_update(
    *, actor: User, student: User, is_safe_mode: bool | None = None, is_hidden_from_search: bool | None = None
) -> User:
    """Change a student's safe-mode settings; only a linked guardian or the
    student's school may, and every change is logged.

    Raises NotFound when the actor may not see the student at all and
    PermissionDenied when they may see but not change.
    """
    if not selectors.user_may_manage_safe_mode(user=actor, student=student):
        if selectors.profile_is_visible(viewer=actor, owner=student):
            raise PermissionDenied(_("Only the student's guardians and school may change safe mode."))
        raise NotFound(_("Not found."))
    student = User.objects.select_for_update().get(pk=student.pk)
    changes: dict[str, list[bool]] = {}
    if is_safe_mode is not None and student.is_safe_mode != is_safe_mode:
        changes["is_safe_mode"] = [student.is_safe_mode, is_safe_mode]
        student.is_safe_mode = is_safe_mode
    if is_hidden_from_search is not None and student.is_hidden_from_search != is_hidden_from_search:
        changes["is_hidden_from_search"] = [student.is_hidden_from_search, is_hidden_from_search]
        student.is_hidden_from_search = is_hidden_from_search
    if changes:
        student.save(update_fields=list(changes))
        organisation_ids = selectors.student_organisation_ids(student=student)
        audit_record(
            actor=actor,
            action="safe_mode.change",
            target=student,
            organisation_id=organisation_ids[0] if organisation_ids else None,
            changes=changes,
        )
    return student
