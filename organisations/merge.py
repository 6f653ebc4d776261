"""The organisations part of merging two accounts (accounts.merge):
memberships, classes and guardianships of both accounts become the kept
account's; where both hold the same one, the rows are folded into one."""

from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from organisations.extensions import directory_changed
from organisations.models import (
    Guardianship,
    Membership,
    StudyGroupStudent,
    StudyGroupTeacher,
    VerificationStatus,
)
from organisations.services import verified_educator_refresh

# A verified membership outranks a requested one, which outranks the rest.
_VERIFICATION_RANK: dict[str, int] = {
    VerificationStatus.VERIFIED: 3,
    VerificationStatus.REQUESTED: 2,
    VerificationStatus.REJECTED: 1,
    VerificationStatus.NOT_REQUESTED: 0,
}


def organisations_merge_move(*, kept: User, absorbed: User) -> dict[str, int]:
    """Fold the absorbed account's duplicates into the kept one's, before
    the generic pass re-points the rest:

    - the same active membership (organisation and role) in both: one row,
      the earlier start and the better verification (verified, with its
      date and verifier, beats requested beats none);
    - the same class as a student or a teacher: one row (a teacher's subject
      kept, or taken from the other when blank);
    - the same child (an active guardianship in both): one link, the earlier;
    - a guardianship between the two accounts themselves (a person cannot
      be their own guardian): ended, and kept as history."""
    folded: dict[str, int] = {}
    memberships = 0
    kept_active = {(m.organisation_id, m.role): m for m in Membership.objects.active().filter(user=kept)}
    for membership in Membership.objects.active().filter(user=absorbed):
        twin = kept_active.get((membership.organisation_id, membership.role))
        if twin is None:
            continue
        if _VERIFICATION_RANK.get(membership.verification_status, 0) > _VERIFICATION_RANK.get(
            twin.verification_status, 0
        ):
            twin.verification_status = membership.verification_status
            twin.verification_requested_at = membership.verification_requested_at
            twin.verified_at = membership.verified_at
            twin.verified_by_id = membership.verified_by_id
        twin.position = twin.position or membership.position
        Membership.objects.filter(pk=twin.pk).update(
            verification_status=twin.verification_status,
            verification_requested_at=twin.verification_requested_at,
            verified_at=twin.verified_at,
            verified_by_id=twin.verified_by_id,
            position=twin.position,
            started_at=min(twin.started_at, membership.started_at),
        )
        membership.delete()
        memberships += 1
    if memberships:
        folded["organisations.membership_duplicate"] = memberships

    kept_groups = StudyGroupStudent.objects.filter(student=kept).values_list("group_id", flat=True)
    count = StudyGroupStudent.objects.filter(student=absorbed, group_id__in=list(kept_groups)).delete()[0]
    if count:
        folded["organisations.studygroupstudent_duplicate"] = count
    kept_teaching = {row.group_id: row for row in StudyGroupTeacher.objects.filter(teacher=kept)}
    count = 0
    for row in StudyGroupTeacher.objects.filter(teacher=absorbed, group_id__in=list(kept_teaching)):
        teaching = kept_teaching[row.group_id]
        if not teaching.subject and row.subject:
            StudyGroupTeacher.objects.filter(pk=teaching.pk).update(subject=row.subject)
        row.delete()
        count += 1
    if count:
        folded["organisations.studygroupteacher_duplicate"] = count

    now = timezone.now()
    between = Guardianship.objects.filter(ended_at__isnull=True).filter(
        Q(parent=kept, student=absorbed) | Q(parent=absorbed, student=kept)
    )
    count = between.update(ended_at=now)
    if count:
        folded["organisations.guardianship_self_ended"] = count
    count = 0
    for role in ("parent", "student"):
        other = "student" if role == "parent" else "parent"
        kept_links = {
            getattr(link, other + "_id"): link
            for link in Guardianship.objects.filter(ended_at__isnull=True, **{role: kept})
        }
        for link in Guardianship.objects.filter(ended_at__isnull=True, **{role: absorbed}):
            kept_link = kept_links.get(getattr(link, other + "_id"))
            if kept_link is None:
                continue
            # The earlier link is the one the school made first; the later
            # one is history now.
            if link.created_at < kept_link.created_at:
                Guardianship.objects.filter(pk=kept_link.pk).update(ended_at=now)
                kept_links[getattr(link, other + "_id")] = link
            else:
                Guardianship.objects.filter(pk=link.pk).update(ended_at=now)
            count += 1
    if count:
        folded["organisations.guardianship_duplicate_ended"] = count
    return folded


def organisations_merge_finish(*, kept: User, absorbed: Any) -> None:
    """The badge of the kept account from its memberships now, and the
    organisations of both accounts synced (class and staff chats follow)
    after the commit."""
    verified_educator_refresh(user=kept)
    organisation_ids = set(Membership.objects.filter(user=kept).values_list("organisation_id", flat=True))
    organisation_ids |= set(
        Guardianship.objects.filter(Q(parent=kept) | Q(student=kept)).values_list("organisation_id", flat=True)
    )
    directory_changed(organisation_ids=organisation_ids)
