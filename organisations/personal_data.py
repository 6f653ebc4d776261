"""What the organisation directory adds to a person's data-subject rights
(152-FZ): its sections of the personal data export and what ends when the
person deletes their account. Both are registered with accounts in
OrganisationsConfig.ready(); the export is a read and the deletion goes
through the directory's services, so badges, the audit log and the chats
that follow the directory stay right."""

from typing import Any

from django.db.models import Q

from accounts.models import User
from common.models import AuditEvent
from organisations import services
from organisations.models import Guardianship, Membership, Organisation, StudyGroupStudent, StudyGroupTeacher


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _organisation(organisation: Organisation) -> dict[str, Any]:
    return {"id": organisation.pk, "short_name": organisation.short_name, "kind": organisation.kind}


def _person(person: User) -> dict[str, Any]:
    # Another person, as the app shows them: never their phone number.
    return {"id": person.pk, "display_name": person.display_name}


def personal_data_sections(*, user: User) -> dict[str, Any]:
    """The export sections of `user` kept by the directory, ended ones
    included: "memberships" (roles, positions, verification),
    "guardianships" ({"as_parent", "as_student"}), "study_groups" (as a
    student, a teacher or the homeroom teacher) and "safe_mode_changes"
    (the audit log's changes of the person's safe mode)."""
    memberships = [
        {
            "organisation": _organisation(membership.organisation),
            "role": membership.role,
            "position": membership.position,
            "started_at": _iso(membership.started_at),
            "ended_at": _iso(membership.ended_at),
            "verification_status": membership.verification_status,
            "verification_requested_at": _iso(membership.verification_requested_at),
            "verified_at": _iso(membership.verified_at),
        }
        for membership in Membership.objects.filter(user=user)
        .select_related("organisation")
        .order_by("started_at", "id")
    ]
    links = (
        Guardianship.objects.filter(Q(parent=user) | Q(student=user))
        .select_related("parent", "student", "organisation")
        .order_by("created_at", "id")
    )
    guardianships: dict[str, list[dict[str, Any]]] = {"as_parent": [], "as_student": []}
    for link in links:
        entry = {
            "organisation": _organisation(link.organisation),
            "source": link.source,
            "created_at": _iso(link.created_at),
            "ended_at": _iso(link.ended_at),
        }
        if link.parent_id == user.pk:
            guardianships["as_parent"].append({"student": _person(link.student), **entry})
        if link.student_id == user.pk:
            guardianships["as_student"].append({"parent": _person(link.parent), **entry})
    study_groups: list[dict[str, Any]] = []
    for student_link in StudyGroupStudent.objects.filter(student=user).select_related("group__organisation"):
        study_groups.append(
            {**_group(student_link.group), "role": "student", "joined_at": _iso(student_link.joined_at)}
        )
    for teacher_link in StudyGroupTeacher.objects.filter(teacher=user).select_related("group__organisation"):
        study_groups.append({**_group(teacher_link.group), "role": "teacher", "subject": teacher_link.subject})
    for group in user.homeroom_groups.select_related("organisation"):
        study_groups.append({**_group(group), "role": "homeroom_teacher"})
    study_groups.sort(key=lambda entry: (entry["academic_year"], entry["name"], entry["id"], entry["role"]))
    changes = AuditEvent.objects.filter(
        action="safe_mode.change", object_type=User._meta.label_lower, object_id=str(user.pk)
    ).select_related("actor")
    safe_mode_changes = [
        {
            "at": _iso(event.at),
            "changed_by": _person(event.actor) if event.actor is not None else None,
            "changes": event.changes,
        }
        for event in changes.order_by("at", "id")
    ]
    return {
        "memberships": memberships,
        "guardianships": guardianships,
        "study_groups": study_groups,
        "safe_mode_changes": safe_mode_changes,
    }


def _group(group: Any) -> dict[str, Any]:
    return {
        "id": group.pk,
        "name": group.name,
        "academic_year": group.academic_year,
        "organisation": _organisation(group.organisation),
    }


def account_links_end(*, user: User) -> None:
    """Before the account of `user` is deleted: end their active memberships
    (their verified badge and admin access go with them) and guardianships,
    as a parent and as a student, in the person's own name in the audit
    log. Runs inside accounts.services.account_delete's transaction."""
    for guardianship in Guardianship.objects.filter(Q(parent=user) | Q(student=user), ended_at__isnull=True):
        services.guardianship_end(actor=user, guardianship=guardianship)
    for membership in Membership.objects.active().filter(user=user).select_related("user"):
        services.membership_end(actor=user, membership=membership)
