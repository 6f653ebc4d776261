"""Joining: the one rule (`join_verdict`), members from the portal, guests
by personal links (forged, revoked, expired, removed), the lobby, children's
safe mode, link guessing limits, and attendance sessions."""

import datetime

import pytest
from django.utils import timezone

from common.errors import ApplicationError, NotFound, PermissionDenied, RateLimited
from common.models import AuditEvent
from lessons import selectors, services
from lessons.models import (
    AttendanceSession,
    JoinLink,
    MeetingKind,
    Participant,
    ParticipantRole,
    ParticipantStatus,
)
from lessons.services import AudienceSpec
from lessons.tests.factories import (
    in_minutes,
    make_lesson_now,
    make_lesson_world,
    make_meeting,
    make_parent_meeting_now,
)
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db
IP = "203.0.113.7"


def link_for(meeting, actor=None, label="Петрова Е. В."):
    link, token = services.join_link_create(actor=actor or meeting.host, meeting_id=meeting.pk, label=label)
    return link, token


# --- Members ------------------------------------------------------------------------------------------------------


def test_an_invited_student_joins_the_lesson_at_once_and_the_host_too():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)

    student = services.meeting_join(user=world.student, meeting_id=meeting.pk)
    host = services.meeting_join(user=world.teacher, meeting_id=meeting.pk)

    assert (student.role, student.status) == (ParticipantRole.MEMBER, ParticipantStatus.ADMITTED)
    assert (host.role, host.status) == (ParticipantRole.HOST, ParticipantStatus.ADMITTED)
    assert student.occurrence == meeting.occurrences.get()
    assert services.meeting_join(user=world.student, meeting_id=meeting.pk).pk == student.pk
    assert Participant.objects.count() == 2


def test_with_the_lobby_for_everyone_members_wait_until_the_host_admits():
    world = make_lesson_world(students=2)
    meeting = make_lesson_now(world, lobby_for_everyone=True)

    waiting = services.meeting_join(user=world.students[0], meeting_id=meeting.pk)
    other = services.meeting_join(user=world.students[1], meeting_id=meeting.pk)
    host = services.meeting_join(user=world.teacher, meeting_id=meeting.pk)

    assert waiting.status == ParticipantStatus.WAITING
    assert host.status == ParticipantStatus.ADMITTED
    admitted = services.lobby_decide(actor=world.teacher, meeting_id=meeting.pk, participant_id=waiting.pk, admit=True)
    assert admitted.status == ParticipantStatus.ADMITTED
    assert services.lobby_admit_all(actor=world.teacher, meeting_id=meeting.pk) == 1
    other.refresh_from_db()
    assert other.status == ParticipantStatus.ADMITTED


def test_a_member_not_let_in_may_knock_again():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world, lobby_for_everyone=True)
    participant = services.meeting_join(user=world.student, meeting_id=meeting.pk)
    services.lobby_decide(actor=world.teacher, meeting_id=meeting.pk, participant_id=participant.pk, admit=False)

    again = services.meeting_join(user=world.student, meeting_id=meeting.pk)

    assert (again.pk, again.status) == (participant.pk, ParticipantStatus.WAITING)


def test_only_the_host_decides_in_the_lobby():
    world = make_lesson_world(students=2)
    meeting = make_lesson_now(world, lobby_for_everyone=True)
    waiting = services.meeting_join(user=world.students[0], meeting_id=meeting.pk)

    with pytest.raises(PermissionDenied):
        services.lobby_decide(actor=world.students[1], meeting_id=meeting.pk, participant_id=waiting.pk, admit=True)
    with pytest.raises(NotFound):
        services.lobby_decide(actor=make_user(), meeting_id=meeting.pk, participant_id=waiting.pk, admit=True)

    waiting.refresh_from_db()
    assert waiting.status == ParticipantStatus.WAITING


def test_nobody_joins_before_the_window_opens_and_is_told_when():
    world = make_lesson_world(students=1)
    start = in_minutes(60)
    meeting = make_meeting(world=world, starts_at=start)

    with pytest.raises(ApplicationError) as early:
        services.meeting_join(user=world.student, meeting_id=meeting.pk)

    assert (early.value.status_code, early.value.code) == (409, "not_open")
    assert early.value.extra["opens_at"] == (start - datetime.timedelta(minutes=15)).isoformat()
    assert Participant.objects.count() == 0
    joined = services.meeting_join(
        user=world.student, meeting_id=meeting.pk, now=start - datetime.timedelta(minutes=10)
    )
    assert joined.status == ParticipantStatus.ADMITTED


def test_the_host_may_come_in_earlier_than_the_members():
    world = make_lesson_world(students=1)
    start = in_minutes(25)
    meeting = make_meeting(world=world, starts_at=start)

    assert selectors.join_verdict(meeting=meeting, user=world.teacher).is_allowed
    assert selectors.join_verdict(meeting=meeting, user=world.student).code == "not_open"


def test_a_stranger_and_a_student_of_another_class_get_not_found():
    world = make_lesson_world(students=1)
    other = make_lesson_world(students=1)
    meeting = make_lesson_now(world)

    for person in (make_user(), other.student, other.teacher, world.parent):
        with pytest.raises(NotFound):
            services.meeting_join(user=person, meeting_id=meeting.pk)

    assert Participant.objects.count() == 0


def test_a_cancelled_meeting_answers_gone():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)
    services.meeting_cancel(actor=world.teacher, meeting_id=meeting.pk)

    with pytest.raises(ApplicationError) as refused:
        services.meeting_join(user=world.student, meeting_id=meeting.pk)

    assert (refused.value.status_code, refused.value.code) == (410, "cancelled")


def test_a_removed_member_cannot_rejoin_that_occurrence():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)
    participant = services.meeting_join(user=world.student, meeting_id=meeting.pk)
    services.attendance_join(participant_id=participant.pk)

    services.participant_remove(actor=world.teacher, meeting_id=meeting.pk, participant_id=participant.pk)

    with pytest.raises(PermissionDenied) as refused:
        services.meeting_join(user=world.student, meeting_id=meeting.pk)
    assert refused.value.code == "removed"
    assert AttendanceSession.objects.get().left_at is not None
    assert selectors.participant_may_be_in_call(participant_id=participant.pk) is None
    assert AuditEvent.objects.filter(action="meeting.participant_remove").count() == 1
    with pytest.raises(ApplicationError) as readmit:
        services.lobby_decide(actor=world.teacher, meeting_id=meeting.pk, participant_id=participant.pk, admit=True)
    assert readmit.value.code == "removed"


def test_the_host_cannot_be_removed():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)
    host = services.meeting_join(user=world.teacher, meeting_id=meeting.pk)

    with pytest.raises(ApplicationError) as refused:
        services.participant_remove(actor=world.administrator, meeting_id=meeting.pk, participant_id=host.pk)

    assert refused.value.code == "cannot_remove_host"


# --- Children's safety ---------------------------------------------------------------------------------------------


def test_a_child_in_safe_mode_is_refused_by_a_host_who_is_no_longer_staff():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)
    from organisations import services as organisation_services
    from organisations.models import Membership, Role

    organisation_services.membership_end(
        actor=None,
        membership=Membership.objects.active().get(user=world.teacher, organisation=world.school, role=Role.TEACHER),
    )

    verdict = selectors.join_verdict(meeting=meeting, user=world.student)
    assert (verdict.is_allowed, verdict.code) == (False, "not_found")
    with pytest.raises(NotFound):
        services.meeting_join(user=world.student, meeting_id=meeting.pk)
    assert Participant.objects.count() == 0


def test_a_child_in_safe_mode_may_not_come_in_by_a_guest_link():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    _link, token = link_for(meeting)

    with pytest.raises(PermissionDenied) as refused:
        services.guest_join(token=token, display_name="Иван", ip=IP, user=world.student)

    assert refused.value.code == "safe_mode"
    assert Participant.objects.count() == 0


def test_no_guest_links_for_a_meeting_with_students():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)

    with pytest.raises(PermissionDenied) as refused:
        link_for(meeting)

    assert refused.value.code == "guests_not_allowed"
    assert JoinLink.objects.count() == 0


def test_students_cannot_be_added_to_a_meeting_with_guest_links():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    link_for(meeting)

    with pytest.raises(ApplicationError) as refused:
        services.meeting_update(
            actor=world.teacher,
            meeting_id=meeting.pk,
            audience=AudienceSpec(guardian_group_ids=(world.group.pk,), student_group_ids=(world.group.pk,)),
        )

    assert refused.value.code == "guests_not_allowed"
    assert list(meeting.audience.values_list("kind", flat=True)) == ["group_guardians"]


# --- Guests by link -------------------------------------------------------------------------------------------------


def test_a_guest_link_token_is_long_random_and_only_its_hash_is_stored():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)

    link, token = link_for(meeting)
    _other, other_token = link_for(meeting)

    assert len(token) >= 43  # 32 random bytes, base64: 256 bits
    assert token != other_token
    stored = JoinLink.objects.get(pk=link.pk)
    assert token not in stored.token_hash
    assert stored.token_hash == selectors.join_token_hash(token)
    assert stored.label == "Петрова Е. В."
    assert stored.expires_at == meeting.occurrences.get().ends_at + datetime.timedelta(days=1)


def test_a_guest_waits_in_the_lobby_and_the_host_lets_them_in():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    link, token = link_for(meeting)

    guest = services.guest_join(token=token, display_name="  Елена   Петрова ", ip=IP)

    assert (guest.role, guest.status, guest.display_name) == (
        ParticipantRole.GUEST,
        ParticipantStatus.WAITING,
        "Елена Петрова",
    )
    assert guest.user is None and guest.join_link == link
    assert selectors.participant_may_be_in_call(participant_id=guest.pk) is None
    services.lobby_decide(actor=world.teacher, meeting_id=meeting.pk, participant_id=guest.pk, admit=True)
    assert selectors.participant_may_be_in_call(participant_id=guest.pk).pk == guest.pk
    again = services.guest_join(token=token, display_name="Другое имя", ip=IP)
    assert (again.pk, again.display_name, again.status) == (guest.pk, "Елена Петрова", ParticipantStatus.ADMITTED)


def test_without_the_guest_lobby_a_guest_comes_straight_in():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world, lobby_for_guests=False)
    _link, token = link_for(meeting)

    assert services.guest_join(token=token, display_name="Елена", ip=IP).status == ParticipantStatus.ADMITTED


def test_a_forged_token_is_not_found():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    _link, token = link_for(meeting)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    for candidate in (forged, "short", "x" * 500, ""):
        with pytest.raises(NotFound) as refused:
            services.guest_join(token=candidate, display_name="Гость", ip=IP)
        assert refused.value.code == "link_not_found"

    assert Participant.objects.count() == 0


def test_a_revoked_link_answers_gone_and_its_guest_leaves():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world, lobby_for_guests=False)
    link, token = link_for(meeting)
    guest = services.guest_join(token=token, display_name="Елена", ip=IP)
    services.attendance_join(participant_id=guest.pk)

    services.join_link_revoke(actor=world.teacher, meeting_id=meeting.pk, link_id=link.pk)

    with pytest.raises(ApplicationError) as refused:
        services.guest_join(token=token, display_name="Елена", ip=IP)
    assert (refused.value.status_code, refused.value.code) == (410, "link_revoked")
    guest.refresh_from_db()
    assert guest.status == ParticipantStatus.REMOVED
    assert AttendanceSession.objects.get().left_at is not None


def test_an_expired_link_answers_gone():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    link, token = link_for(meeting)
    JoinLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))

    with pytest.raises(ApplicationError) as refused:
        services.guest_join(token=token, display_name="Елена", ip=IP)

    assert (refused.value.status_code, refused.value.code) == (410, "link_expired")


def test_a_removed_guest_cannot_rejoin_with_the_same_token_next_week_either():
    world = make_lesson_world(students=1)
    start = in_minutes(-5)
    meeting = make_meeting(
        world=world,
        kind=MeetingKind.PARENT_MEETING,
        starts_at=start,
        repeats_weekly=True,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=1)),
    )
    link, token = link_for(meeting)
    guest = services.guest_join(token=token, display_name="Незнакомец", ip=IP)

    services.participant_remove(actor=world.teacher, meeting_id=meeting.pk, participant_id=guest.pk)

    for now in (timezone.now(), start + datetime.timedelta(weeks=1)):
        with pytest.raises(PermissionDenied) as refused:
            services.guest_join(token=token, display_name="Незнакомец", ip=IP, now=now)
        assert refused.value.code == "removed"
    link.refresh_from_db()
    assert link.removed_at is not None
    assert Participant.objects.count() == 1


def test_a_guest_must_give_a_name():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    _link, token = link_for(meeting)

    for name in ("", "   ", "\u200b", "я" * 81):
        with pytest.raises(ApplicationError) as refused:
            services.guest_join(token=token, display_name=name, ip=IP)
        assert refused.value.extra["field"] == "display_name"

    assert Participant.objects.count() == 0


def test_link_guessing_is_stopped_even_for_a_right_token(settings):
    settings.LESSON_LINK_GUESS_RATE = "3/hour"
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    _link, token = link_for(meeting)

    for _attempt in range(3):
        with pytest.raises(NotFound):
            services.join_link_find(token="A" * 43, ip=IP)
    with pytest.raises(RateLimited) as limited:
        services.join_link_find(token="B" * 43, ip=IP)
    with pytest.raises(RateLimited):
        services.join_link_find(token=token, ip=IP)

    assert limited.value.retry_after > 0
    assert services.join_link_find(token=token, ip="198.51.100.1").meeting == meeting


def test_right_tokens_are_not_counted_as_guesses(settings):
    settings.LESSON_LINK_GUESS_RATE = "3/hour"
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    _link, token = link_for(meeting)

    for _attempt in range(10):
        assert services.join_link_find(token=token, ip=IP).meeting == meeting


def test_only_the_host_makes_and_revokes_links():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    link, _token = link_for(meeting)

    with pytest.raises(PermissionDenied):
        services.join_link_create(actor=world.parent, meeting_id=meeting.pk)
    with pytest.raises(PermissionDenied):
        services.join_link_revoke(actor=world.parent, meeting_id=meeting.pk, link_id=link.pk)
    with pytest.raises(NotFound):
        services.join_link_create(actor=make_user(), meeting_id=meeting.pk)

    assert JoinLink.objects.count() == 1
    link.refresh_from_db()
    assert link.revoked_at is None


# --- Attendance sessions (the signalling side) ----------------------------------------------------------------------


def test_sessions_start_only_for_admitted_participants_and_close_once():
    world = make_lesson_world(students=2)
    meeting = make_lesson_now(world, lobby_for_everyone=True)
    waiting = services.meeting_join(user=world.students[0], meeting_id=meeting.pk)

    with pytest.raises(PermissionDenied) as refused:
        services.attendance_join(participant_id=waiting.pk)
    assert refused.value.code == "not_admitted"
    assert AttendanceSession.objects.count() == 0

    services.lobby_decide(actor=world.teacher, meeting_id=meeting.pk, participant_id=waiting.pk, admit=True)
    first = services.attendance_join(participant_id=waiting.pk)
    assert services.attendance_join(participant_id=waiting.pk).pk == first.pk
    assert services.attendance_leave(participant_id=waiting.pk) == 1
    assert services.attendance_leave(participant_id=waiting.pk) == 0
    second = services.attendance_join(participant_id=waiting.pk)
    assert second.pk != first.pk
    assert services.occurrence_sessions_close(occurrence_id=waiting.occurrence_id) == 1
    assert AttendanceSession.objects.filter(left_at__isnull=True).count() == 0


def test_an_authority_administrator_manages_a_lesson_but_does_not_join_the_childrens_call():
    from organisations.models import Role
    from organisations.tests.factories import make_member, make_organisation

    authority = make_organisation(kind="municipal_authority")
    world = make_lesson_world(students=1, parent=authority)
    authority_admin = make_member(organisation=authority, role=Role.ADMINISTRATOR)
    lesson = make_lesson_now(world)
    parents = make_parent_meeting_now(world)

    assert selectors.meeting_role(user=authority_admin, meeting=lesson) == "host"
    with pytest.raises(PermissionDenied) as refused:
        services.meeting_join(user=authority_admin, meeting_id=lesson.pk)
    assert refused.value.code == "safe_mode"
    assert services.meeting_join(user=authority_admin, meeting_id=parents.pk).role == ParticipantRole.HOST
    assert services.meeting_join(user=world.administrator, meeting_id=lesson.pk).role == ParticipantRole.HOST


def test_a_guest_link_follows_its_meeting_when_it_is_moved_later():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING, starts_at=in_minutes(60 * 24))
    link, token = link_for(meeting)
    new_start = in_minutes(60 * 24 * 7)

    services.meeting_update(actor=world.teacher, meeting_id=meeting.pk, starts_at=new_start)

    guest = services.guest_join(token=token, display_name="Елена", ip=IP, now=new_start + datetime.timedelta(minutes=5))
    assert guest.status == ParticipantStatus.WAITING
    link.refresh_from_db()
    assert link.expires_at == new_start + datetime.timedelta(minutes=45) + datetime.timedelta(days=1)
